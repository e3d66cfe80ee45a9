// Quantization-aware training graphs: the fp32 model with fake quantizers (qforge::FakeQuant) at
// exactly the points the static quantizer quantizes, and the export of a trained one as the
// QDQ graph static PTQ would produce — with the learned scales, zero points and weights.
//
// How (docs/training.md, "Quantization-aware training"):
//  1. passes::QuantizeStatic(fp32, calibration table) gives the QDQ graph: it runs the inference
//     pipeline first, so BatchNormalization is folded into the convolution weights before QAT
//     starts, and it decides which tensors are quantized. Its graph is kept as the export
//     template. BN statistics are frozen from step 0 by default; with bn_freeze_step > 0 a
//     BatchNormalization is re-inserted after each folded convolution (BnSite) and trains on
//     batch statistics until that step, when FoldQatBatchNorms folds it back (see BnSite).
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
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "qforge/calib/calib_table.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/ir/graph.h"
#include "qforge/train/fake_quant.h"
#include "qforge/train/optimizer.h"

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
  // ste / soft: the observers (weights: max |W_c| / qmax; activations: an EMA of the batch
  // range with observer_momentum) move the quantizer ranges during training steps
  // 0 .. observer_freeze_step - 1 and are frozen from then on (0: frozen at the calibrated
  // ranges from the start). lsq learns its ranges instead and never observes.
  int64_t observer_freeze_step = 0;
  double observer_momentum = 0.01;
  // BatchNorm statistics: 0 (default) keeps them frozen at the fp32 model's running statistics
  // from the start (BN folded). N > 0: the folded convolutions get a BatchNormalization again
  // (BnSite) that normalizes with batch statistics and updates its running statistics during
  // optimizer steps 0 .. N-1; at step N (or at the end of training, whichever comes first) it
  // is folded back into the convolution (FoldQatBatchNorms) and the statistics are frozen.
  int64_t bn_freeze_step = 0;
  // soft: the DSQ temperature schedule (SoftSchedule; the forward is hard from anneal_steps on).
  SoftSchedule soft;
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

// A BatchNormalization re-inserted after a folded convolution / Gemm for the statistics phase
// (QatOptions::bn_freeze_step > 0), as in Jacob et al. 2018 / PyTorch's ConvBn QAT modules. The
// node computes BN(u) with u = Conv(x, FakeQuant(W_f)) + b_f, the folded layer's output.
// Initial values (from the fp32 BN: gamma, beta, running mean mu, variance var, epsilon eps):
// running mean m0 = beta and variance v0 = gamma^2 var / (var + eps) — u's statistics — and
// scale sqrt(v0 + eps), bias m0, so that in evaluation mode BN(u) = u: the model starts as the
// folded (static PTQ) model. In training mode it normalizes u by the batch statistics, i.e.
// gamma (conv - mean_B) / std_B + beta of the fp32 layer, with the convolution's weights fake
// quantized at their folded values. Folding back (per output channel c):
//   a_c = scale_c / sqrt(var_c + eps); W_f[c] *= a_c; b_f[c] = b_f[c] a_c + bias_c - mean_c a_c;
//   weight scale s_w[c] *= |a_c| (so round(W_f / s_w) is unchanged by the fold).
struct BnSite {
  std::string node;                    // BatchNormalization node in the training graph
  std::string input;                   // its input: the folded layer's output (renamed)
  std::string output;                  // its output: the name the folded layer wrote
  std::string scale, bias, mean, var;  // f32 [C] initializers
  float epsilon = 1e-5f;
  std::string weight, weight_scale, layer_bias;  // the folded layer's W_f, s_w and b_f
  int weight_axis = 0;                           // W_f's output-channel axis
};

struct QatModel {
  ir::Graph graph;  // the training graph
  ir::Graph qdq;    // the QDQ template (passes::QuantizeStatic's graph)
  QatOptions options;
  std::vector<FakeQuantSite> sites;
  std::vector<BiasSite> biases;
  std::vector<BnSite> batch_norms;  // re-inserted BNs not yet folded back (bn_freeze_step > 0)
  // Trainable f32 initializers of `graph`: the fp32 weights and biases of quantized nodes, and
  // the scales / zero points the estimator trains (nodes left fp32 keep their weights fixed).
  std::vector<std::string> weights;
  std::vector<std::string> quant_params;
};

// Builds the training graph (see the file comment). Throws qforge::Error for bad options or
// when nothing was quantized (no calibration range matched the model).
QatModel PrepareQat(const ir::Graph& fp32, const calib::CalibTable& table,
                    const QatOptions& options);

// Folds every BnSite still in model.graph back into its layer (formula at BnSite), removes the
// BatchNormalization nodes and clears model.batch_norms; the evaluation-mode function of the
// graph is unchanged up to float rounding. Throws qforge::Error naming the node if a BN's
// factor a_c is zero or not finite. No-op without BnSites.
void FoldQatBatchNorms(QatModel& model);

