// `qforge quantize MODEL --method weight-only --bits 4|8 --group-size 32|64|128 -o
// OUT.qf|OUT.onnx`: weight-only low-bit quantization (MatMul / Gemm weights to com.microsoft
// MatMulNBits, activations fp32), with the node decisions, file sizes, the per-layer weight error
// and, with
// --data, the model-output error on training images.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>

#include "cli/common.h"
#include "cli/quantize_options.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/onnx/onnx.h"
#include "qforge/onnx/qf_file.h"
#include "qforge/passes/quantize_weight_only.h"
#include "qforge/runtime/session.h"

namespace qforge::cli {
namespace {

// Model-output error on data: the fp32 model and the quantized one on the same training images.
struct OutputError {
  std::string output;
  numerics::ErrorSummary error;
  int64_t rows = 0, top1_agree = 0;  // argmax agreement over the last axis (2-D outputs)
};

std::vector<OutputError> MeasureOutputError(const QuantizeCliOptions& o, const ir::Graph& fp32,
                                            const ir::Graph& quantized) {
  if (o.data != "fashion-mnist")
    throw Error("unknown data set '" + o.data + "' (supported: fashion-mnist)");
  if (fp32.inputs.size() != 1 || fp32.inputs[0].dtype != DType::kF32)
    throw Error("--data feeds one f32 image input; model '" + o.model + "' does not have one");
  const ir::ValueInfo& in = fp32.inputs[0];
  const data::LabeledImages train =
      data::LoadFashionMnist(data::Split::kTrain, o.data_dir, o.samples);
  runtime::SessionOptions so;
  so.threads = o.threads;
  runtime::Session ref(PrepareForExecution(fp32), so), q(PrepareForExecution(quantized), so);
  std::vector<OutputError> out;
  std::vector<numerics::ErrorStats> stats(fp32.outputs.size());
  for (const auto& v : fp32.outputs) out.push_back({v.name, {}, 0, 0});
  data::BatchIterator it(train, o.batch);
  for (data::Batch b; it.Next(b);) {
    Shape shape = {b.size(), 1, 28, 28};
    if (in.has_shape && in.dims.size() == 3) shape = {b.size(), 28, 28};
    if (in.has_shape && in.dims.size() == 2) shape = {b.size(), 784};
    const std::map<std::string, Tensor> feed = {{in.name, b.images.Reshaped(shape)}};
    auto yr = ref.Run(feed), yq = q.Run(feed);
    for (size_t i = 0; i < out.size(); ++i) {
      const Tensor& r = yr.at(out[i].output);
      const Tensor& a = yq.at(out[i].output);
      if (r.dtype() != DType::kF32 || a.dtype() != DType::kF32 || r.numel() != a.numel()) continue;
      stats[i].Add(r.data<float>(), a.data<float>(), r.numel());
      if (r.rank() == 2 && r.dim(1) > 0) {
        const int64_t C = r.dim(1);
        for (int64_t m = 0; m < r.dim(0); ++m) {
          const float* pr = r.data<float>() + m * C;
          const float* pa = a.data<float>() + m * C;
          out[i].top1_agree +=
              (std::max_element(pr, pr + C) - pr) == (std::max_element(pa, pa + C) - pa);
          ++out[i].rows;
        }
      }
    }
  }
  for (size_t i = 0; i < out.size(); ++i) out[i].error = stats[i].Summary();
  return out;
}

}  // namespace

int RunQuantizeWeightOnly(const QuantizeCliOptions& o) {
  const bool to_qf = EndsWith(o.output, ".qf");
  if (!to_qf && !EndsWith(o.output, ".onnx"))
    throw Error("-o '" + o.output +
                "': the output must end in .onnx (com.microsoft MatMulNBits) or .qf (native)");
  if (!o.calib.empty()) throw Error("--calib is not used by --method weight-only");
  if (o.scale_dtype != "fp16" && o.scale_dtype != "fp32")
    throw Error("--scale-dtype must be fp16 or fp32, got '" + o.scale_dtype + "'");
  passes::WeightOnlyOptions wo;
  wo.bits = o.bits;
  wo.group_size = o.group_size;
  wo.symmetric = !o.asymmetric_weights;
  wo.fp16_scales = o.scale_dtype == "fp16";
  wo.exclude = o.exclude;

  const ir::Graph model = LoadModelFile(o.model);
  if (!o.data.empty() && o.data != "fashion-mnist")
    throw Error("unknown data set '" + o.data + "' (supported: fashion-mnist)");
  passes::WeightOnlyResult r = passes::QuantizeWeightOnly(model, wo);
  std::vector<OutputError> out_err;
  if (!o.data.empty()) out_err = MeasureOutputError(o, model, r.graph);  // before writing
  if (to_qf)
    onnx_io::SaveQf(r.graph, o.output);
  else
    onnx_io::SaveModel(r.graph, o.output);
  const int64_t fp32_bytes = FileBytes(o.model), out_bytes = FileBytes(o.output);
  const double ratio = fp32_bytes > 0 ? static_cast<double>(out_bytes) / fp32_bytes : 0;
  int64_t w_fp32 = 0, w_q = 0;
  for (const auto& l : r.layers) {
    w_fp32 += l.fp32_bytes;
    w_q += l.quantized_bytes;
  }
  const double w_ratio = w_fp32 > 0 ? static_cast<double>(w_q) / w_fp32 : 0;
  int quantized = 0;
  for (const auto& n : r.nodes) quantized += n.quantized;
  const std::string scheme = fmt::format(
      "int{} weights per group of {} ({}), {} scales, fp32 activations", o.bits, o.group_size,
      o.asymmetric_weights ? "asymmetric, zero point per group" : "symmetric", o.scale_dtype);
  std::vector<const passes::WeightOnlyLayer*> layers;
  for (const auto& l : r.layers) layers.push_back(&l);
  std::stable_sort(layers.begin(), layers.end(), [](const auto* a, const auto* b) {
    return a->error.sqnr_db < b->error.sqnr_db;
  });

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["output"] = o.output;
    j["format"] = to_qf ? "qf" : "onnx";
    j["method"] = o.method;
    j["bits"] = o.bits;
    j["group_size"] = o.group_size;
    j["symmetric"] = !o.asymmetric_weights;
    j["scale_dtype"] = o.scale_dtype;
    j["scheme"] = scheme;
    j["notes"] = r.notes;
    j["nodes"] = nlohmann::json::array();
    for (const auto& n : r.nodes)
      j["nodes"].push_back(
          {{"node", n.node}, {"op", n.op_type}, {"quantized", n.quantized}, {"reason", n.reason}});
    j["quantized_nodes"] = quantized;
    j["sizes"] = {{"fp32_bytes", fp32_bytes},
                  {"quantized_bytes", out_bytes},
                  {"ratio", ratio},
                  {"weights_fp32_bytes", w_fp32},
                  {"weights_quantized_bytes", w_q},
                  {"weights_ratio", w_ratio}};
    j["layers"] = nlohmann::json::array();
    for (const auto* l : layers)
      j["layers"].push_back({{"tensor", l->tensor},
                             {"node", l->node},
                             {"N", l->N},
                             {"K", l->K},
                             {"padded_K", l->padded_K},
                             {"groups", l->groups},
                             {"fp32_bytes", l->fp32_bytes},
                             {"quantized_bytes", l->quantized_bytes},
                             {"count", l->error.count},
                             {"bias", JsonNumberOrText(l->error.bias)},
                             {"std", JsonNumberOrText(l->error.std)},
                             {"sqnr_db", JsonNumberOrText(l->error.sqnr_db)},
                             {"max_abs_error", JsonNumberOrText(l->error.max_abs_error)}});
    j["output_error"] = nlohmann::json(nullptr);
    if (!out_err.empty()) {
      j["output_error"] = {
          {"data", o.data}, {"samples", o.samples}, {"outputs", nlohmann::json::array()}};
      for (const auto& e : out_err)
        j["output_error"]["outputs"].push_back(
            {{"output", e.output},
             {"sqnr_db", JsonNumberOrText(e.error.sqnr_db)},
             {"bias", JsonNumberOrText(e.error.bias)},
             {"std", JsonNumberOrText(e.error.std)},
             {"top1_agreement",
              e.rows ? nlohmann::json(double(e.top1_agree) / e.rows) : nlohmann::json(nullptr)}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::cout << fmt::format("quantized {} -> {} ({})\n", o.model, o.output,
                           to_qf ? "native .qf" : "ONNX, com.microsoft MatMulNBits");
  std::cout << "scheme: " << scheme << "\n";
  for (const std::string& n : r.notes) std::cout << "note: " << n << "\n";
  std::cout << fmt::format("\nnodes: {} of {} MatMul/Gemm quantized\n", quantized, r.nodes.size());
  Table nodes({"node", "op", "quantized", "how / why not"});
  for (const auto& n : r.nodes)
    nodes.AddRow({n.node, n.op_type, n.quantized ? "yes" : "no", n.reason});
  std::cout << nodes.ToString();
  std::cout << fmt::format("\nsize: fp32 {} ({}) -> quantized {} ({}), {:.1f}% of fp32\n",
                           GroupThousands(fp32_bytes), HumanBytes(fp32_bytes),
                           GroupThousands(out_bytes), HumanBytes(out_bytes), 100.0 * ratio);
  std::cout << fmt::format(
      "quantized weights: {} -> {} bytes, {:.1f}% (the rest of the file: other parameters, "
      "graph)\n",
      GroupThousands(w_fp32), GroupThousands(w_q), 100.0 * w_ratio);
  std::cout << "\nper-layer weight error (worst first; e = dequantized - fp32)\n";
  Table t({"tensor", "node", "N x K", "groups", "bytes", "% fp32", "bias", "std", "SQNR dB"},
          {false, false, false, true, true, true, true, true, true});
  for (const auto* l : layers)
    t.AddRow(
        {l->tensor, l->node, fmt::format("{} x {}", l->N, l->K), std::to_string(l->groups),
         GroupThousands(l->quantized_bytes),
         fmt::format("{:.1f}", 100.0 * l->quantized_bytes / std::max<int64_t>(1, l->fp32_bytes)),
         fmt::format("{:.3g}", l->error.bias), fmt::format("{:.3g}", l->error.std),
         Db(l->error.sqnr_db)});
  std::cout << t.ToString();
  if (!out_err.empty()) {
    std::cout << fmt::format(
        "\nmodel-output error on {} {} training images (fp32 vs weight-only)\n", o.samples, o.data);
    Table e({"output", "bias", "std", "SQNR dB", "top-1 agreement"},
            {false, true, true, true, true});
    for (const auto& x : out_err)
      e.AddRow({x.output, fmt::format("{:.3g}", x.error.bias), fmt::format("{:.3g}", x.error.std),
                Db(x.error.sqnr_db),
                x.rows ? fmt::format("{:.2f}%", 100.0 * x.top1_agree / x.rows) : "-"});
    std::cout << e.ToString();
  }
  return 0;
}

}  // namespace qforge::cli
