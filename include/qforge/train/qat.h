// Quantization-aware training graphs: the fp32 model with fake quantizers (qforge::FakeQuant) at
// exactly the points the static quantizer quantizes, and the export of a trained one as the
// QDQ graph static PTQ would produce — with the learned scales, zero points and weights.
//
// How (docs/training.md, "Quantization-aware training"):
//  1. passes::QuantizeStatic(fp32, calibration table) gives the QDQ graph: it runs the inference
//     pipeline first, so BatchNormalization is folded into the convolution weights before QAT
//     starts (BN statistics are frozen at the fp32 model's running statistics from step 0), and
//     it decides which tensors are quantized. Its graph is kept as the export template.
//  2. The training graph is that QDQ graph with every
//       QuantizeLinear -> DequantizeLinear pair on an activation  -> FakeQuant(x, s, z)
//           (uint8 asymmetric per tensor at --bits-a; (s, z) from the calibration range);
//       DequantizeLinear of an int8 weight  -> FakeQuant(W fp32, s[C], 0) (int8/int4/int2,
//           symmetric, restricted range, per output channel, s = max|W_c| / qmax);
//       DequantizeLinear of an int32 bias   -> the fp32 bias itself (trained, not fake-quantized:
//           its int32 rounding, at most s_in * s_w / 2, is one of the two residual differences
//           to the integer runtime, docs/numerics.md);
//       DequantizeLinear of another constant -> FakeQuant with its fixed (s, z).
//     Scales and zero points are f32 initializers (the zero point is a float the forward rounds,
//     EffectiveZeroPoint), trained under lsq, fixed under ste and soft.
//  3. ExportQdq writes the trained values back into the template: weights quantized with the
//     learned per-channel scales (QuantizeValue, clamped to the --bits-w range), biases to int32
//     at s_in * s_w, activation (s, z) as the forward used them. Lowering
//     (passes::LowerQdqToInteger) then gives the integer model; nothing is re-calibrated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/calib/calib_table.h"
#include "qforge/ir/graph.h"
#include "qforge/train/fake_quant.h"

namespace qforge::train {

// The fake quantization op of training graphs: domain "qforge", op "FakeQuant".
//   inputs : X (f32, any shape), scale (f32, [] or [C]), zero_point (f32, same shape as scale)
//   output : Y (f32, X's shape) = FakeQuantForward(X) (hard), or the soft staircase (estimator
//            "soft" before the end of annealing)
//   attrs  : bits (int), signed (0/1), restricted (0/1), axis (int; per channel along it when
//            scale has shape [C], ignored for a scalar scale), estimator ("ste", "lsq", "soft")
inline constexpr const char* kFakeQuantDomain = "qforge";
inline constexpr const char* kFakeQuantOp = "FakeQuant";

// The FakeQuantConfig a FakeQuant node describes (scale_rank 0: per tensor). Throws
// qforge::Error naming the node for bad attributes.
FakeQuantConfig FakeQuantNodeConfig(const ir::Node& node, int64_t scale_rank);

struct QatOptions {
  Estimator estimator = Estimator::kSte;
  int bits_w = 8;  // 8, 4 or 2: weights signed, symmetric, restricted range, per channel
  int bits_a = 8;  // 8 or 4: activations unsigned, asymmetric, per tensor
};

// One fake quantizer of the training graph and the QDQ-template tensors it exports to.
struct FakeQuantSite {
  enum class Kind { kWeight, kActivation, kConstant };
  Kind kind = Kind::kActivation;
  std::string node;               // FakeQuant node name in the training graph
  std::string input;              // weight / constant initializer or activation tensor
  std::string output;             // FakeQuant output (the name the DQ output had)
  std::string scale, zero_point;  // f32 initializers of the training graph
  FakeQuantConfig config;
  // Export targets in the QDQ template: the quantized initializer (weights / constants; empty
  // for activations), and the scale / zero point initializers.
  std::string qdq_quantized, qdq_scale, qdq_zero_point;
  // Whether the estimator trains scale / zero point (lsq: both for activations, scale only for
  // symmetric weights; never for constants).
  bool train_scale = false, train_zero_point = false;
};

// An int32 bias of the QDQ template, trained as the fp32 bias `fp32`.
struct BiasSite {
  std::string fp32;                      // f32 initializer in the training graph
  std::string input_scale;               // scale initializer of the consumer's input activation
  std::string weight_scale;              // scale initializer of the consumer's weight
  std::string qdq_quantized, qdq_scale;  // int32 initializer and its scale in the template
};

struct QatModel {
  ir::Graph graph;  // the training graph
  ir::Graph qdq;    // the QDQ template (passes::QuantizeStatic's graph)
  QatOptions options;
  std::vector<FakeQuantSite> sites;
  std::vector<BiasSite> biases;
  // Trainable f32 initializers of `graph`: the fp32 weights and biases of quantized nodes, and
  // the scales / zero points the estimator trains (nodes left fp32 keep their weights fixed).
  std::vector<std::string> weights;
  std::vector<std::string> quant_params;
};

// Builds the training graph (see the file comment). Throws qforge::Error for bad options or
// when nothing was quantized (no calibration range matched the model).
QatModel PrepareQat(const ir::Graph& fp32, const calib::CalibTable& table,
                    const QatOptions& options);

// Sets the FakeQuant nodes' "estimator" attribute (e.g. to "ste" once soft annealing has ended,
// the quantizers then being hard).
void SetEstimator(ir::Graph& graph, Estimator e);

// The QDQ graph of the model as trained: the template with every quantized initializer, scale and
// zero point recomputed from `model.graph`'s current initializer values. The result is exactly
// what the training graph computes in its hard forward, except biases (int32 at s_in * s_w
// instead of fp32). Throws qforge::Error if a trained value is not finite.
ir::Graph ExportQdq(const QatModel& model);

}  // namespace qforge::train
