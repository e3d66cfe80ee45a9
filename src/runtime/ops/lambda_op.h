// Helpers for op implementations: an OpKernel made from a lambda, arity and axis checks that
// throw qforge::Error naming the node.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "runtime/op_kernel.h"

namespace qforge::runtime {

// An OpKernel whose Run is a callable (const OpContext&, std::span<const Tensor>) ->
// std::vector<Tensor>. The factory parses attributes once and captures the results.
template <typename F>
class LambdaOp final : public OpKernel {
 public:
  explicit LambdaOp(F f) : f_(std::move(f)) {}
  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> inputs) override {
    return f_(ctx, inputs);
  }

 private:
  F f_;
};

template <typename F>
std::unique_ptr<OpKernel> MakeLambdaOp(F f) {
  return std::make_unique<LambdaOp<F>>(std::move(f));
}

[[noreturn]] inline void FailNode(const ir::Node& n, const std::string& msg) {
  throw Error(n.Describe() + ": " + msg);
}

// Checks min_in <= given inputs <= max_in and min_out <= outputs <= max_out.
inline void CheckArity(const ir::Node& n, size_t min_in, size_t max_in, size_t min_out,
                       size_t max_out) {
  const size_t ni = n.num_inputs();
  if (ni < min_in || ni > max_in)
    FailNode(n, "expects " + std::to_string(min_in) +
                    (max_in == min_in ? "" : ".." + std::to_string(max_in)) + " inputs, got " +
                    std::to_string(ni));
  if (n.outputs.size() < min_out || n.outputs.size() > max_out)
    FailNode(n, "expects " + std::to_string(min_out) +
                    (max_out == min_out ? "" : ".." + std::to_string(max_out)) + " outputs, got " +
                    std::to_string(n.outputs.size()));
  for (size_t i = 0; i < min_in; ++i)
    if (n.inputs[i].empty()) FailNode(n, "required input " + std::to_string(i) + " is missing");
}

// Maps axis in [-rank, rank) to [0, rank); anything else throws naming `what`.
inline int64_t NormalizeAxis(int64_t axis, int64_t rank, const std::string& what) {
  if (axis < -rank || axis >= rank)
    throw Error(what + ": axis " + std::to_string(axis) + " out of range for rank " +
                std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

// Input i, which must be present at run time.
inline const Tensor& Arg(std::span<const Tensor> in, size_t i, const std::string& what) {
  if (i >= in.size() || !in[i].defined())
    throw Error(what + ": input " + std::to_string(i) + " is missing");
  return in[i];
}

}  // namespace qforge::runtime
