// The autograd engine: forward over the graph with a tape of node inputs/outputs, backward in
// reverse topological order, gradient accumulation per trainable name.
#include "qforge/train/autograd.h"

#include <algorithm>
#include <ctime>
#include <unordered_map>

#include "runtime/op_kernel.h"
#include "train/tensor_math.h"

namespace qforge::train {

namespace {

// SplitMix64: decorrelates per-node seeds from the step seed.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// The profile's name of a node: its op type, depthwise convolutions told apart.
std::string ProfileName(const ir::Node& n, const ir::Graph& g) {
  std::string name =
      n.domain.empty() || n.domain == "ai.onnx" ? n.op_type : n.domain + "::" + n.op_type;
  if (n.op_type == "Conv" && n.attr_int("group", 1) > 1 && n.inputs.size() > 1) {
    auto it = g.initializers.find(n.inputs[1]);
    if (it != g.initializers.end() && it->second.rank() >= 2 && it->second.dim(1) == 1)
      name += "(depthwise)";
    else
      name += "(grouped)";
  }
  return name;
}

}  // namespace

std::vector<Tensor> RuntimeForward(ForwardArgs& args) {
  if (!args.runtime_kernel)
    throw Error(args.node.Describe() + ": no runtime kernel to run the forward with");
  runtime::OpContext ctx;
  ctx.threads = args.threads;
  return args.runtime_kernel->Run(ctx, args.inputs);
}

std::set<std::string> DefaultTrainable(const ir::Graph& g) {
  std::set<std::string> excluded, used;
  for (const ir::Node& n : g.nodes) {
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (n.inputs[i].empty()) continue;
      used.insert(n.inputs[i]);
      if (n.op_type == "BatchNormalization" && (i == 3 || i == 4)) excluded.insert(n.inputs[i]);
    }
  }
  std::set<std::string> out;
  for (const auto& [name, t] : g.initializers)
    if (t.dtype() == DType::kF32 && t.numel() > 1 && used.count(name) && !excluded.count(name))
      out.insert(name);
  return out;
}

struct Autograd::Impl {
  ir::Graph graph;
  std::set<std::string> trainable;
  AutogradOptions options;
  std::vector<const GradOp*> ops;                           // per node (may be null)
  std::vector<std::unique_ptr<runtime::OpKernel>> kernels;  // per node (may be null)
  std::vector<std::vector<bool>> needs_grad;                // per node, per input
  std::vector<bool> node_differentiable;                    // some input needs a gradient
  std::map<std::string, Tensor> grads;
  std::vector<size_t> profile_slot;  // per node: index into profile
  std::vector<OpProfile> profile;    // per op type (options.profile)
  size_t accumulate_slot = 0;

  // Tape of the last Forward().
  std::unordered_map<std::string, Tensor> values;
  std::vector<std::vector<Tensor>> saved;  // per node
  bool training = false;
  bool have_tape = false;
};

Autograd::Autograd(ir::Graph graph, std::set<std::string> trainable, AutogradOptions options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.graph = std::move(graph);
  // Own copies of the float initializers: training updates them in place, and the caller's
  // graph (which shares storage with ours after the copy) must not change behind its back.
  for (auto& [name, t] : m.graph.initializers)
    if (t.dtype() == DType::kF32) t = t.Clone();
  m.trainable = std::move(trainable);
  m.options = options;
  ir::VerifyOrThrow(m.graph);
  ir::TopologicalSort(m.graph);
  const ir::Graph& g = m.graph;

  for (const std::string& name : m.trainable) {
    const Tensor* t = nullptr;
    auto it = g.initializers.find(name);
    if (it != g.initializers.end()) t = &it->second;
    bool is_input = false;
    for (const auto& in : g.inputs) is_input |= in.name == name;
    if (!t && !is_input) throw Error("trainable value '" + name + "' is not in the graph");
    if (t && t->dtype() != DType::kF32)
      throw Error("trainable initializer '" + name + "' has type " +
                  std::string(DTypeName(t->dtype())) + "; only float32 can be trained");
    if (t) m.grads[name] = Tensor(DType::kF32, t->shape());
  }

  // Which values carry a gradient: trainable ones and the float outputs of nodes with such an
  // input. A node that must pass a gradient needs a registered backward.
  std::set<std::string> carries;
  for (const std::string& n : m.trainable) carries.insert(n);
  m.profile.clear();
  const int opset = static_cast<int>(g.opset());
  for (const ir::Node& n : g.nodes) {
    const GradOp* op = FindGradOp(n.domain, n.op_type);
    m.ops.push_back(op);
    std::unique_ptr<runtime::OpKernel> kernel;
    if (runtime::OpFactory f = runtime::FindOp(n.domain, n.op_type)) {
      // Only non-float initializers (shapes, axes, indices) are constants: weights and
      // statistics change while training, so the kernel must read them at every run.
      runtime::OpInit init{n, {}, opset};
      for (const std::string& in : n.inputs) {
        auto it = g.initializers.find(in);
        init.constants.push_back(
            it != g.initializers.end() && !IsFloat(it->second.dtype()) ? it->second : Tensor());
      }
      kernel = f(init);
    } else if (!op) {
      throw Error(n.Describe() + ": unsupported op (neither a runtime kernel nor a gradient)");
    }
    m.kernels.push_back(std::move(kernel));
    const std::string pname = ProfileName(n, g);
    auto slot = std::find_if(m.profile.begin(), m.profile.end(),
                             [&](const OpProfile& p) { return p.op_type == pname; });
    m.profile_slot.push_back(static_cast<size_t>(slot - m.profile.begin()));
    if (slot == m.profile.end()) m.profile.push_back({pname});

    std::vector<bool> need(n.inputs.size(), false);
    bool any = false;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      need[i] = !n.inputs[i].empty() && carries.count(n.inputs[i]) != 0;
      any |= need[i];
    }
    m.needs_grad.push_back(need);
    m.node_differentiable.push_back(any);
    if (!any) continue;
    if (!op || !op->backward) {
      // Gradients stop here harmlessly only when nothing float comes out (Shape, ArgMax...).
      bool float_out = false;
      for (const std::string& o : n.outputs) {
        auto vi = g.FindValueInfo(o);
        float_out |= !vi || vi->dtype == DType::kF32 || vi->dtype == DType::kUndefined;
      }
      if (float_out)
        throw Error(n.Describe() + ": no gradient registered for op " +
                    (n.domain.empty() ? "" : n.domain + "::") + n.op_type +
                    " (see include/qforge/train/autograd.h)");
      m.node_differentiable.back() = false;
      continue;
    }
    for (const std::string& o : n.outputs)
      if (!o.empty()) carries.insert(o);
  }
  m.accumulate_slot = m.profile.size();
  m.profile.push_back({"(gradient accumulation)"});
}

