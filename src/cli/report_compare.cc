// The method comparison: plug-in methods produce model files; one measurement loop measures them.
#include "cli/report_compare.h"

#include <fmt/format.h>
#include <omp.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <random>

#include "cli/common.h"
#include "cli/quantize_options.h"
#include "qforge/calib/observer.h"
#include "qforge/kernels/isa.h"
#include "qforge/onnx/qf_file.h"
#include "qforge/passes/quantize.h"
#include "qforge/passes/quantize_dynamic.h"
#include "qforge/passes/quantize_weight_only.h"
#include "qforge/runtime/session.h"
#include "qforge/train/qat.h"

namespace qforge::cli {
namespace {

namespace fs = std::filesystem;

// What a method hands to the measurement loop.
struct Produced {
  std::string file;
  std::string description;
  std::string weight_bits, activation_bits;
};

struct MethodContext {
  const CompareOptions& o;
  const ir::Graph& model;  // the fp32 model as loaded
  std::string dir;         // where to write the method's file
};

// A method: `run` makes the model file; null `run` means not built in (`unavailable` says why).
struct MethodSpec {
  std::string name;
  std::function<Produced(MethodContext&)> run;
  std::string unavailable;
};

Produced RunFp32(MethodContext& c) {
  return {c.o.model, "the model as given", "32 (float)", "32 (float)"};
}

// `qforge calibrate --data fashion-mnist --samples N --method M` followed by
// `qforge quantize --method static --calib ... -o static.qf` with the default options.
Produced RunStatic(MethodContext& c) {
  calib::ObserverConfig config;
  config.method = calib::ParseMethod(c.o.calib_method);
  const calib::CalibTable table =
      CalibrateFashionMnist(c.model, c.o.model, c.o.data_dir, c.o.calib_samples, c.o.calib_batch,
                            c.o.seed, config, /*threads=*/0, c.o.progress ? "calibrate" : "");
  passes::QuantizeOptions qo;
  qo.target = passes::FindTargetProfile(std::string(kernels::IsaName(kernels::ActiveIsa()))).name;
  passes::QuantizeResult r = passes::QuantizeStatic(c.model, table, qo);
  passes::LowerQdqToInteger(r.graph);
  const std::string file = (fs::path(c.dir) / "static.qf").string();
  onnx_io::SaveQf(r.graph, file);
  return {file,
          fmt::format("int8 weights per channel, uint8 activations ({} calibration, {} samples)",
                      c.o.calib_method, c.o.calib_samples),
          "8", "8"};
}

// `qforge quantize --method dynamic -o dynamic.qf` with the default options: int8 weights of
// MatMul / Gemm, activations quantized per tensor at run time from their range.
Produced RunDynamic(MethodContext& c) {
  const passes::DynamicQuantizeOptions dq;
  const passes::QuantizeResult r = passes::QuantizeDynamic(c.model, dq);
  const std::string file = (fs::path(c.dir) / "dynamic.qf").string();
  onnx_io::SaveQf(r.graph, file);
  return {file,
          fmt::format("int8 weights ({}), activations quantized per tensor at run time",
                      fmt::join(dq.ops, ", ")),
          "8", "8 (dynamic)"};
}

// `qforge quantize --method weight-only -o weight-only.qf` with the default options: int4
// symmetric weights per group of 32 with fp16 scales (MatMul / Gemm), fp32 activations.
Produced RunWeightOnly(MethodContext& c) {
  const passes::WeightOnlyOptions wo;
  const passes::WeightOnlyResult r = passes::QuantizeWeightOnly(c.model, wo);
  const std::string file = (fs::path(c.dir) / "weight-only.qf").string();
  onnx_io::SaveQf(r.graph, file);
  return {file,
          fmt::format("int{} weights per group of {} (MatMul/Gemm only), fp32 activations", wo.bits,
                      wo.group_size),
          std::to_string(wo.bits), "32 (float)"};
}

// `qforge qat MODEL --data fashion-mnist --epochs E --limit L -o qat.qf` with its defaults: the
// calibration it starts from (minmax, seed 1, batch 64), ste estimator, W8A8, AdamW lr 1e-4,
// batch 64, seed 1; exported like static PTQ and lowered to the integer ops.
Produced RunQat(MethodContext& c) {
  calib::ObserverConfig oc;
  oc.method = calib::ParseMethod(c.o.calib_method);
  const calib::CalibTable table =
      CalibrateFashionMnist(c.model, c.o.model, c.o.data_dir, c.o.calib_samples, 64, /*seed=*/1, oc,
                            /*threads=*/0, c.o.progress ? "calibrate" : "");
  const data::LabeledImages train_set = data::LoadFashionMnist(data::Split::kTrain, c.o.data_dir);
  train::QatTrainOptions to;
  to.epochs = c.o.qat_epochs;
  to.limit = c.o.qat_limit;
  const int64_t n = to.limit >= 0 ? std::min(to.limit, train_set.size()) : train_set.size();
  train::QatOptions qo;
  qo.soft.anneal_steps = static_cast<int64_t>(
      std::llround(0.8 * static_cast<double>((n + to.batch - 1) / to.batch * to.epochs)));
  train::QatModel m = train::PrepareQat(c.model, table, qo);
  if (c.o.progress)
    to.progress = [](const train::QatProgress& p) {
      fmt::print(stderr, "compare: qat: epoch {} step {}/{} loss {:.4f} acc {:.2f}%\n", p.epoch,
                 p.step, p.total_steps, p.loss, 100.0 * p.accuracy);
    };
  train::TrainQat(m, c.model, train_set, to);
  ir::Graph qdq = train::ExportQdq(m);
  passes::LowerQdqToInteger(qdq);
  const std::string file = (fs::path(c.dir) / "qat.qf").string();
  onnx_io::SaveQf(qdq, file);
  return {file,
          fmt::format("static int8 fine-tuned with fake quantization (ste, {} epoch(s) of {} "
                      "training images)",
                      to.epochs, n),
          "8", "8"};
}

const std::vector<MethodSpec>& Methods() {
  static const std::vector<MethodSpec> methods = {
      {"fp32", RunFp32, ""},     {"dynamic", RunDynamic, ""}, {"weight-only", RunWeightOnly, ""},
      {"static", RunStatic, ""}, {"qat", RunQat, ""},
  };
  return methods;
}

const MethodSpec& FindMethod(const std::string& name) {
  for (const MethodSpec& m : Methods())
    if (m.name == name) return m;
  throw Error(fmt::format("--methods: unknown method '{}' (known: {})", name,
                          fmt::join(KnownMethods(), ", ")));
}

// A temporary directory removed on destruction (unless it was given by the user).
class WorkDir {
 public:
  explicit WorkDir(const std::string& keep) {
    if (!keep.empty()) {
      fs::create_directories(keep);
      path_ = keep;
      return;
    }
    std::string tmpl = (fs::temp_directory_path() / "qforge_compare_XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw Error("cannot create a temporary directory in /tmp");
    path_ = tmpl;
    owned_ = true;
  }
  ~WorkDir() {
    std::error_code ec;
    if (owned_) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool owned_ = false;
};

void Progress(const CompareOptions& o, const std::string& text) {
  if (o.progress) fmt::print(stderr, "compare: {}\n", text);
}

// Latency of `graph` at (batch, threads) on random inputs drawn as `qforge bench` draws them.
LatencyCell MeasureLatency(const ir::Graph& graph, int64_t batch, int threads,
                           const TimingOptions& timing) {
  std::mt19937 rng(0);
  const ir::ValueInfo& vi = graph.inputs.at(0);
  std::map<std::string, Tensor> feeds = {
      {vi.name, RandomInput(vi.dtype, ImageInputShape(vi, batch), rng)}};
  runtime::SessionOptions so;
  so.threads = threads;
  runtime::Session session(graph, so);
  const Timing t = TimeSession(session, feeds, timing);
  return {batch, threads, static_cast<int>(t.ms.size()), t.stats};
}

std::string Pct(double f) { return fmt::format("{:.2f}", 100.0 * f); }
std::string Ms(const LatencyStats& s) { return fmt::format("{:.3f} / {:.3f}", s.median, s.p90); }

}  // namespace

std::vector<std::string> KnownMethods() {
  std::vector<std::string> names;
  for (const MethodSpec& m : Methods()) names.push_back(m.name);
  return names;
}

CompareResult RunCompare(const CompareOptions& o) {
  for (const std::string& m : o.methods) FindMethod(m);  // reject unknown names first
  const ir::Graph model = LoadModelFile(o.model);
  CheckImageClassifier(PrepareForExecution(model), o.model);
  const data::LabeledImages test = data::LoadFashionMnist(data::Split::kTest, o.data_dir, o.limit);
  if (test.size() == 0) throw Error("no test images to evaluate (--limit 0?)");
  WorkDir dir(o.keep_dir);

  CompareResult result;
  result.all_threads = omp_get_max_threads();
  result.isa = std::string(kernels::IsaName(kernels::ActiveIsa()));
  std::vector<std::string> order = {"fp32"};
  for (const std::string& m : o.methods)
    if (std::find(order.begin(), order.end(), m) == order.end()) order.push_back(m);
  const bool show_fp32 = std::count(o.methods.begin(), o.methods.end(), "fp32") > 0;

  MethodRow fp32;
  std::vector<int64_t> fp32_predicted;
  for (const std::string& name : order) {
    const MethodSpec& spec = FindMethod(name);
    MethodRow row;
    row.method = name;
    if (!spec.run) {
      row.available = false;
      row.reason = spec.unavailable;
      Progress(o, name + ": " + spec.unavailable);
      result.rows.push_back(row);
      continue;
    }
    Progress(o,
             name == "fp32" ? "fp32: the model as given (the reference)" : name + ": quantizing");
    MethodContext ctx{o, model, dir.path()};
    const auto t0 = std::chrono::steady_clock::now();
    const Produced p = spec.run(ctx);
    row.quantize_seconds = name == "fp32" ? 0.0 : SecondsSince(t0);
    row.file = p.file;
    row.description = p.description;
    row.weight_bits = p.weight_bits;
    row.activation_bits = p.activation_bits;
    row.bytes = FileBytes(p.file);
    if (row.bytes < 0) throw Error("cannot read '" + p.file + "' made by method " + name);

    // Measured exactly as `qforge eval FILE` and `qforge bench FILE` load and run it.
    const ir::Graph graph = LoadModelForExecution(p.file);
    CheckImageClassifier(graph, p.file);
    Progress(o, name + ": accuracy on " + std::to_string(test.size()) + " test images");
    {
      runtime::Session session(graph, {});
      const EvalResult e = EvaluateClassifier(session, test, o.eval_batch, o.progress ? name : "");
      row.images = static_cast<int64_t>(e.predicted.size());
      row.top1 = e.top1();
      if (name == "fp32") fp32_predicted = e.predicted;
      int64_t same = 0;
      for (size_t i = 0; i < e.predicted.size(); ++i) same += e.predicted[i] == fp32_predicted[i];
      row.agreement = static_cast<double>(same) / static_cast<double>(e.predicted.size());
    }
    if (o.latency && (name != "fp32" || show_fp32)) {
      Progress(o, name + ": latency");
      for (int64_t batch : {int64_t{1}, o.batch_large})
        for (int threads : {1, result.all_threads})
          row.latency.push_back(MeasureLatency(graph, batch, threads, o.timing));
      row.throughput = static_cast<double>(o.batch_large) / (row.latency.back().stats.median / 1e3);
    }
    if (name == "fp32") fp32 = row;
    row.size_ratio = static_cast<double>(row.bytes) / static_cast<double>(fp32.bytes);
    row.delta_points = 100.0 * (row.top1 - fp32.top1);
    if (name != "fp32" || show_fp32) result.rows.push_back(row);
  }
  // Keep the order the user asked for.
  std::vector<MethodRow> ordered;
  for (const std::string& m : o.methods)
    for (const MethodRow& r : result.rows)
      if (r.method == m && std::none_of(ordered.begin(), ordered.end(),
                                        [&](const auto& x) { return x.method == m; }))
        ordered.push_back(r);
  result.rows = std::move(ordered);
  return result;
}

nlohmann::json CompareToJson(const CompareResult& r, const CompareOptions& o) {
  nlohmann::json rows = nlohmann::json::array();
  for (const MethodRow& m : r.rows) {
    nlohmann::json j = {{"method", m.method}, {"available", m.available}};
    if (!m.available) {
      j["reason"] = m.reason;
      rows.push_back(j);
      continue;
    }
    j["description"] = m.description;
    j["weight_bits"] = m.weight_bits;
    j["activation_bits"] = m.activation_bits;
    j["file_bytes"] = m.bytes;
    j["size_ratio"] = m.size_ratio;
    j["images"] = m.images;
    j["top1"] = m.top1;
    j["delta_points"] = m.delta_points;
    j["agreement"] = m.agreement;
    j["quantize_seconds"] = m.quantize_seconds;
    nlohmann::json lat = nlohmann::json::array();
    for (const LatencyCell& c : m.latency)
      lat.push_back({{"batch", c.batch},
                     {"threads", c.threads},
                     {"runs", c.runs},
                     {"median_ms", c.stats.median},
                     {"p90_ms", c.stats.p90},
                     {"mean_ms", c.stats.mean}});
    j["latency"] = lat;
    if (!m.latency.empty()) j["items_per_second"] = m.throughput;
    rows.push_back(j);
  }
  return {{"model", o.model},
          {"data", "fashion-mnist test"},
          {"isa", r.isa},
          {"all_threads", r.all_threads},
          {"batch_large", o.batch_large},
          {"calib_samples", o.calib_samples},
          {"calib_method", o.calib_method},
          {"methods", rows}};
}

std::string FormatCompare(const CompareResult& r, const CompareOptions& o,
                          const std::string& format) {
  if (format == "json") return CompareToJson(r, o).dump(2) + "\n";
  const int nt = r.all_threads;
  const std::string bl = std::to_string(o.batch_large);
  std::vector<std::string> header = {"method", "W/A bits", "size", "vs fp32"};
  if (o.latency)
    for (const std::string& h :
         {std::string("b1 1T ms"), "b1 " + std::to_string(nt) + "T ms", "b" + bl + " 1T ms",
          "b" + bl + " " + std::to_string(nt) + "T ms", std::string("img/s")})
      header.push_back(h);
  for (const char* h : {"top-1 %", "delta pts", "agree %", "quantize s"}) header.push_back(h);
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> notes;
  for (const MethodRow& m : r.rows) {
    std::vector<std::string> c = {m.method};
    if (!m.available) {
      c.push_back("n/a");
      c.resize(header.size(), "-");
      notes.push_back(m.method + ": " + m.reason);
      cells.push_back(c);
      continue;
    }
    // "32 (float)" -> "32", "8 (dynamic)" -> "8dyn".
    const auto bits = [](const std::string& b) {
      return b.substr(0, b.find(' ')) + (b.find("dynamic") != std::string::npos ? "dyn" : "");
    };
    c.push_back(bits(m.weight_bits) + "/" + bits(m.activation_bits));
    c.push_back(HumanBytes(m.bytes));
    c.push_back(fmt::format("{:.3f}x", m.size_ratio));
    if (o.latency) {
      for (const LatencyCell& l : m.latency) c.push_back(Ms(l.stats));
      c.push_back(fmt::format("{:.0f}", m.throughput));
    }
    c.push_back(Pct(m.top1));
    c.push_back(m.method == "fp32" ? "0.00" : fmt::format("{:+.2f}", m.delta_points));
    c.push_back(Pct(m.agreement));
    c.push_back(fmt::format("{:.2f}", m.quantize_seconds));
    cells.push_back(c);
  }
  int64_t images = 0;
  for (const MethodRow& m : r.rows) images = std::max(images, m.images);
  std::string legend = fmt::format("accuracy on {} fashion-mnist test images", images);
  if (o.latency)
    legend = fmt::format(
        "latency cells: median / p90 ms at batch 1 or {} on 1 or {} threads (isa {}); img/s at "
        "batch {} on {} threads; {}",
        bl, nt, r.isa, bl, nt, legend);
  if (format == "csv") {
    auto esc = [](const std::string& s) {
      if (s.find_first_of(",\"\n") == std::string::npos) return s;
      std::string q = "\"";
      for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      return q + "\"";
    };
    // CSV: one column per number (no combined cells), plus the availability note.
    std::string out =
        "method,available,weight_bits,activation_bits,file_bytes,size_ratio,"
        "b1_1t_median_ms,b1_1t_p90_ms,b1_nt_median_ms,b1_nt_p90_ms,bl_1t_median_ms,bl_1t_p90_ms,"
        "bl_nt_median_ms,bl_nt_p90_ms,items_per_second,top1,delta_points,agreement,"
        "quantize_seconds,note\n";
    for (const MethodRow& m : r.rows) {
      std::vector<std::string> f = {m.method, m.available ? "true" : "false"};
      if (m.available) {
        f.insert(f.end(), {m.weight_bits, m.activation_bits, std::to_string(m.bytes),
                           fmt::format("{:.6f}", m.size_ratio)});
        for (size_t k = 0; k < 4; ++k) {
          f.push_back(k < m.latency.size() ? fmt::format("{:.6f}", m.latency[k].stats.median) : "");
          f.push_back(k < m.latency.size() ? fmt::format("{:.6f}", m.latency[k].stats.p90) : "");
        }
        f.push_back(m.latency.empty() ? "" : fmt::format("{:.3f}", m.throughput));
        f.insert(f.end(), {fmt::format("{:.6f}", m.top1), fmt::format("{:.4f}", m.delta_points),
                           fmt::format("{:.6f}", m.agreement),
                           fmt::format("{:.4f}", m.quantize_seconds), m.description});
      } else {
        f.resize(19);
        f.push_back(m.reason);
      }
      for (size_t k = 0; k < f.size(); ++k) out += (k ? "," : "") + esc(f[k]);
      out += "\n";
    }
    return out;
  }
  if (format == "markdown") {
    std::string out = "| " + fmt::format("{}", fmt::join(header, " | ")) + " |\n|";
    for (size_t k = 0; k < header.size(); ++k) out += k == 0 ? " --- |" : " ---: |";
    out += "\n";
    for (const auto& c : cells) out += "| " + fmt::format("{}", fmt::join(c, " | ")) + " |\n";
    out += "\n" + legend + ".\n";
    for (const std::string& n : notes) out += "\n- " + n;
    if (!notes.empty()) out += "\n";
    return out;
  }
  if (format != "table")
    throw Error("--format must be table, markdown, csv or json, got '" + format + "'");
  std::vector<bool> numeric(header.size(), true);
  numeric[0] = numeric[1] = false;
  Table t(header, numeric);
  for (const auto& c : cells) t.AddRow(c);
  std::string out = t.ToString() + legend + "\n";
  for (const std::string& n : notes) out += n + "\n";
  return out;
}

}  // namespace qforge::cli
