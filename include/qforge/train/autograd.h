// Reverse-mode autograd over the IR: runs an ir::Graph forward keeping what backward needs, then
// propagates dL/d(output) back to every trainable initializer (and any graph input asked for).
//
// The graph is the model: trainable parameters are its float initializers, updated in place by
// the optimizers (Tensor copies share storage, so graph().initializers sees every update).
//
// ============================================================================================
// How to add a differentiable op
// ============================================================================================
// 1. In the op family's file `src/train/<family>_grad.cc` (inside namespace qforge::train),
//    write a forward and a backward function side by side, shapes in the comments:
//
//      // y = relu(x).  x: [*], y: [*]
//      std::vector<Tensor> ReluForward(ForwardArgs& a) { return RuntimeForward(a); }
//      // dx = dy * (y > 0).  dy, dx: [*]
//      std::vector<Tensor> ReluBackward(const BackwardArgs& a) { ...; return {dx}; }
//
//    - Forward returns one tensor per node output. `RuntimeForward(a)` runs the runtime's own
//      kernel for the node (src/runtime/ops), so the forward has exactly the semantics of
//      inference; write your own forward only when training differs (BatchNormalization batch
//      statistics, Dropout masks, fake quantization).
//    - Anything backward needs beyond the node's inputs and outputs (which the engine keeps
//      anyway) goes into `a.saved` (masks, statistics, argmax indices).
//    - A forward may update a (non-trainable) initializer input, such as BatchNorm running
//      statistics or an observer's range: push {input index, new value} to `a.updates`; the
//      engine writes it into the graph after the node ran (training steps only).
//    - Backward returns one tensor per node input: dL/d(input i) with input i's shape, or an
//      undefined Tensor when `a.needs_grad[i]` is false or the input is not differentiable
//      (shapes, indices). It may read a.inputs / a.outputs / a.saved / a.grad_outputs; a
//      grad_outputs[j] that is undefined means no gradient flows into output j (treat as 0).
//    - Throw qforge::Error naming the node (node.Describe()) for anything unsupported.
// 2. Register it with ONE line in the family's list `src/train/<family>_grad.inc`:
//      QF_GRAD_OP("", "Relu", ReluForward, ReluBackward)
//    Any domain works: QF_GRAD_OP("qforge", "FakeQuant", FakeQuantForward, FakeQuantBackward).
//    Every `src/train/*_grad.inc` is picked up by the build (re-run cmake after adding one);
//    there is no central list to edit.
// 3. Parameters of the op (weights, or a fake-quantizer's scale and zero point) are ordinary
//    initializers feeding the node; they are trained when their names are in the trainable
//    set given to Autograd (DefaultTrainable() picks the usual weights; add your own names).
//    A node's runtime-only domain op may have no runtime kernel: then its forward must not
//    call RuntimeForward.
// 4. Test it with CheckGradients() (train/grad_check.h): central finite differences against
//    the analytic gradient on a small one-node graph.
// ============================================================================================
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qforge/ir/graph.h"

namespace qforge::runtime {
class OpKernel;
}