Autograd::~Autograd() = default;
Autograd::Autograd(Autograd&&) noexcept = default;
Autograd& Autograd::operator=(Autograd&&) noexcept = default;

std::map<std::string, Tensor> Autograd::Forward(const std::map<std::string, Tensor>& inputs,
                                                bool training, uint64_t seed, int64_t step) {
  Impl& m = *impl_;
  ir::Graph& g = m.graph;
  m.values.clear();
  m.saved.assign(g.nodes.size(), {});
  m.training = training;
  for (const auto& [name, t] : g.initializers) m.values[name] = t;
  for (const auto& in : g.inputs) {
    auto it = inputs.find(in.name);
    if (it == inputs.end()) throw Error("missing graph input '" + in.name + "'");
    if (in.has_shape && static_cast<size_t>(it->second.rank()) != in.dims.size())
      throw Error("graph input '" + in.name + "' has shape " + ShapeToString(it->second.shape()) +
                  ", expected rank " + std::to_string(in.dims.size()));
    m.values[in.name] = it->second;
  }
  for (const auto& [name, t] : inputs) {
    bool known = false;
    for (const auto& in : g.inputs) known |= in.name == name;
    if (!known) throw Error("unknown graph input '" + name + "'");
  }

  const int opset = static_cast<int>(g.opset());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    std::vector<Tensor> ins;
    ins.reserve(n.inputs.size());
    for (const std::string& v : n.inputs) {
      if (v.empty()) {
        ins.emplace_back();
        continue;
      }
      auto it = m.values.find(v);
      if (it == m.values.end()) throw Error(n.Describe() + ": input '" + v + "' not computed");
      ins.push_back(it->second);
    }
    ForwardArgs a{n, ins};
    a.training = training;
    a.threads = m.options.threads;
    a.seed = Mix(seed ^ Mix(i + 1));
    a.step = step;
    a.opset = opset;
    a.runtime_kernel = m.kernels[i].get();
    const double t0 = m.options.profile ? CpuSeconds() : 0.0;
    std::vector<Tensor> outs =
        m.ops[i] && m.ops[i]->forward ? m.ops[i]->forward(a) : RuntimeForward(a);
    if (m.options.profile) {
      OpProfile& p = m.profile[m.profile_slot[i]];
      p.forward_seconds += CpuSeconds() - t0;
      ++p.forward_calls;
    }
    if (outs.size() != n.outputs.size())
      throw Error(n.Describe() + ": forward returned " + std::to_string(outs.size()) +
                  " outputs, expected " + std::to_string(n.outputs.size()));
    for (size_t j = 0; j < outs.size(); ++j)
      if (!n.outputs[j].empty()) m.values[n.outputs[j]] = outs[j];
    m.saved[i] = std::move(a.saved);
    if (training) {
      for (auto& [idx, t] : a.updates) {
        if (idx >= n.inputs.size() || !g.is_initializer(n.inputs[idx]))
          throw Error(n.Describe() + ": forward updated input " + std::to_string(idx) +
                      ", which is not an initializer");
        g.initializers[n.inputs[idx]] = t;
      }
    }
  }
  m.have_tape = true;
  std::map<std::string, Tensor> out;
  for (const auto& o : g.outputs) out[o.name] = m.values.at(o.name);
  return out;
}

