// Pass: fuse the standard dynamic Linear pattern into one qforge::DynamicQLinear (per_row = 0):
//
//   xq, xs, xz = DynamicQuantizeLinear(X)
//   acc        = MatMulInteger(xq, Wq, xz [, wz = 0])   Wq: constant int8 [K, N]
//   accf       = Cast(acc, to = float)
//   scale      = Mul(xs, ws)                            ws: constant fp32 [N] or scalar
//   y          = Mul(accf, scale)                       (either operand order)
//  [out        = Add(y, b)]                             b: constant fp32 [N], either order
//
// becomes out = qforge::DynamicQLinear(X, Wq, ws [, b]), which prepacks Wq once and computes the
// same float expression in the same order (float(acc) * (xs * ws[n]) + b[n]): bit-exact with the
// unfused graph (runtime/ops/dynamic_ops.cc, tested in quantize_dynamic_test.cc). When Wq is
// itself a DynamicQuantizeLinear output (MatMul of two activations, scale Mul(as, bs)), the
// pattern becomes y = qforge::DynamicQMatMul(A, B), bit-exact in the same way. The
// DynamicQuantizeLinear and the scale Mul are removed once nothing else reads them (the shared
// quantization of one X is redone by each fused reader: a cheap pass over X).
// For execution only (qforge-domain op), like FuseActivation.
#include <algorithm>
#include <set>

#include "qforge/passes/passes.h"

namespace qforge::passes {

namespace {

const Tensor* Const(const ir::Graph& g, const std::string& v, DType t) {
  auto it = g.initializers.find(v);
  return it != g.initializers.end() && it->second.dtype() == t ? &it->second : nullptr;
}

bool OnlyReader(const ir::Graph& g, const std::string& v, int reader) {
  const std::vector<int> c = ir::Consumers(g, v);
  return c.size() == 1 && c[0] == reader && !ir::IsGraphOutput(g, v);
}

const ir::Node* Producer(const ir::Graph& g, const std::string& v, const char* op, int* index) {
  *index = v.empty() ? -1 : g.FindProducer(v);
  if (*index < 0) return nullptr;
  const ir::Node& n = g.nodes[*index];
  return n.domain.empty() && n.op_type == op ? &n : nullptr;
}

bool AllZero(const Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i)
    if (t.data<int8_t>()[i] != 0) return false;
  return true;
}

}  // namespace