namespace qforge::train {

// What an op's forward sees. One per node execution.
struct ForwardArgs {
  ForwardArgs(const ir::Node& n, std::span<const Tensor> in) : node(n), inputs(in) {}
  const ir::Node& node;
  std::span<const Tensor> inputs;  // one per node input; undefined = optional input not given
  bool training = false;           // training step (batch statistics, dropout) vs evaluation
  int threads = 0;                 // 0: OpenMP default
  uint64_t seed = 0;          // differs per node and per step; deterministic for the trainer's seed
  int64_t step = 0;           // optimizer step count (0-based) when training
  int opset = 0;              // ai.onnx opset of the graph
  std::vector<Tensor> saved;  // out: extra tensors for backward
  std::vector<std::pair<size_t, Tensor>> updates;  // out: new values for initializer inputs
  runtime::OpKernel* runtime_kernel = nullptr;     // engine-owned; used by RuntimeForward
};

// What an op's backward sees.
struct BackwardArgs {
  BackwardArgs(const ir::Node& n, std::span<const Tensor> in, std::span<const Tensor> out,
               std::span<const Tensor> sv, std::span<const Tensor> gout,
               const std::vector<bool>& need)
      : node(n), inputs(in), outputs(out), saved(sv), grad_outputs(gout), needs_grad(need) {}
  const ir::Node& node;
  std::span<const Tensor> inputs;        // the forward's inputs
  std::span<const Tensor> outputs;       // the forward's outputs
  std::span<const Tensor> saved;         // ForwardArgs::saved
  std::span<const Tensor> grad_outputs;  // dL/d(output j), output j's shape; undefined = zero
  const std::vector<bool>& needs_grad;   // per input: is dL/d(input i) wanted
  bool training = false;
  int threads = 0;
  int opset = 0;
};

using ForwardFn = std::vector<Tensor> (*)(ForwardArgs&);
using BackwardFn = std::vector<Tensor> (*)(const BackwardArgs&);

// Runs the runtime's inference kernel for args.node (created once per node by the engine with
// no constant inputs, so changing weights are read at every call).
std::vector<Tensor> RuntimeForward(ForwardArgs& args);

struct GradOp {
  std::string_view domain, op_type;
  ForwardFn forward = nullptr;
  BackwardFn backward = nullptr;
};

// The registered op for (domain, op_type), or nullptr. "ai.onnx" is the same as "".
const GradOp* FindGradOp(std::string_view domain, std::string_view op_type);
// Sorted "OpType" / "domain::OpType" of every differentiable op.
std::vector<std::string> DifferentiableOps();

// The usual trainable parameters of a graph: float initializers with more than one element
// that feed a node, except BatchNormalization's running mean and variance (inputs 3, 4).
// (Scalar constants such as input normalization mean/std stay fixed.)
std::set<std::string> DefaultTrainable(const ir::Graph& g);

struct AutogradOptions {
  int threads = 0;       // 0: OpenMP default
  bool profile = false;  // accumulate per-op CPU time (see Autograd::Profile())
};

// CPU time (process clock, all threads) spent in one op type, summed over every node of that
// type and every Forward() / Backward() since the Autograd was made (AutogradOptions::profile).
struct OpProfile {
  std::string op_type;  // "Conv", "Conv(depthwise)" for group == channels, "qforge::FakeQuant"
  int64_t forward_calls = 0, backward_calls = 0;
  double forward_seconds = 0, backward_seconds = 0;
};

class Autograd {
 public:
  // Takes the graph (verified, topologically sorted; float initializers are deep-copied, so the
  // caller's tensors never change). `trainable` names initializers (and
  // possibly graph inputs) whose gradients are wanted; every other value is a constant.
  // Throws Error naming the node when a node that a gradient must pass through has no
  // registered backward, or a node has neither a GradOp nor a runtime kernel.
  Autograd(ir::Graph graph, std::set<std::string> trainable, AutogradOptions options = {});
  ~Autograd();
  Autograd(Autograd&&) noexcept;
  Autograd& operator=(Autograd&&) noexcept;

  // Runs the graph, keeping every node's inputs, outputs and saved tensors for Backward().
  // training: BatchNorm uses batch statistics and updates its running statistics, Dropout
  // drops. seed/step reach random ops (see ForwardArgs). Returns the graph outputs.
  std::map<std::string, Tensor> Forward(const std::map<std::string, Tensor>& inputs, bool training,
                                        uint64_t seed = 0, int64_t step = 0);

  // Back-propagates from the last Forward(): output_grads maps graph-output (or any value)
  // names to dL/d(value) (same shape). Gradients are ADDED to grads() (call ZeroGrad() between
  // steps). The forward's kept tensors are released afterwards.
  void Backward(const std::map<std::string, Tensor>& output_grads);

  // Gradient per trainable name (f32, the parameter's shape); zero until a Backward().
  const std::map<std::string, Tensor>& grads() const;
  void ZeroGrad();

  // A value computed by the last Forward() (empty Tensor if unknown or released).
  Tensor Value(const std::string& name) const;

  // Per op type, most expensive (forward + backward) first; empty unless options().profile.
  // "(gradient accumulation)" is the engine's own summing of gradients that fan out.
  std::vector<OpProfile> Profile() const;

  const std::set<std::string>& trainable() const;
  ir::Graph& graph();
  const ir::Graph& graph() const;
  const AutogradOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qforge::train
