// Internal interface of rnn_ops.cc (LSTM / GRU, fp32 and dynamically quantized) for its tests:
// the slow reference paths, run on the same node and inputs as the registered (fast) op.
#pragma once

#include <span>
#include <vector>

#include "qforge/ir/graph.h"

namespace qforge::runtime {

// Runs node (LSTM, GRU, com.microsoft / qforge DynamicQuantizeLSTM, qforge DynamicQuantizeGRU)
// on `inputs` (one per node input, undefined for a missing optional one) by the reference path:
//   fp32 ops: plain loops over time, batch, gate unit and k straight from the ONNX equations
//     (float sums in k order; differs from the fast path by rounding only);
//   quantized ops: the same cell driver as the fast path (gate math included: the vectorized
//     kernels::LstmCellF32 / SigmoidF32 / GruOutputF32 are tested against their scalar
//     references in qf_kernels_test), but every quantization and integer product by kernels::ref
//     (plain loops): bit-exact with the fast path.
// Returns one tensor per node output (undefined for an unnamed output).
std::vector<Tensor> RunRnnReference(const ir::Node& node, std::span<const Tensor> inputs);

}  // namespace qforge::runtime