int FuseDynamicQLinear(ir::Graph& g) {
  int fused = 0;
  std::set<int> dead;                // pattern nodes replaced by a fused node
  std::set<std::string> maybe_dead;  // outputs of DynamicQuantizeLinear / scale Mul nodes
  for (size_t yi = 0; yi < g.nodes.size(); ++yi) {
    const ir::Node& y = g.nodes[yi];
    if (!y.domain.empty() || y.op_type != "Mul" || y.num_inputs() != 2 || y.outputs.size() != 1 ||
        dead.count(static_cast<int>(yi)))
      continue;
    for (int k = 0; k < 2; ++k) {
      int ci, si, mi, di;
      const ir::Node* cast = Producer(g, y.inputs[k], "Cast", &ci);
      const ir::Node* smul = Producer(g, y.inputs[1 - k], "Mul", &si);
      if (!cast || !smul || cast->attr_int("to", 0) != static_cast<int64_t>(DType::kF32) ||
          !OnlyReader(g, cast->outputs[0], static_cast<int>(yi)) || smul->num_inputs() != 2)
        continue;
      const ir::Node* mm = Producer(g, cast->inputs[0], "MatMulInteger", &mi);
      if (!mm || !OnlyReader(g, mm->outputs[0], ci) || mm->num_inputs() < 3) continue;
      const ir::Node* dql = Producer(g, mm->inputs[0], "DynamicQuantizeLinear", &di);
      if (!dql || dql->outputs.size() != 3 || mm->inputs[2] != dql->outputs[2]) continue;
      // Both operands dynamically quantized (attention): MatMulInteger(aq, bq, az, bz) and
      // the scale Mul(as, bs) in either order -> qforge::DynamicQMatMul(A, B).
      int bi;
      const ir::Node* dqb = Producer(g, mm->inputs[1], "DynamicQuantizeLinear", &bi);
      if (dqb) {
        if (dqb->outputs.size() != 3 || mm->inputs.size() != 4 || mm->inputs[3] != dqb->outputs[2])
          continue;
        const std::set<std::string> want = {dql->outputs[1], dqb->outputs[1]};
        if (std::set<std::string>(smul->inputs.begin(), smul->inputs.end()) != want &&
            !(dql == dqb && smul->inputs[0] == dql->outputs[1] &&
              smul->inputs[1] == dql->outputs[1]))
          continue;
        ir::Node f;
        f.op_type = "DynamicQMatMul";
        f.domain = "qforge";
        f.name = mm->name;
        f.inputs = {dql->inputs[0], dqb->inputs[0]};
        f.outputs = {y.outputs[0]};
        dead.insert(ci);
        dead.insert(mi);
        maybe_dead.insert(smul->outputs[0]);
        maybe_dead.insert(dql->outputs[0]);
        maybe_dead.insert(dqb->outputs[0]);
        g.nodes[yi] = f;  // y is invalid from here on
        ++fused;
        break;
      }
      const Tensor* w = Const(g, mm->inputs[1], DType::kI8);
      if (!w || w->rank() != 2) continue;
      if (mm->has_input(3)) {
        const Tensor* wz = Const(g, mm->inputs[3], DType::kI8);
        if (!wz || !AllZero(*wz)) continue;
      }
      const int64_t N = w->dim(1);
      // The scale product: Mul(xs, ws) in either order, ws a constant fp32 [N] or scalar.
      std::string ws;
      for (int s = 0; s < 2; ++s) {
        const Tensor* t = Const(g, smul->inputs[1 - s], DType::kF32);
        if (smul->inputs[s] == dql->outputs[1] && t && t->rank() <= 1 &&
            (t->numel() == N || t->numel() == 1))
          ws = smul->inputs[1 - s];
      }
      if (ws.empty()) continue;

      ir::Node f;
      f.op_type = "DynamicQLinear";
      f.domain = "qforge";
      f.name = mm->name;
      f.inputs = {dql->inputs[0], mm->inputs[1], ws};
      f.outputs = {y.outputs[0]};
      f.attrs["per_row"] = int64_t{0};
      size_t at = yi;  // the fused node replaces the last node of the pattern
      // A following bias Add (the only reader of y).
      const std::vector<int> readers = ir::Consumers(g, y.outputs[0]);
      if (readers.size() == 1 && !ir::IsGraphOutput(g, y.outputs[0])) {
        const ir::Node& add = g.nodes[readers[0]];
        if (add.domain.empty() && add.op_type == "Add" && add.num_inputs() == 2 &&
            add.outputs.size() == 1) {
          const std::string& other = add.inputs[add.inputs[0] == y.outputs[0] ? 1 : 0];
          const Tensor* b = Const(g, other, DType::kF32);
          if (b && b->rank() == 1 && b->numel() == N && other != y.outputs[0]) {
            f.inputs.push_back(other);
            f.outputs = add.outputs;
            dead.insert(static_cast<int>(yi));
            at = static_cast<size_t>(readers[0]);
          }
        }
      }
      dead.insert(ci);
      dead.insert(mi);
      maybe_dead.insert(smul->outputs[0]);
      maybe_dead.insert(dql->outputs[0]);
      g.nodes[at] = f;  // y may be invalid from here on
      ++fused;
      break;
    }
  }
  if (!fused) return 0;
  std::vector<ir::Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!dead.count(static_cast<int>(i))) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  // Remove the scale Muls, then the DynamicQuantizeLinears, that nothing reads any more.
  for (const char* op : {"Mul", "DynamicQuantizeLinear"}) {
    std::vector<ir::Node> live;
    for (ir::Node& n : g.nodes) {
      bool unread = n.op_type == op && !n.outputs.empty() && maybe_dead.count(n.outputs[0]);
      for (const std::string& o : n.outputs)
        if (!o.empty() && (ir::IsGraphOutput(g, o) || !ir::Consumers(g, o).empty())) unread = false;
      if (!unread) live.push_back(std::move(n));
    }
    g.nodes = std::move(live);
  }
  ir::RemoveUnusedValues(g);
  return fused;
}

}  // namespace qforge::passes
