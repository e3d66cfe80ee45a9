// Standard-ONNX form of qforge::DynamicQuantizeGRU (ONNX Runtime has no quantized GRU): the
// recurrence unrolled over its (static) time steps into DynamicQuantizeLinear + MatMulInteger +
// fp32 gate math, so `qforge quantize --method dynamic -o OUT.onnx` can write GRU models.
#pragma once

#include <string>
#include <vector>

#include "qforge/ir/graph.h"

namespace qforge::passes {

// Rewrites every qforge::DynamicQuantizeGRU node of g (as QuantizeDynamic writes it) into
// standard ONNX ops computing what runtime/ops/rnn_ops.cc computes, operation for operation:
//   xq, xs, xz = DynamicQuantizeLinear(X)                        all steps at once [T, B, I]
//   x_g        = Cast(MatMulInteger(xq, W_g, xz)) * (xs * ws_g) + bias_g       g = z, r, h
//                (bias_g = Wb_g + Rb_g; Wb_h only with linear_before_reset = 1)
//   per step t (reverse: time T-1-t), h the previous state (none at step 0 without initial_h:
//   its recurrent products are exactly 0 and are left out):
//     hq, hs, hz = DynamicQuantizeLinear(h)
//     z = Sigmoid(x_z[t] + Cast(MatMulInteger(hq, R_z, hz)) * (hs * rs_z))      r likewise
//     linear_before_reset 1: n = Tanh(x_h[t] + r * (Cast(MatMulInteger(hq, R_h, hz)) *
//                                                     (hs * rs_h) + Rb_h))
//     linear_before_reset 0: n = Tanh(x_h[t] + Cast(MatMulInteger(DQL(r * h), R_h)) * (s * rs_h))
//     h = (1 - z) * n + z * h
//   Y = Concat of the states [T, 1, B, H] (in time order), Y_h = the last state [1, B, H].
// The integer products are exact and every float operation is the same single rounding as the
// qforge kernel's; only Sigmoid / Tanh may differ in the last bits between runtimes.
// Supported: one direction (forward or reverse), layout 0, per-tensor activations, no
// sequence_lens, default activations (Sigmoid, Tanh), no clip, zero weight zero points, constant
// weights, a known number of time steps. Anything else throws qforge::Error naming the node and
// the reason (the caller then refuses the .onnx output; .qf runs every form).
// Returns one note per lowered node.
std::vector<std::string> LowerDynamicQuantizeGru(ir::Graph& g);

}  // namespace qforge::passes
