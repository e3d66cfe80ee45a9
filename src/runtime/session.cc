// Session: plans a graph once (kernels, value lifetimes), then executes it per Run().
#include "qforge/runtime/session.h"

#include <omp.h>

#include <unordered_map>

#include "runtime/op_kernel.h"

namespace qforge::runtime {

struct Session::Impl {
  ir::Graph graph;
  SessionOptions options;
  std::vector<std::unique_ptr<OpKernel>> kernels;  // one per node
  std::unordered_map<std::string, int> slot_of;    // value name -> slot
  std::vector<std::vector<int>> node_in_slots, node_out_slots;
  std::vector<std::vector<int>> free_after;  // slots last used by node i
  std::vector<Tensor> constants;             // slot -> initializer (or undefined)
  std::vector<int> input_slots, output_slots;
  int num_slots = 0;

  int Slot(const std::string& name) {
    auto [it, inserted] = slot_of.emplace(name, num_slots);
    if (inserted) ++num_slots;
    return it->second;
  }
};

namespace {

std::string DimsText(const ir::ValueInfo& vi) {
  std::string s = "[";
  for (size_t i = 0; i < vi.dims.size(); ++i) {
    if (i) s += ", ";
    const ir::Dim& d = vi.dims[i];
    s += d.known() ? std::to_string(d.value) : (d.symbol.empty() ? "?" : d.symbol);
  }
  return s + "]";
}

}  // namespace

Session::Session(ir::Graph graph, SessionOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.graph = std::move(graph);
  m.options = options;
  ir::VerifyOrThrow(m.graph);
  const ir::Graph& g = m.graph;

  for (const auto& [name, t] : g.initializers) m.Slot(name);
  for (const auto& in : g.inputs) m.input_slots.push_back(m.Slot(in.name));
  for (const auto& n : g.nodes) {
    std::vector<int> ins, outs;
    for (const auto& i : n.inputs) ins.push_back(i.empty() ? -1 : m.Slot(i));
    for (const auto& o : n.outputs) outs.push_back(o.empty() ? -1 : m.Slot(o));
    m.node_in_slots.push_back(std::move(ins));
    m.node_out_slots.push_back(std::move(outs));
  }
  for (const auto& o : g.outputs) m.output_slots.push_back(m.Slot(o.name));
  m.constants.resize(m.num_slots);
  for (const auto& [name, t] : g.initializers) m.constants[m.slot_of[name]] = t;

  // Kernels: unsupported ops are reported all at once so a user sees the whole gap.
  std::string unsupported;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    OpFactory f = FindOp(n.domain, n.op_type);
    if (!f) {
      if (!unsupported.empty()) unsupported += ", ";
      unsupported += n.Describe();
      m.kernels.emplace_back();
      continue;
    }
    OpInit init{n, {}, static_cast<int>(g.opset())};
    for (int s : m.node_in_slots[i]) init.constants.push_back(s < 0 ? Tensor() : m.constants[s]);
    m.kernels.push_back(f(init));
  }
  if (!unsupported.empty()) throw Error("unsupported op: " + unsupported);

  // Lifetimes: free a slot after its last reader, unless it is a graph output or constant.
  std::vector<int> last_use(m.num_slots, -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int s : m.node_in_slots[i])
      if (s >= 0) last_use[s] = static_cast<int>(i);
  for (int s : m.output_slots) last_use[s] = -2;
  m.free_after.resize(g.nodes.size());
  for (int s = 0; s < m.num_slots; ++s)
    if (last_use[s] >= 0 && !m.constants[s].defined()) m.free_after[last_use[s]].push_back(s);
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

const ir::Graph& Session::graph() const { return impl_->graph; }
const SessionOptions& Session::options() const { return impl_->options; }

std::map<std::string, Tensor> Session::Run(const std::map<std::string, Tensor>& inputs,
                                           const NodeObserver& observer) {
  Impl& m = *impl_;
  const ir::Graph& g = m.graph;
  std::vector<Tensor> values = m.constants;

  for (const auto& [name, t] : inputs) {
    bool known = false;
    for (const auto& in : g.inputs) known |= in.name == name;
    if (!known) {
      std::string names;
      for (const auto& in : g.inputs) names += (names.empty() ? "" : ", ") + in.name;
      throw Error("unknown input '" + name + "' (model inputs: " + names + ")");
    }
  }
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const ir::ValueInfo& vi = g.inputs[k];
    auto it = inputs.find(vi.name);
    if (it == inputs.end()) throw Error("missing input '" + vi.name + "'");
    const Tensor& t = it->second;
    if (!t.defined()) throw Error("input '" + vi.name + "' is empty");
    if (vi.dtype != DType::kUndefined && t.dtype() != vi.dtype)
      throw Error("input '" + vi.name + "' has type " + std::string(DTypeName(t.dtype())) +
                  ", model expects " + std::string(DTypeName(vi.dtype)));
    if (vi.has_shape) {
      bool ok = static_cast<size_t>(t.rank()) == vi.dims.size();
      for (size_t d = 0; ok && d < vi.dims.size(); ++d)
        ok = !vi.dims[d].known() || vi.dims[d].value == t.shape()[d];
      if (!ok)
        throw Error("input '" + vi.name + "' has shape " + ShapeToString(t.shape()) +
                    ", model expects " + DimsText(vi));
    }
    values[m.input_slots[k]] = t;
  }

  // Bound every OpenMP region of this run (kernels that size themselves by omp_get_max_threads,
  // e.g. the element-wise ParallelChunks) by the session's thread count, so --threads 1 means
  // one core; the caller's setting is restored afterwards.
  struct OmpThreadsGuard {
    int saved = omp_get_max_threads();
    explicit OmpThreadsGuard(int threads) {
      if (threads > 0) omp_set_num_threads(threads);
    }
    ~OmpThreadsGuard() { omp_set_num_threads(saved); }
  } omp_guard(m.options.threads);
  OpContext ctx{m.options.threads};
  std::vector<Tensor> args;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    args.clear();
    for (int s : m.node_in_slots[i]) args.push_back(s < 0 ? Tensor() : values[s]);
    std::vector<Tensor> outs;
    try {
      outs = m.kernels[i]->Run(ctx, args);
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg.find(n.Describe()) == std::string::npos) msg = n.Describe() + ": " + msg;
      throw Error(msg);
    }
    if (outs.size() != n.outputs.size())
      throw Error(n.Describe() + ": produced " + std::to_string(outs.size()) +
                  " outputs, expected " + std::to_string(n.outputs.size()));
    if (observer) observer(n, outs);
    for (size_t o = 0; o < outs.size(); ++o)
      if (m.node_out_slots[i][o] >= 0) values[m.node_out_slots[i][o]] = std::move(outs[o]);
    for (int s : m.free_after[i]) values[s] = Tensor();
  }

  std::map<std::string, Tensor> result;
  for (size_t k = 0; k < g.outputs.size(); ++k)
    result[g.outputs[k].name] = values[m.output_slots[k]];
  return result;
}

}  // namespace qforge::runtime