// Sets the FakeQuant nodes' "estimator" attribute (e.g. to "ste" once soft annealing has ended,
// the quantizers then being hard).
void SetEstimator(ir::Graph& graph, Estimator e);

// Rounds every bias of a BiasSite to its int32 grid at the current effective scales,
// b = DequantizeValue(QuantizeValue(b, {s_in * s_w, 0})) — what the exported int32 bias
// represents — so that the training graph's hard forward equals the exported QDQ graph bit for
// bit. TrainQat calls it after the last step (a change of at most s_in * s_w / 2 per bias).
void SnapBiases(QatModel& model);

// The QDQ graph of the model as trained: the template with every quantized initializer, scale and
// zero point recomputed from `model.graph`'s current initializer values. The result is exactly
// what the training graph computes in its hard forward (bit for bit after SnapBiases; before,
// biases differ by their int32 rounding at s_in * s_w). Throws qforge::Error if a trained value is
// not finite.
ir::Graph ExportQdq(const QatModel& model);

// ---- training ----

struct QatTrainOptions {
  int epochs = 1;
  int64_t batch = 64;
  int64_t limit = -1;  // training images used per epoch (-1: all)
  // The training module's optimizer (train/optimizer.h): AdamW, or SGD with `momentum`; cosine
  // decay to 0 over all steps. Two parameter groups: weights / biases (lr, weight_decay) and the
  // lsq quantizer parameters (lr_quant, no decay).
  OptimizerOptions::Kind optimizer = OptimizerOptions::Kind::kAdamW;
  double momentum = 0.9;  // SGD
  double lr = 1e-4;
  double lr_quant = -1;  // lsq scale / zero point learning rate (-1: lr)
  double weight_decay = 0;
  uint64_t seed = 1;
  int threads = 0;
  // Distillation toward the fp32 model's logits: loss = distill_weight * KL(softmax(teacher / T)
  // || softmax(student / T)) * T^2 + (1 - distill_weight) * cross-entropy with the labels.
  // 0: labels only; 1: label-free (labels unused); in between: both.
  double distill_weight = 0;
  double temperature = 1.0;
  // Checkpoint selection on held-out training images (never the test set): val_images > 0 holds
  // out that many training images (the last ones of a seed-fixed shuffle; they are not trained
  // on), evaluates the hard fake-quantized model on them before the first step, every
  // val_every steps and at the end, and keeps the most accurate state (ties: the later one).
  // With step 0 among the candidates the result is never below the starting (static PTQ) model
  // on the held-out images.
  int64_t val_images = 0;
  int64_t val_every = 50;
  // Called every `progress_every` steps and at the end of each epoch (may be empty).
  int64_t progress_every = 50;
  std::function<void(const struct QatProgress&)> progress;
};

struct QatProgress {
  int epoch = 0;  // 1-based
  int64_t step = 0, steps_per_epoch = 0, total_steps = 0;
  double loss = 0;      // mean over the steps since the last report
  double accuracy = 0;  // training top-1 over the same steps (against the labels)
  double samples_per_second = 0;
  bool end_of_epoch = false;
};

struct QatTrainResult {
  int64_t steps = 0;
  // Checkpoint selection (val_images > 0): the step whose state was kept (0: the start) and
  // its / the start's accuracy on the held-out images; -1 without selection.
  int64_t selected_step = -1;
  double val_accuracy = -1, val_accuracy_start = -1;
  std::vector<std::pair<int64_t, double>> val_history;  // (step, held-out accuracy)
  double seconds = 0;
  double final_loss = 0;
  // How far the trained quantizer scales moved (lsq; the observers of ste / soft when not
  // frozen): |s_end / s_start - 1| over every element of the weight scales and of the
  // activation scales, median and maximum (0 when nothing moved; -1 without such scales). A
  // BatchNorm fold (bn_freeze_step > 0) multiplies weight scales by |a_c| and counts as a move.
  double weight_scale_change_median = -1, weight_scale_change_max = -1;
  double act_scale_change_median = -1, act_scale_change_max = -1;
};

// Trains model.graph in place on `train` (images f32 [N, 1, 28, 28] in [0, 1], labels) with the
// autograd engine: weights, biases and (lsq) quantizer parameters by AdamW or SGD, the soft
// schedule's anneal_steps counted in optimizer steps. BnSites are folded at
// model.options.bn_freeze_step (the optimizer state of the folded weights is kept as it is:
// the fold changes them by the factor a_c, which stays near 1) and at the end at the latest.
// `teacher` is the fp32 model (used with distill). Deterministic for a seed and thread count
// (shuffle: Fisher-Yates on mt19937_64).
QatTrainResult TrainQat(QatModel& model, const ir::Graph& teacher, const data::LabeledImages& train,
                        const QatTrainOptions& options);

// The class predicted for every image by the training graph's evaluation forward (hard fake
// quantization), batch by batch: the "fake-quantized model" of the agreement measurement.
std::vector<int64_t> PredictFakeQuant(const QatModel& model, const data::LabeledImages& images,
                                      int64_t batch, int threads);

}  // namespace qforge::train
