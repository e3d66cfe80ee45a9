// The op table: every supported (domain, op_type) and its factory, from the per-family lists.
#include <algorithm>
#include <string>
#include <utility>

#include "runtime/op_kernel.h"

namespace qforge::runtime {

#define QF_OP(domain, op, factory) std::unique_ptr<OpKernel> factory(const OpInit&);
#include "runtime/ops/dynamic_ops.inc"
#include "runtime/ops/elementwise_ops.inc"
#include "runtime/ops/linear_ops.inc"
#include "runtime/ops/nn_ops.inc"
#include "runtime/ops/qlinear_ops.inc"
#include "runtime/ops/quant_ops.inc"
#include "runtime/ops/rnn_ops.inc"
#include "runtime/ops/shape_ops.inc"
#include "runtime/ops/weight_only_ops.inc"
#undef QF_OP

namespace {
struct Entry {
  std::string_view domain, op;
  OpFactory factory;
};
const Entry kOps[] = {
#define QF_OP(domain, op, factory) {domain, op, &factory},
#include "runtime/ops/dynamic_ops.inc"
#include "runtime/ops/elementwise_ops.inc"
#include "runtime/ops/linear_ops.inc"
#include "runtime/ops/nn_ops.inc"
#include "runtime/ops/qlinear_ops.inc"
#include "runtime/ops/quant_ops.inc"
#include "runtime/ops/rnn_ops.inc"
#include "runtime/ops/shape_ops.inc"
#include "runtime/ops/weight_only_ops.inc"
#undef QF_OP
    {"", "", nullptr}};
}  // namespace

OpFactory FindOp(std::string_view domain, std::string_view op_type) {
  if (domain == "ai.onnx") domain = "";
  for (const Entry& e : kOps)
    if (e.factory && e.domain == domain && e.op == op_type) return e.factory;
  return nullptr;
}

std::vector<std::string> SupportedOps() {
  std::vector<std::string> out;
  for (const Entry& e : kOps) {
    if (!e.factory) continue;
    out.push_back(e.domain.empty() ? std::string(e.op)
                                   : std::string(e.domain) + "::" + std::string(e.op));
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
class SimpleOp final : public OpKernel {
 public:
  SimpleOp(const ir::Node& node, SimpleOpFn fn) : node_(node), fn_(fn) {}
  std::vector<Tensor> Run(const OpContext&, std::span<const Tensor> inputs) override {
    return fn_(node_, inputs);
  }

 private:
  ir::Node node_;
  SimpleOpFn fn_;
};
}  // namespace

std::unique_ptr<OpKernel> MakeSimpleOp(const ir::Node& node, SimpleOpFn fn) {
  return std::make_unique<SimpleOp>(node, fn);
}

}  // namespace qforge::runtime
