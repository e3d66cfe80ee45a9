// `qforge formats MODEL`: how a model's weights fare in each number format (fixed vs floating
// point, 8 vs 4 bits, per tensor vs per channel): error bias, std and SQNR per tensor and format,
// then one summary row per format.
#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <limits>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "qforge/numerics/dtypes.h"
#include "qforge/numerics/error_stats.h"
#include "qforge/numerics/float_formats.h"
#include "qforge/numerics/quant_params.h"

namespace qforge::cli {
namespace {

namespace nx = qforge::numerics;

struct FormatsOptions {
  std::string model;
  bool all_float = false;
  bool summary_only = false;
  bool json = false;
};

// One weight tensor as fp32.
struct Weight {
  std::string name;
  Shape shape;
  std::vector<float> values;
  float max_abs = 0;
};

// A number format: how it approximates a tensor, and what storing the tensor costs.
struct Format {
  std::string name;
  std::string description;
  int bits;
  // Fills approx (same size as w.values); returns a detail such as the chosen Qm.n, or "".
  std::string (*approximate)(const Weight& w, std::vector<float>& approx);
  // Bytes of side data (scales) for a tensor of this shape.
  int64_t (*overhead_bytes)(const Weight& w);
};

// ---- integer formats: symmetric, restricted range (int8 [-127, 127], int4 [-7, 7]), so that
// +max and -max are both codes and zero is exact. Per channel = one scale per index of axis 0
// (the output channel of Conv / the row of a Gemm weight); a tensor of rank < 2 (a bias) has no
// channels, so it gets one scale either way. ----
std::string IntApprox(const Weight& w, std::vector<float>& approx, nx::IntFormat fmt,
                      bool per_channel) {
  const bool channels = per_channel && w.shape.size() >= 2;
  const nx::Granularity g =
      channels ? nx::Granularity::PerChannel(0) : nx::Granularity::PerTensor();
  const nx::RangeOptions opt{.symmetric = true, .restricted_range = true};
  const std::vector<nx::QuantParams> params =
      nx::ChooseQuantParams(w.values.data(), w.shape, g, fmt, opt);
  const int32_t qmin = nx::QuantMin(fmt, /*restricted_range=*/true);
  nx::ForEachParamRun(w.shape, g, [&](int64_t begin, int64_t count, int64_t p) {
    for (int64_t i = begin; i < begin + count; ++i)
      approx[i] = nx::DequantizeValue(nx::QuantizeValue(w.values[i], params[p], qmin, fmt.qmax()),
                                      params[p]);
  });
  return channels ? fmt::format("{} scales", params.size())
                  : fmt::format("scale {:.3g}", params[0].scale);
}

int64_t NoOverhead(const Weight&) { return 0; }
int64_t OneScale(const Weight&) { return 4; }
int64_t ScalePerChannel(const Weight& w) { return 4 * (w.shape.size() >= 2 ? w.shape[0] : 1); }

// ---- floating-point formats: a plain cast (round to nearest even, saturating for fp8), or for
// fp8 also "scaled": x / s is cast with s = max|x| / format max, so the tensor uses the whole
// range of the format (one fp32 scale per tensor). ----
template <uint16_t (*To)(float), float (*From)(uint16_t)>
std::string CastApprox16(const Weight& w, std::vector<float>& approx) {
  for (size_t i = 0; i < w.values.size(); ++i) approx[i] = From(To(w.values[i]));
  return "";
}

uint8_t ToE4M3(float x) { return nx::FloatToFp8E4M3(x, /*saturate=*/true); }
uint8_t ToE5M2(float x) { return nx::FloatToFp8E5M2(x, /*saturate=*/true); }
constexpr float kE4M3Max = 448.0f;
constexpr float kE5M2Max = 57344.0f;

template <uint8_t (*To)(float), float (*From)(uint8_t), bool kScaled, const float& kMax>
std::string Fp8Approx(const Weight& w, std::vector<float>& approx) {
  const float s = kScaled && w.max_abs > 0 ? w.max_abs / kMax : 1.0f;
  for (size_t i = 0; i < w.values.size(); ++i) approx[i] = From(To(w.values[i] / s)) * s;
  return kScaled ? fmt::format("scale {:.3g}", s) : "";
}

// ---- fixed point: signed Qm.n with 8 bits in all (1 + m + n = 8), m the fewest integer bits
// whose range holds max|x| (m = 0, i.e. Q0.7 with step 1/128, for |x| < 1). No scale: the step
// is a power of two fixed by the format, which is the point of the comparison. ----
std::string QFormatApprox(const Weight& w, std::vector<float>& approx) {
  nx::QFormat q{0, 7, true};
  while (q.int_bits < 7 && q.max() < w.max_abs)
    q = nx::QFormat{q.int_bits + 1, q.frac_bits - 1, true};
  for (size_t i = 0; i < w.values.size(); ++i) approx[i] = q.Round(w.values[i]);
  return q.name();
}

const std::vector<Format>& Formats() {
  static const std::vector<Format> kFormats = {
      {"int8/tensor", "int8 symmetric [-127,127], one scale per tensor", 8,
       [](const Weight& w, std::vector<float>& a) { return IntApprox(w, a, nx::kInt8, false); },
       OneScale},
      {"int8/channel", "int8 symmetric, one scale per output channel (axis 0)", 8,
       [](const Weight& w, std::vector<float>& a) { return IntApprox(w, a, nx::kInt8, true); },
       ScalePerChannel},
      {"int4/tensor", "int4 symmetric [-7,7], one scale per tensor", 4,
       [](const Weight& w, std::vector<float>& a) { return IntApprox(w, a, nx::kInt4, false); },
       OneScale},
      {"int4/channel", "int4 symmetric, one scale per output channel (axis 0)", 4,
       [](const Weight& w, std::vector<float>& a) { return IntApprox(w, a, nx::kInt4, true); },
       ScalePerChannel},
      {"fp16", "IEEE half, cast (RNE)", 16, CastApprox16<nx::FloatToFp16, nx::Fp16ToFloat>,
       NoOverhead},
      {"bf16", "bfloat16, cast (RNE)", 16, CastApprox16<nx::FloatToBf16, nx::Bf16ToFloat>,
       NoOverhead},
      {"fp8e4m3", "fp8 E4M3FN, cast (RNE, saturating)", 8,
       Fp8Approx<ToE4M3, nx::Fp8E4M3ToFloat, false, kE4M3Max>, NoOverhead},
      {"fp8e4m3/scaled", "fp8 E4M3FN, x / s cast, s = max|x| / 448 per tensor", 8,
       Fp8Approx<ToE4M3, nx::Fp8E4M3ToFloat, true, kE4M3Max>, OneScale},
      {"fp8e5m2", "fp8 E5M2, cast (RNE, saturating)", 8,
       Fp8Approx<ToE5M2, nx::Fp8E5M2ToFloat, false, kE5M2Max>, NoOverhead},
      {"fp8e5m2/scaled", "fp8 E5M2, x / s cast, s = max|x| / 57344 per tensor", 8,
       Fp8Approx<ToE5M2, nx::Fp8E5M2ToFloat, true, kE5M2Max>, OneScale},
      {"q8", "fixed point Qm.n, 8 bits signed, m chosen per tensor from max|x|", 8, QFormatApprox,
       NoOverhead},
  };
  return kFormats;
}

// Weights: float initializers of rank >= 2 (Conv / Gemm / MatMul weights), or with
// --all-float every float initializer (biases, BatchNorm parameters, ...).
std::vector<Weight> CollectWeights(const ir::Graph& g, bool all_float) {
  std::vector<Weight> out;
  for (const auto& [name, t] : g.initializers) {
    if (!IsFloat(t.dtype()) || t.numel() == 0) continue;
    if (!all_float && t.rank() < 2) continue;
    Weight w{name, t.shape(), t.ToFloatVector(), 0.0f};
    for (float v : w.values) {
      if (!std::isfinite(v))
        throw Error("weight '" + name + "' contains NaN or Inf; cannot analyze its formats");
      w.max_abs = std::max(w.max_abs, std::fabs(v));
    }
    out.push_back(std::move(w));
  }
  return out;
}

std::string Sci(double v) { return fmt::format("{:+.2e}", v); }
nlohmann::json JsonNumber(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

int RunFormats(const FormatsOptions& o) {
  const ir::Graph g = LoadModelFile(o.model);
  const std::vector<Weight> weights = CollectWeights(g, o.all_float);
  if (weights.empty())
    throw Error(
        "model '" + o.model + "' has no " +
        (o.all_float ? "float initializers" : "float weights of rank >= 2 (try --all-float)"));
  const auto& formats = Formats();

  struct Cell {
    nx::ErrorSummary s;
    std::string detail;
  };
  std::vector<std::vector<Cell>> cells(weights.size(), std::vector<Cell>(formats.size()));
  std::vector<nx::ErrorStats> pooled(formats.size());
  // Mean SQNR in dB over tensors whose error is not zero (an exactly representable tensor has
  // SQNR +inf, which would swamp the mean); `exact` counts those.
  std::vector<double> sum_db(formats.size(), 0.0);
  std::vector<int64_t> exact(formats.size(), 0);
  std::vector<int64_t> bytes(formats.size(), 0);
  int64_t fp32_bytes = 0, total = 0;
  std::vector<float> approx;
  for (size_t w = 0; w < weights.size(); ++w) {
    const Weight& wt = weights[w];
    const int64_t n = static_cast<int64_t>(wt.values.size());
    fp32_bytes += 4 * n;
    total += n;
    approx.assign(wt.values.size(), 0.0f);
    for (size_t f = 0; f < formats.size(); ++f) {
      std::string detail;
      try {
        detail = formats[f].approximate(wt, approx);
      } catch (const nx::NumericsError& e) {
        throw Error("weight '" + wt.name + "', format " + formats[f].name + ": " + e.what());
      }
      nx::ErrorStats stats;
      stats.Add(wt.values.data(), approx.data(), n);
      pooled[f].Merge(stats);
      cells[w][f] = {stats.Summary(), detail};
      if (std::isfinite(cells[w][f].s.sqnr_db))
        sum_db[f] += cells[w][f].s.sqnr_db;
      else
        ++exact[f];
      bytes[f] += (n * formats[f].bits + 7) / 8 + formats[f].overhead_bytes(wt);
    }
  }

  auto mean_db = [&](size_t f) {
    const int64_t inexact = static_cast<int64_t>(weights.size()) - exact[f];
    return inexact ? sum_db[f] / static_cast<double>(inexact)
                   : std::numeric_limits<double>::infinity();
  };

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["weights_selected"] =
        o.all_float ? "all float initializers" : "float initializers, rank >= 2";
    j["fp32_bytes"] = fp32_bytes;
    j["parameters"] = total;
    j["formats"] = nlohmann::json::array();
    for (const Format& f : formats)
      j["formats"].push_back({{"name", f.name}, {"bits", f.bits}, {"description", f.description}});
    j["weights"] = nlohmann::json::array();
    for (size_t w = 0; w < weights.size(); ++w) {
      nlohmann::json jw = {
          {"name", weights[w].name}, {"shape", weights[w].shape}, {"max_abs", weights[w].max_abs}};
      for (size_t f = 0; f < formats.size(); ++f) {
        const nx::ErrorSummary& s = cells[w][f].s;
        jw["formats"][formats[f].name] = {{"bias", s.bias},
                                          {"std", s.std},
                                          {"mse", s.mse},
                                          {"sqnr_db", JsonNumber(s.sqnr_db)},
                                          {"max_abs_error", s.max_abs_error},
                                          {"detail", cells[w][f].detail}};
      }
      j["weights"].push_back(jw);
    }
    j["summary"] = nlohmann::json::array();
    for (size_t f = 0; f < formats.size(); ++f) {
      const nx::ErrorSummary s = pooled[f].Summary();
      j["summary"].push_back({{"format", formats[f].name},
                              {"bits", formats[f].bits},
                              {"mean_sqnr_db", JsonNumber(mean_db(f))},
                              {"exact_tensors", exact[f]},
                              {"pooled_sqnr_db", JsonNumber(s.sqnr_db)},
                              {"bias", s.bias},
                              {"std", s.std},
                              {"bytes", bytes[f]}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  fmt::print("model    {}\n", o.model);
  fmt::print("weights  {} tensors ({}), {} parameters, {} as fp32\n\n", weights.size(),
             o.all_float ? "all float initializers" : "float initializers of rank >= 2",
             GroupThousands(total), HumanBytes(fp32_bytes));
  if (!o.summary_only) {
    Table t({"tensor", "shape", "format", "detail", "bias", "std", "SQNR dB"},
            {false, false, false, false, true, true, true});
    for (size_t w = 0; w < weights.size(); ++w) {
      if (w) t.AddSeparator();
      for (size_t f = 0; f < formats.size(); ++f) {
        const nx::ErrorSummary& s = cells[w][f].s;
        t.AddRow({f == 0 ? weights[w].name : "", f == 0 ? ShapeToString(weights[w].shape) : "",
                  formats[f].name, cells[w][f].detail, Sci(s.bias), Sci(s.std).substr(1),
                  Db(s.sqnr_db)});
      }
    }
    std::cout << t.ToString() << "\n";
  }
  Table sum({"format", "bits", "mean SQNR dB", "pooled SQNR dB", "bias", "std", "bytes", "vs fp32"},
            {false, true, true, true, true, true, true, true});
  for (size_t f = 0; f < formats.size(); ++f) {
    const nx::ErrorSummary s = pooled[f].Summary();
    sum.AddRow({formats[f].name, std::to_string(formats[f].bits), Db(mean_db(f)), Db(s.sqnr_db),
                Sci(s.bias), Sci(s.std).substr(1), GroupThousands(bytes[f]),
                fmt::format("{:.1f}%", 100.0 * bytes[f] / fp32_bytes)});
  }
  std::cout << sum.ToString();
  std::cout
      << "\nSQNR = 10 log10(sum w^2 / sum (w' - w)^2); bias = mean(w' - w); std = its spread.\n"
         "mean SQNR averages the per-tensor dB (tensors stored exactly, SQNR inf, left out); "
         "pooled SQNR\ntreats all weights as one signal. bytes include scales (4 bytes each).\n";
  return 0;
}

}  // namespace

Command AddFormatsCommand(CLI::App& root) {
  auto o = std::make_shared<FormatsOptions>();
  CLI::App* app =
      root.add_subcommand("formats", "Error of a model's weights in each number format");
  app->add_option("MODEL", o->model, "ONNX model file")->required();
  app->add_flag("--all-float", o->all_float,
                "Analyze every float initializer, not only weights of rank >= 2");
  app->add_flag("--summary-only", o->summary_only, "Print only the per-format summary");
  app->add_flag("--json", o->json, "Print JSON instead of tables (infinite SQNR is null)");
  app->footer(R"EX(Example:
  $ qforge formats models/fmnist_cnn.onnx --summary-only
  model    models/fmnist_cnn.onnx
  weights  4 tensors (float initializers of rank >= 2), 421,408 parameters, 1.61 MiB as fp32

  format          bits  mean SQNR dB  pooled SQNR dB       bias      std    bytes  vs fp32
  ----------------------------------------------------------------------------------------
  int8/tensor        8          40.2            40.9  -1.20e-07  1.1e-04  421,424    25.0%
  ...

Formats: int8 and int4 symmetric (restricted range, zero exact) per tensor and per output
channel (axis 0); fp16, bf16 and fp8 E4M3/E5M2 by direct cast (round to nearest even,
saturating); fp8 "scaled" casts x / s with s = max|x| / format max per tensor; q8 is 8-bit
signed fixed point Qm.n with m chosen per tensor from max|x| (no scale). Weights are float
initializers of rank >= 2 (Conv/Gemm/MatMul weights; biases and BatchNorm parameters usually
stay in higher precision); --all-float includes every float initializer.)EX");
  return {app, [o] { return RunFormats(*o); }};
}

}  // namespace qforge::cli
