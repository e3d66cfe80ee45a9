// Dynamic int8 quantization (fp32 graph -> graph whose Linear layers quantize their activations
// at run time): no calibration data; weights quantized ahead, int8 symmetric per output channel.
//
// Standard form (per-tensor activations, what ONNX Runtime runs), for y = X W (+ b):
//   xq, xs, xz = DynamicQuantizeLinear(X)              uint8, asymmetric, one (s, z) per tensor
//   acc        = MatMulInteger(xq, Wq, xz)             Wq: int8 [K, N], symmetric [-127, 127]
//   y          = Mul(Cast(acc, float), Mul(xs, ws))    ws: fp32 [N], one scale per column
//   y          = Add(y, b)                             (Gemm's C; a MatMul's own Add stays)
// so y[m,n] = float(acc[m,n]) * (xs * ws[n]) (+ b[n]): the float operations, in this order, of
// kernels::DynamicQGemm, which the execution fusion (FuseDynamicQLinear) uses bit-exactly.
// MatMul of two activations (attention Q K^T, attention x V): both sides go through
// DynamicQuantizeLinear, MatMulInteger(aq, bq, az, bz), y = Cast(acc) * (as * bs).
// Conv (only when options.ops has "Conv"): DynamicQuantizeLinear + ConvInteger with uint8
// weights (the int8 codes + 128, zero point 128: ONNX Runtime's ConvInteger takes uint8 only),
// then Cast, Mul by xs * ws[c] (shape [C, 1, 1]), Add of the bias.
//
// LSTM / GRU (in ops by default): W and R int8 symmetric per gate channel, stored transposed
// [dirs, K, G * hidden]; x (all time steps at once) and h_{t-1} (every step) quantized to uint8
// at run time, int8 GEMMs, gates in fp32 (runtime/ops/rnn_ops.cc). LSTM becomes ONNX Runtime's
// com.microsoft DynamicQuantizeLSTM (per row or layout 1: qforge::DynamicQuantizeLSTM); GRU
// becomes qforge::DynamicQuantizeGRU (ONNX Runtime has no quantized GRU; for an .onnx file,
// passes::LowerDynamicQuantizeGru in rnn_onnx.h unrolls it over time into standard ops).
//
// Per-row form (options.per_row, qforge only): each Linear layer becomes one
//   qforge::DynamicQLinear(X, Wq [K, N] int8, ws [N] fp32 [, b [N] fp32]) per_row = 1
// whose activations get one (s, z) per row of X (per token): kernels::DynamicQuantizedLinear.
// ONNX has no per-row dynamic quantizer (DynamicQuantizeLinear is per tensor), so this form is
// not standard ONNX: run it with qforge (.qf); the activation-x-activation MatMuls stay in the
// standard per-tensor form.
#pragma once

#include <string>
#include <vector>

#include "qforge/ir/graph.h"
#include "qforge/passes/quantize.h"

namespace qforge::passes {

struct DynamicQuantizeOptions {
  // Op types to quantize: any of "MatMul", "Gemm", "Conv", "LSTM", "GRU" (Conv is opt-in:
  // dynamic conv is known to lose accuracy, its activations' range varies a lot across the image).
  std::vector<std::string> ops = {"MatMul", "Gemm", "LSTM", "GRU"};
  bool per_row = false;              // activations per row (qforge::DynamicQLinear)
  std::vector<std::string> exclude;  // node names kept in fp32 (after the inference pipeline)
};

// Quantizes a copy of `graph`: runs RunInferencePipeline, then rewrites every eligible node as
// above. Result fields as for QuantizeStatic: nodes holds one decision (with reason) per node of
// the cleaned graph; tensors holds one kWeight entry per quantized weight (error measured) and
// one kActivation entry per quantized node's output (same name in both graphs, so
// MeasureActivationErrors measures each layer's output error against fp32 end to end).
// Throws Error for an unknown op in options.ops, an unknown --exclude name, or an opset below
// 10 (no DynamicQuantizeLinear / MatMulInteger). Everything not quantized stays fp32.
QuantizeResult QuantizeDynamic(const ir::Graph& graph, const DynamicQuantizeOptions& options = {});

// True when g has nodes that only qforge runs (any qforge-domain node), e.g. the per-row form.
bool HasQforgeOnlyOps(const ir::Graph& g);

}  // namespace qforge::passes
