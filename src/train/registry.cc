// The table of differentiable ops, built from every src/train/*_grad.inc list (the build
// generates train/grad_ops_all.inc, which includes them all).
#include <algorithm>
#include <string>

#include "qforge/train/autograd.h"

namespace qforge::train {

#define QF_GRAD_OP(domain, op, forward, backward) \
  std::vector<Tensor> forward(ForwardArgs&);      \
  std::vector<Tensor> backward(const BackwardArgs&);
#include "train/grad_ops_all.inc"
#undef QF_GRAD_OP

namespace {
const GradOp kGradOps[] = {
#define QF_GRAD_OP(domain, op, forward, backward) {domain, op, &forward, &backward},
#include "train/grad_ops_all.inc"
#undef QF_GRAD_OP
    {"", "", nullptr, nullptr}};
}  // namespace

const GradOp* FindGradOp(std::string_view domain, std::string_view op_type) {
  if (domain == "ai.onnx") domain = "";
  for (const GradOp& e : kGradOps)
    if (e.backward && e.domain == domain && e.op_type == op_type) return &e;
  return nullptr;
}

std::vector<std::string> DifferentiableOps() {
  std::vector<std::string> out;
  for (const GradOp& e : kGradOps) {
    if (!e.backward) continue;
    out.push_back(e.domain.empty() ? std::string(e.op_type)
                                   : std::string(e.domain) + "::" + std::string(e.op_type));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace qforge::train
