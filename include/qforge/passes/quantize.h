// Static post-training quantization (fp32 graph + calibration table -> QDQ graph), lowering of
// QDQ graphs to the integer runtime ops, and the per-layer quantization error analysis.
//
// The scheme (docs/quantization.md): weights symmetric int8 in [-127, 127] per output channel
// (or per tensor), stored as int8 initializers behind a DequantizeLinear; biases int32 with
// scale s_in * s_w and zero point 0; activations uint8 or int8, symmetric or asymmetric, with
// (s, z) from the calibration range through numerics::ChooseQuantParams.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "qforge/calib/calib_table.h"
#include "qforge/ir/graph.h"
#include "qforge/numerics/error_stats.h"
#include "qforge/passes/passes.h"

namespace qforge::passes {

// What an instruction-set profile of qforge's int8 kernels supports (docs/int8_kernels.md).
// Every profile takes int8 weights with per-column (per-output-channel) scales and uint8 or
// int8 activations; they differ in the cost of int8 activations and in the largest reduction.
struct TargetProfile {
  std::string name;         // "generic", "avx2", "avx512vnni"
  std::string description;  // one line for --help and reports
  // Largest reduction length K (Conv: C/group * kernel elements; Gemm/MatMul: K) whose int32
  // accumulation the kernels guarantee exact: K * 255 * 255 < 2^31 (K <= 2^15).
  int64_t max_reduction = int64_t{1} << 15;
  bool int8_activations = true;   // int8 activations accepted (VNNI: costs one XOR per byte)
  bool uint8_activations = true;  // uint8 activations accepted
  std::string note;               // what the quantizer does differently for this profile
};

// The known profiles, and lookup by name (throws Error listing the known names). The kernel ISA
// names "scalar" and "avx512" (kernels::IsaName) stand for "generic" and "avx512vnni".
const std::vector<TargetProfile>& TargetProfiles();
const TargetProfile& FindTargetProfile(const std::string& name);

struct QuantizeOptions {
  bool per_channel = true;              // weights per output channel (false: per tensor)
  DType activation_dtype = DType::kU8;  // kU8 or kI8
  bool symmetric_activations = false;
  std::vector<std::string> exclude;  // node names kept in fp32 (after the inference pipeline)
  std::string target = "generic";    // a TargetProfile name
  // Quantize graph outputs too (the last op then ends in QuantizeLinear -> DequantizeLinear,
  // and the lowered graph is integer-only up to that final DequantizeLinear).
  bool quantize_outputs = true;
};

// The quantizer's decision for one node of the (pipeline-cleaned) input graph.
struct NodeDecision {
  std::string node;
  std::string op_type;
  bool quantized = false;
  std::string reason;  // why not (or, when quantized, how: "absorbed into ...", "pass-through")
};

// One quantized tensor, for the report.
struct QuantizedTensorInfo {
  enum class Kind { kWeight, kActivation };
  Kind kind = Kind::kActivation;
  std::string tensor;       // name in the fp32 graph (after the inference pipeline)
  std::string dequantized;  // activations: the DequantizeLinear output in the QDQ graph
  std::string node;         // weights: the consuming node; activations: the producer (or "input")
  DType dtype = DType::kU8;
  int64_t channels = 1;  // number of scales (1 = per tensor)
  float scale = 1;       // first (or only) scale
  int32_t zero_point = 0;
  numerics::ErrorSummary error;  // weights: filled by QuantizeStatic; activations: see below
};

struct QuantizeResult {
  ir::Graph graph;                  // the QDQ graph
  std::vector<PassStat> pipeline;   // the inference pipeline run first
  std::vector<NodeDecision> nodes;  // in node order of the cleaned graph
  std::vector<QuantizedTensorInfo> tensors;
  std::vector<std::string> notes;  // target-profile remarks, fallbacks taken
};

// Quantizes a copy of `graph`: runs RunInferencePipeline, then inserts QuantizeLinear /
// DequantizeLinear pairs (opset >= 13 for per-channel weights; a model with a lower opset is
// quantized per tensor, with a note). Throws Error for bad options (unknown target or exclude
// name, activation dtype other than uint8/int8, one the target does not accept) and for an
// opset below 10 (no QuantizeLinear). Nodes it cannot quantize stay fp32 with a reason.
QuantizeResult QuantizeStatic(const ir::Graph& graph, const calib::CalibTable& table,
                              const QuantizeOptions& options = {});

// True when g has QuantizeLinear or DequantizeLinear nodes.
bool HasQdq(const ir::Graph& g);

// Rewrites DequantizeLinear -> op -> [Relu|Clip] -> QuantizeLinear patterns into integer ops:
//   Conv -> QLinearConv, MatMul -> QLinearMatMul, Gemm -> com.microsoft QGemm (with a fused
//   Relu/Clip: the qforge-domain variants with out_min/out_max), Add/Mul -> QLinearAdd/Mul,
//   Concat -> QLinearConcat, AveragePool / GlobalAveragePool -> QLinear*; MaxPool, Reshape,
//   Transpose, Flatten, Squeeze, Unsqueeze and Resize(nearest) with equal input and output
//   parameters run on the quantized tensor directly. QuantizeLinear of a constant fp32 tensor
//   is folded into the quantized initializer first. A DequantizeLinear -> QuantizeLinear pair
//   with equal parameters collapses; dead nodes and values are removed.
// A pattern is lowered only when the runtime has the integer op (runtime op registry), so the
// result always runs; anything else keeps its fp32 form between DQ and Q. Returns the number
// of rewrites.
int LowerQdqToInteger(ir::Graph& g);

// The error of each quantized activation on real data: runs every batch through the fp32 graph
// `reference` (the QuantizeResult's tensors are named as in it) and through result.graph (the
// QDQ graph, computed in fp32 with fake quantization), and accumulates numerics::ErrorStats of
// dequantized(T) against T. Fills the activation entries of result.tensors in place.
// Each batch maps graph input names to tensors.
void MeasureActivationErrors(const ir::Graph& reference, QuantizeResult& result,
                             const std::vector<std::map<std::string, Tensor>>& batches,
                             int threads = 0);

}  // namespace qforge::passes
