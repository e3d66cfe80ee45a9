// `qforge quantize MODEL --method dynamic -o OUT.onnx|OUT.qf`: dynamic int8 quantization (int8
// weights ahead, activations quantized at run time), with the node decisions, file sizes and,
// with --data, the per-layer error table.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>

#include "cli/common.h"
#include "cli/quantize_options.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/onnx/onnx.h"
#include "qforge/onnx/qf_file.h"
#include "qforge/passes/quantize_dynamic.h"
#include "qforge/passes/rnn_onnx.h"

namespace qforge::cli {
namespace {

// Fashion-MNIST training images for the error table, shaped for the model's single input.
std::vector<std::map<std::string, Tensor>> ErrorBatches(const QuantizeCliOptions& o,
                                                        const ir::Graph& g) {
  if (o.data.empty()) return {};
  if (o.data != "fashion-mnist")
    throw Error("unknown data set '" + o.data + "' (supported: fashion-mnist)");
  if (g.inputs.size() != 1 || g.inputs[0].dtype != DType::kF32)
    throw Error("--data feeds one f32 image input; model '" + o.model + "' does not have one");
  const ir::ValueInfo& in = g.inputs[0];
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

}  // namespace

int RunQuantizeDynamic(const QuantizeCliOptions& o) {
  const bool to_qf = EndsWith(o.output, ".qf");
  if (!to_qf && !EndsWith(o.output, ".onnx"))
    throw Error("-o '" + o.output + "': the output must end in .onnx (standard ONNX) or .qf");
  passes::DynamicQuantizeOptions qo;
  if (!o.ops.empty()) qo.ops = o.ops;
  if (o.granularity == "per-row")
    qo.per_row = true;
  else if (o.granularity != "per-tensor")
    throw Error("--granularity must be per-tensor or per-row, got '" + o.granularity + "'");
  if (qo.per_row && !to_qf)
    throw Error(
        "--granularity per-row has no standard ONNX form (ONNX DynamicQuantizeLinear is per "
        "tensor; per-row uses the qforge-only op qforge::DynamicQLinear): write OUT.qf, or use "
        "--granularity per-tensor for an ONNX file");
  qo.exclude = o.exclude;

  const ir::Graph model = LoadModelFile(o.model);
  const auto batches = ErrorBatches(o, model);  // fail on bad --data before writing anything
  passes::QuantizeResult r = passes::QuantizeDynamic(model, qo);
  if (!to_qf)  // qforge::DynamicQuantizeGRU -> standard ops (throws when it has no such form)
    for (std::string& note : passes::LowerDynamicQuantizeGru(r.graph))
      r.notes.push_back(std::move(note));
  if (!to_qf && passes::HasQforgeOnlyOps(r.graph))
    throw Error("-o '" + o.output +
                "': the quantized graph has qforge-only ops that no standard ONNX runtime runs: "
                "write OUT.qf");
  if (!o.calib.empty()) r.notes.push_back("--calib is not used by --method dynamic");
  if (to_qf)
    onnx_io::SaveQf(r.graph, o.output);
  else
    onnx_io::SaveModel(r.graph, o.output);
  const int64_t fp32_bytes = FileBytes(o.model), out_bytes = FileBytes(o.output);

  if (!batches.empty()) {
    ir::Graph reference = model;
    passes::RunInferencePipeline(reference);
    passes::MeasureActivationErrors(reference, r, batches, o.threads);
  }
  // Worst first: lowest SQNR (outputs without data have no count and are not listed).
  std::vector<const passes::QuantizedTensorInfo*> layers;
  for (const auto& t : r.tensors)
    if (t.error.count > 0) layers.push_back(&t);
  std::stable_sort(layers.begin(), layers.end(), [](const auto* a, const auto* b) {
    return a->error.sqnr_db < b->error.sqnr_db;
  });
  int quantized = 0;
  for (const auto& n : r.nodes) quantized += n.quantized;
  const double ratio = fp32_bytes > 0 ? static_cast<double>(out_bytes) / fp32_bytes : 0;
  const std::string scheme = fmt::format(
      "int8 weights per output channel (symmetric, [-127, 127]), uint8 activations asymmetric "
      "{} quantized at run time, fp32 outputs",
      qo.per_row ? "per row (token)" : "per tensor");
  const std::string format =
      to_qf ? "qf"
            : "onnx (DynamicQuantizeLinear + MatMulInteger / ConvInteger, LSTM as "
              "com.microsoft DynamicQuantizeLSTM, GRU unrolled over time)";

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["output"] = o.output;
    j["format"] = to_qf ? "qf" : "onnx-dynamic";
    j["method"] = "dynamic";
    j["granularity"] = qo.per_row ? "per-row" : "per-tensor";
    j["ops"] = qo.ops;
    j["scheme"] = scheme;
    j["notes"] = r.notes;
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
                             {"kind", w ? "weight" : "output"},
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

  std::cout << fmt::format("quantized {} -> {} ({}), dynamic int8\n", o.model, o.output, format);
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
    std::cout << "; layer outputs not measured: add --data fashion-mnist --samples N)\n";
  else
    std::cout << fmt::format(
        ", each quantized layer's output end to end on {} {} training "
        "images)\n",
        o.samples, o.data);
  Table t({"tensor", "kind", "node", "scales", "bias", "std", "SQNR dB"},
          {false, false, false, true, true, true, true});
  for (const auto* l : layers) {
    const bool w = l->kind == passes::QuantizedTensorInfo::Kind::kWeight;
    t.AddRow({l->tensor, w ? "weight" : "output", l->node, std::to_string(l->channels),
              fmt::format("{:.3g}", l->error.bias), fmt::format("{:.3g}", l->error.std),
              Db(l->error.sqnr_db)});
  }
  std::cout << t.ToString();
  return 0;
}

}  // namespace qforge::cli
