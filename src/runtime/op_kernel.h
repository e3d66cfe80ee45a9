// The interface between the Session and the per-op implementations in runtime/ops/.
//
// An op is created once per node (its factory parses attributes, validates them, and may
// prepack constant inputs such as weights), then Run() is called for every execution with
// the node's input tensors. Missing optional inputs are undefined Tensors (!t.defined()).
// Every problem is reported by throwing qforge::Error with a message that names the node.
#pragma once

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "qforge/ir/graph.h"

namespace qforge::runtime {

struct OpContext {
  int threads = 0;  // 0: OpenMP default
};

class OpKernel {
 public:
  virtual ~OpKernel() = default;
  // inputs.size() == node.inputs.size(); must return exactly node.outputs.size() tensors
  // (an output whose name is empty may be left undefined).
  virtual std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> inputs) = 0;
};

// What a factory sees when creating a kernel: the node, and the constant value of each input
// that is an initializer (undefined Tensor otherwise), so weights can be prepacked.
struct OpInit {
  const ir::Node& node;
  std::vector<Tensor> constants;
  int opset = 0;
  const Tensor& constant(size_t i) const {
    static const Tensor kNone;
    return i < constants.size() ? constants[i] : kNone;
  }
};

using OpFactory = std::unique_ptr<OpKernel> (*)(const OpInit& init);

// Looks up the factory for (domain, op_type); nullptr when unsupported.
OpFactory FindOp(std::string_view domain, std::string_view op_type);
// Sorted list of "op_type" (default domain) and "domain::op_type" supported.
std::vector<std::string> SupportedOps();

// Helper for simple stateless ops: wraps a function into an OpKernel.
using SimpleOpFn = std::vector<Tensor> (*)(const ir::Node&, std::span<const Tensor>);
std::unique_ptr<OpKernel> MakeSimpleOp(const ir::Node& node, SimpleOpFn fn);

}  // namespace qforge::runtime