void Autograd::Backward(const std::map<std::string, Tensor>& output_grads) {
  Impl& m = *impl_;
  if (!m.have_tape) throw Error("Autograd::Backward called without a Forward");
  const ir::Graph& g = m.graph;
  std::unordered_map<std::string, Tensor> grad;
  // Adds dv into the running gradient of value v (never in place on a tensor someone else
  // may share: backward functions may return their grad_output itself).
  auto accumulate = [&](const std::string& v, const Tensor& dv) {
    auto it = grad.find(v);
    if (it == grad.end()) {
      grad[v] = dv;
      return;
    }
    const double t0 = m.options.profile ? CpuSeconds() : 0.0;
    it->second = AddTensors(it->second, dv);
    if (m.options.profile) {
      OpProfile& p = m.profile[m.accumulate_slot];
      p.backward_seconds += CpuSeconds() - t0;
      ++p.backward_calls;
    }
  };
  for (const auto& [name, t] : output_grads) {
    auto it = m.values.find(name);
    if (it == m.values.end()) throw Error("Backward: unknown value '" + name + "'");
    if (t.shape() != it->second.shape() || t.dtype() != DType::kF32)
      throw Error("Backward: gradient for '" + name + "' has shape " + ShapeToString(t.shape()) +
                  ", expected f32 " + ShapeToString(it->second.shape()));
    accumulate(name, t);
  }

  for (size_t k = g.nodes.size(); k-- > 0;) {
    if (!m.node_differentiable[k]) continue;
    const ir::Node& n = g.nodes[k];
    std::vector<Tensor> gouts;
    bool any = false;
    for (const std::string& o : n.outputs) {
      auto it = o.empty() ? grad.end() : grad.find(o);
      gouts.push_back(it == grad.end() ? Tensor() : it->second);
      any |= it != grad.end();
    }
    if (!any) continue;
    std::vector<Tensor> ins, outs;
    for (const std::string& v : n.inputs) ins.push_back(v.empty() ? Tensor() : m.values.at(v));
    for (const std::string& v : n.outputs) outs.push_back(v.empty() ? Tensor() : m.values.at(v));
    BackwardArgs a{n, ins, outs, m.saved[k], gouts, m.needs_grad[k]};
    a.training = m.training;
    a.threads = m.options.threads;
    a.opset = static_cast<int>(g.opset());
    const double t0 = m.options.profile ? CpuSeconds() : 0.0;
    std::vector<Tensor> gins = m.ops[k]->backward(a);
    if (m.options.profile) {
      OpProfile& p = m.profile[m.profile_slot[k]];
      p.backward_seconds += CpuSeconds() - t0;
      ++p.backward_calls;
    }
    if (gins.size() > n.inputs.size())
      throw Error(n.Describe() + ": backward returned too many gradients");
    for (size_t i = 0; i < gins.size(); ++i) {
      if (!gins[i].defined() || !m.needs_grad[k][i]) continue;
      if (gins[i].shape() != ins[i].shape())
        throw Error(n.Describe() + ": backward gave input " + std::to_string(i) +
                    " a gradient of shape " + ShapeToString(gins[i].shape()) + ", expected " +
                    ShapeToString(ins[i].shape()));
      accumulate(n.inputs[i], gins[i]);
    }
    for (const std::string& o : n.outputs) grad.erase(o);
  }
  for (const std::string& name : m.trainable) {
    auto it = grad.find(name);
    if (it == grad.end()) continue;
    auto [pos, inserted] = m.grads.try_emplace(name, Tensor());
    pos->second = inserted || !pos->second.defined() ? it->second.Clone()
                                                     : AddTensors(pos->second, it->second);
  }
  m.values.clear();
  m.saved.clear();
  m.have_tape = false;
}

const std::map<std::string, Tensor>& Autograd::grads() const { return impl_->grads; }

void Autograd::ZeroGrad() {
  for (auto& [name, t] : impl_->grads)
    if (t.defined()) std::fill_n(t.data<float>(), t.numel(), 0.0f);
}

Tensor Autograd::Value(const std::string& name) const {
  auto it = impl_->values.find(name);
  return it == impl_->values.end() ? Tensor() : it->second;
}

std::vector<OpProfile> Autograd::Profile() const {
  if (!impl_->options.profile) return {};
  std::vector<OpProfile> out;
  for (const OpProfile& p : impl_->profile)
    if (p.forward_calls || p.backward_calls) out.push_back(p);
  std::stable_sort(out.begin(), out.end(), [](const OpProfile& a, const OpProfile& b) {
    return a.forward_seconds + a.backward_seconds > b.forward_seconds + b.backward_seconds;
  });
  return out;
}

const std::set<std::string>& Autograd::trainable() const { return impl_->trainable; }
ir::Graph& Autograd::graph() { return impl_->graph; }
const ir::Graph& Autograd::graph() const { return impl_->graph; }
const AutogradOptions& Autograd::options() const { return impl_->options; }

}  // namespace qforge::train
