// `qforge quantize MODEL --method static --calib calib.json -o OUT.onnx|OUT.qf`: static int8
// quantization, with the node decisions, file sizes and the per-layer error table.
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/quantize_options.h"
#include "cli/report_analysis.h"
#include "qforge/calib/calib_table.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/kernels/isa.h"
#include "qforge/onnx/onnx.h"
#include "qforge/onnx/qf_file.h"
#include "qforge/passes/quantize.h"

namespace qforge::cli {
namespace {

// Calibration-data batches for the activation error table: Fashion-MNIST training images
// (the calibration source), shaped for the model's single input like `qforge eval` does.
std::vector<std::map<std::string, Tensor>> DataBatches(const QuantizeCliOptions& o,
                                                       const ir::Graph& g) {
  if (o.data.empty()) return {};
  if (o.data != "fashion-mnist")
    throw Error("unknown data set '" + o.data + "' (supported: fashion-mnist)");
  if (g.inputs.size() != 1)
    throw Error(
        fmt::format("--data feeds one image input, but the model has {} inputs", g.inputs.size()));
  const ir::ValueInfo& in = g.inputs[0];
  if (in.dtype != DType::kF32)
    throw Error("--data feeds f32 images, but model input '" + in.name + "' is " +
                std::string(DTypeName(in.dtype)));
  const data::LabeledImages train =
      data::LoadFashionMnist(data::Split::kTrain, o.data_dir, o.samples);
  std::vector<std::map<std::string, Tensor>> batches;
  data::BatchIterator it(train, o.batch);
  for (data::Batch b; it.Next(b);) {
    Shape shape = {b.size(), 1, 28, 28};
    if (in.has_shape && in.dims.size() == 3) shape = {b.size(), 28, 28};
    if (in.has_shape && in.dims.size() == 2) shape = {b.size(), 784};
    batches.push_back({{in.name, b.images.Reshaped(shape)}});
  }
  return batches;
}

// --auto-exclude: the analysis of `qforge analyze` on the test split (report_analysis.h).
SensitivityResult AutoExclude(const QuantizeCliOptions& o, const ir::Graph& model,
                              const calib::CalibTable& table, const passes::QuantizeOptions& qo) {
  const data::LabeledImages test =
      data::LoadFashionMnist(data::Split::kTest, o.data_dir, o.eval_limit);
  if (test.size() == 0) throw Error("no test images for --auto-exclude (--eval-limit 0?)");
  runtime::SessionOptions so;
  so.threads = o.threads;
  runtime::Session session(PrepareForExecution(model), so);
  const EvalResult fp32 = EvaluateClassifier(session, test, o.batch, "fp32");
  return AnalyzeSensitivity(model, table, qo, test, fp32, o.batch, o.budget, "auto-exclude");
}

std::string AutoExcludeNote(const SensitivityResult& s) {
  const std::string kept =
      s.recommended.empty() ? "no layer" : fmt::format("{}", fmt::join(s.recommended, ", "));
  return fmt::format(
      "auto-exclude: kept {} in fp32; top-1 {:.2f}% vs fp32 {:.2f}% on {} test images ({}within "
      "the {:.2f}-point budget)",
      kept, 100 * s.recommended_top1, 100 * s.fp32_top1, s.images, s.within_budget ? "" : "NOT ",
      s.budget);
}

int RunQuantizeStatic(const QuantizeCliOptions& o) {
  if (o.calib.empty())
    throw Error("--method static needs --calib calib.json (from 'qforge calibrate')");
  const bool to_qf = EndsWith(o.output, ".qf");
  if (!to_qf && !EndsWith(o.output, ".onnx"))
    throw Error("-o '" + o.output + "': the output must end in .onnx (QDQ) or .qf (native)");
  passes::QuantizeOptions qo;
  qo.per_channel = !o.per_tensor;
  if (o.activation_dtype == "uint8")
    qo.activation_dtype = DType::kU8;
  else if (o.activation_dtype == "int8")
    qo.activation_dtype = DType::kI8;
  else
    throw Error("--activation-dtype must be uint8 or int8, got '" + o.activation_dtype + "'");
  qo.symmetric_activations = o.symmetric_activations;
  qo.exclude = o.exclude;
  qo.target = o.target == "auto" ? std::string(kernels::IsaName(kernels::ActiveIsa())) : o.target;
  const passes::TargetProfile& target = passes::FindTargetProfile(qo.target);
  qo.target = target.name;
  qo.quantize_outputs = !o.keep_fp32_outputs;

  const ir::Graph model = LoadModelFile(o.model);
  const calib::CalibTable table = calib::LoadCalibTable(o.calib);
  const auto batches = DataBatches(o, model);  // fail on bad --data before writing anything
  std::optional<SensitivityResult> auto_exclude;
  if (o.auto_exclude) {
    if (o.data.empty())
      throw Error("--auto-exclude needs --data fashion-mnist (to measure accuracy)");
    auto_exclude = AutoExclude(o, model, table, qo);
    qo.exclude.insert(qo.exclude.end(), auto_exclude->recommended.begin(),
                      auto_exclude->recommended.end());
  }
  passes::QuantizeResult r = passes::QuantizeStatic(model, table, qo);
  if (auto_exclude) r.notes.push_back(AutoExcludeNote(*auto_exclude));
  if (to_qf) {
    ir::Graph lowered = r.graph;
    passes::LowerQdqToInteger(lowered);
    onnx_io::SaveQf(lowered, o.output);
  } else {
    onnx_io::SaveModel(r.graph, o.output);
  }
  const int64_t fp32_bytes = FileBytes(o.model), out_bytes = FileBytes(o.output);

  if (!batches.empty()) {
    ir::Graph reference = model;
    passes::RunInferencePipeline(reference);
    passes::MeasureActivationErrors(reference, r, batches, o.threads);
  }
  // Worst first: lowest SQNR (activations without data have no count and go last).
  std::vector<const passes::QuantizedTensorInfo*> layers;
  for (const auto& t : r.tensors)
    if (t.error.count > 0) layers.push_back(&t);
  std::stable_sort(layers.begin(), layers.end(), [](const auto* a, const auto* b) {
    return a->error.sqnr_db < b->error.sqnr_db;
  });
  int quantized = 0;
  for (const auto& n : r.nodes) quantized += n.quantized;
  const double ratio = fp32_bytes > 0 ? static_cast<double>(out_bytes) / fp32_bytes : 0;
  const std::string scheme =
      fmt::format("int8 weights {} (symmetric, [-127, 127]), {} activations {}, int32 bias",
                  o.per_tensor ? "per tensor" : "per channel", o.activation_dtype,
                  o.symmetric_activations ? "symmetric" : "asymmetric");

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["output"] = o.output;
    j["format"] = to_qf ? "qf" : "onnx-qdq";
    j["method"] = o.method;
    j["calib"] = o.calib;
    j["target"] = target.name;
    j["scheme"] = scheme;
    j["notes"] = r.notes;
    if (auto_exclude) j["auto_exclude"] = SensitivityToJson(*auto_exclude);
    j["nodes"] = nlohmann::json::array();
    for (const auto& n : r.nodes)
      j["nodes"].push_back(
          {{"node", n.node}, {"op", n.op_type}, {"quantized", n.quantized}, {"reason", n.reason}});
    j["quantized_nodes"] = quantized;
    j["sizes"] = {{"fp32_bytes", fp32_bytes}, {"quantized_bytes", out_bytes}, {"ratio", ratio}};
    j["error_data"] = batches.empty() ? nlohmann::json(nullptr)
                                      : nlohmann::json({{"data", o.data}, {"samples", o.samples}});
    j["layers"] = nlohmann::json::array();
    for (const auto* t : layers) {
      const bool w = t->kind == passes::QuantizedTensorInfo::Kind::kWeight;
      j["layers"].push_back({{"tensor", t->tensor},
                             {"kind", w ? "weight" : "activation"},
                             {"node", t->node},
                             {"dtype", std::string(DTypeName(t->dtype))},
                             {"scales", t->channels},
                             {"count", t->error.count},
                             {"bias", JsonNumberOrText(t->error.bias)},
                             {"std", JsonNumberOrText(t->error.std)},
                             {"sqnr_db", JsonNumberOrText(t->error.sqnr_db)},
                             {"max_abs_error", JsonNumberOrText(t->error.max_abs_error)}});
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::cout << fmt::format("quantized {} -> {} ({}), target {}\n", o.model, o.output,
                           to_qf ? "native .qf, integer ops" : "ONNX QDQ", target.name);
  std::cout << "scheme: " << scheme << "\n";
  for (const std::string& n : r.notes) std::cout << "note: " << n << "\n";
  std::cout << fmt::format("\nnodes: {} of {} quantized\n", quantized, r.nodes.size());
  Table nodes({"node", "op", "int8", "how / why not"});
  for (const auto& n : r.nodes)
    nodes.AddRow({n.node, n.op_type, n.quantized ? "yes" : "no", n.reason});
  std::cout << nodes.ToString();
  std::cout << fmt::format("\nsize: fp32 {} ({}) -> quantized {} ({}), {:.1f}% of fp32\n",
                           GroupThousands(fp32_bytes), HumanBytes(fp32_bytes),
                           GroupThousands(out_bytes), HumanBytes(out_bytes), 100.0 * ratio);
  std::cout << "\nper-layer quantization error (worst first; e = quantized - fp32; weights "
               "directly";
  if (batches.empty())
    std::cout << "; activations not measured: add --data fashion-mnist --samples N)\n";
  else
    std::cout << fmt::format(", activations on {} {} training images)\n", o.samples, o.data);
  Table t({"tensor", "kind", "node", "dtype", "scales", "bias", "std", "SQNR dB"},
          {false, false, false, false, true, true, true, true});
  for (const auto* l : layers) {
    const bool w = l->kind == passes::QuantizedTensorInfo::Kind::kWeight;
    t.AddRow({l->tensor, w ? "weight" : "activation", l->node, std::string(DTypeName(l->dtype)),
              std::to_string(l->channels), fmt::format("{:.3g}", l->error.bias),
              fmt::format("{:.3g}", l->error.std), Db(l->error.sqnr_db)});
  }
  std::cout << t.ToString();
  return 0;
}

int RunQuantize(const QuantizeCliOptions& o) {
  if (o.method == "static") return RunQuantizeStatic(o);
  if (o.method == "dynamic") return RunQuantizeDynamic(o);
  if (o.method == "weight-only") return RunQuantizeWeightOnly(o);
  throw Error("--method '" + o.method + "' is not known (supported: static, dynamic, weight-only)");
}

}  // namespace

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t FileBytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

Command AddQuantizeCommand(CLI::App& root) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* app = root.add_subcommand(
      "quantize", "Quantize a model: static int8 PTQ, dynamic int8, or weight-only int8/int4");
  app->add_option("MODEL", o->model, "fp32 ONNX model")->required();
  app->add_option("--method", o->method,
                  "static (calibrated int8), dynamic (int8 weights, activations quantized at run "
                  "time), weight-only (int8/int4 weights, fp32 activations)")
      ->capture_default_str();
  app->add_option("--calib", o->calib,
                  "Calibration table (from 'qforge calibrate'); required by --method static");
  app->add_option("--ops", o->ops,
                  "dynamic: op types to quantize (default MatMul Gemm LSTM GRU; Conv is opt-in "
                  "because dynamic conv is known to lose accuracy). LSTM exports as ONNX "
                  "Runtime's com.microsoft DynamicQuantizeLSTM; GRU has no ONNX Runtime op: "
                  "a quantized GRU needs OUT.qf (or leave GRU out of --ops)")
      ->expected(1, -1);
  app->add_option("--granularity", o->granularity,
                  "dynamic: activation parameters per-tensor or per-row (per token)")
      ->capture_default_str();
  app->add_option("--bits", o->bits, "weight-only: weight bits, 8 or 4")->capture_default_str();
  app->add_option("--group-size", o->group_size, "weight-only: weights per scale, 32, 64 or 128")
      ->capture_default_str();
  app->add_flag("--asymmetric-weights", o->asymmetric_weights,
                "weight-only: a zero point per group (default symmetric)");
  app->add_option("--scale-dtype", o->scale_dtype, "weight-only: scales stored as fp16 or fp32")
      ->capture_default_str();
  app->add_option("-o,--output", o->output, "Output: OUT.onnx (QDQ) or OUT.qf (native)")
      ->required();
  app->add_flag("--per-tensor", o->per_tensor,
                "One weight scale per tensor (default: per channel)");
  app->add_option("--activation-dtype", o->activation_dtype, "uint8 or int8")
      ->capture_default_str();
  app->add_flag("--symmetric-activations", o->symmetric_activations,
                "Symmetric activation ranges (zero point at the center)");
  app->add_option("--exclude", o->exclude, "Keep these nodes in fp32 (node names)")
      ->expected(1, -1);
  app->add_option("--target", o->target,
                  "Instruction-set profile: auto (this CPU), generic, avx2, avx512vnni")
      ->capture_default_str();
  app->add_flag("--keep-fp32-outputs", o->keep_fp32_outputs,
                "Do not quantize graph outputs (the last op writes fp32)");
  app->add_flag("--auto-exclude", o->auto_exclude,
                "static: keep the most sensitive layers in fp32 until top-1 is within --budget "
                "points of fp32 (measured on the test split; needs --data; see 'qforge analyze')");
  app->add_option("--budget", o->budget, "--auto-exclude: top-1 points below fp32 allowed")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--eval-limit", o->eval_limit,
                  "--auto-exclude: measure on the first N test images only")
      ->check(CLI::PositiveNumber);
  app->add_option("--data", o->data,
                  "Data for the activation error table: fashion-mnist (training images)");
  app->add_option("--data-dir", o->data_dir, "Where the data set's IDX files are")
      ->capture_default_str();
  app->add_option("--samples", o->samples, "Images for the activation error table")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--batch", o->batch, "Images per run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--threads", o->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  app->add_flag("--json", o->json, "Print JSON instead of tables");
  app->footer(R"EX(Example:
  $ qforge calibrate models/fmnist_cnn.onnx --data fashion-mnist --samples 1000 --out calib.json
  $ qforge quantize models/fmnist_cnn.onnx --method static --calib calib.json -o fmnist_int8.qf \
        --data fashion-mnist --samples 256
  quantized models/fmnist_cnn.onnx -> fmnist_int8.qf (native .qf, integer ops), target avx512vnni
  scheme: int8 weights per channel (symmetric, [-127, 127]), uint8 activations asymmetric, int32 bias
  nodes: 10 of 12 quantized
  node         op    int8  how / why not
  /Sub         Sub   no    no int8 kernel for Sub
  /conv1/Conv  Conv  yes   weights per channel, absorbs Relu '/Relu'
  ...
  size: fp32 830,355 (810.89 KiB) -> quantized 212,345 (207.37 KiB), 25.6% of fp32
  per-layer quantization error (worst first; ...)
  tensor  kind  node  dtype  scales  bias  std  SQNR dB
  ...
  $ qforge eval fmnist_int8.qf --data fashion-mnist

OUT.onnx is a standard QDQ model (QuantizeLinear/DequantizeLinear, opset >= 13 for per-channel
weights) that ONNX Runtime runs; OUT.qf is qforge's compact native file holding the lowered
integer graph. qforge eval/run/bench run either on the integer kernels. The error table lists,
for every quantized weight and activation, the error's mean (bias), standard deviation and SQNR
against fp32; activations are measured end to end (fp32 model vs the quantized model computed
in fp32 with fake quantization) on --samples training images. See docs/quantization.md.)EX");
  return {app, [o] { return RunQuantize(*o); }};
}

}  // namespace qforge::cli
