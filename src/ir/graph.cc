// Graph IR: attribute access, lookups, verification, topological sort, text form.
#include "qforge/ir/graph.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace qforge::ir {

std::string AttrKindName(const AttrValue& v) {
  static const char* kNames[] = {"int", "float", "string", "tensor", "ints", "floats", "strings"};
  return kNames[v.index()];
}

namespace {
template <typename T>
const T& GetAttr(const Node& n, const std::string& key, const char* kind) {
  auto it = n.attrs.find(key);
  if (it == n.attrs.end()) throw Error(n.Describe() + ": missing required attribute '" + key + "'");
  const T* p = std::get_if<T>(&it->second);
  if (!p)
    throw Error(n.Describe() + ": attribute '" + key + "' is " + AttrKindName(it->second) +
                ", expected " + kind);
  return *p;
}
template <typename T>
T GetAttrOr(const Node& n, const std::string& key, const T& def, const char* kind) {
  if (!n.has_attr(key)) return def;
  return GetAttr<T>(n, key, kind);
}
}  // namespace

int64_t Node::attr_int(const std::string& k) const { return GetAttr<int64_t>(*this, k, "int"); }
int64_t Node::attr_int(const std::string& k, int64_t d) const {
  return GetAttrOr<int64_t>(*this, k, d, "int");
}
float Node::attr_float(const std::string& k) const { return GetAttr<float>(*this, k, "float"); }
float Node::attr_float(const std::string& k, float d) const {
  return GetAttrOr<float>(*this, k, d, "float");
}
const std::string& Node::attr_string(const std::string& k) const {
  return GetAttr<std::string>(*this, k, "string");
}
std::string Node::attr_string(const std::string& k, const std::string& d) const {
  return GetAttrOr<std::string>(*this, k, d, "string");
}
const Tensor& Node::attr_tensor(const std::string& k) const {
  return GetAttr<Tensor>(*this, k, "tensor");
}
const std::vector<int64_t>& Node::attr_ints(const std::string& k) const {
  return GetAttr<std::vector<int64_t>>(*this, k, "ints");
}
std::vector<int64_t> Node::attr_ints(const std::string& k, const std::vector<int64_t>& d) const {
  return GetAttrOr<std::vector<int64_t>>(*this, k, d, "ints");
}
const std::vector<float>& Node::attr_floats(const std::string& k) const {
  return GetAttr<std::vector<float>>(*this, k, "floats");
}
std::vector<float> Node::attr_floats(const std::string& k, const std::vector<float>& d) const {
  return GetAttrOr<std::vector<float>>(*this, k, d, "floats");
}
const std::vector<std::string>& Node::attr_strings(const std::string& k) const {
  return GetAttr<std::vector<std::string>>(*this, k, "strings");
}

size_t Node::num_inputs() const {
  size_t n = inputs.size();
  while (n > 0 && inputs[n - 1].empty()) --n;
  return n;
}

std::string Node::Describe() const {
  return op_type + " '" + (name.empty() ? (outputs.empty() ? "?" : outputs[0]) : name) + "'";
}

int64_t Graph::opset() const {
  auto it = opset_imports.find("");
  if (it != opset_imports.end()) return it->second;
  it = opset_imports.find("ai.onnx");
  return it == opset_imports.end() ? 0 : it->second;
}

int Graph::FindProducer(const std::string& v) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const auto& o : nodes[i].outputs)
      if (o == v) return static_cast<int>(i);
  return -1;
}

const Node* Graph::FindNode(const std::string& node_name) const {
  for (const auto& n : nodes)
    if (n.name == node_name) return &n;
  return nullptr;
}

std::optional<ValueInfo> Graph::FindValueInfo(const std::string& v) const {
  for (const auto& i : inputs)
    if (i.name == v) return i;
  for (const auto& o : outputs)
    if (o.name == v) return o;
  if (auto it = value_info.find(v); it != value_info.end()) return it->second;
  if (auto it = initializers.find(v); it != initializers.end()) {
    ValueInfo vi{v, it->second.dtype(), true, {}};
    for (int64_t d : it->second.shape()) vi.dims.push_back(Dim::Known(d));
    return vi;
  }
  return std::nullopt;
}

int64_t Graph::ParameterCount() const {
  int64_t n = 0;
  for (const auto& [k, t] : initializers) n += t.numel();
  return n;
}

int64_t Graph::ParameterBytes() const {
  int64_t n = 0;
  for (const auto& [k, t] : initializers) n += static_cast<int64_t>(t.nbytes());
  return n;
}

std::vector<std::string> Verify(const Graph& g) {
  std::vector<std::string> problems;
  std::unordered_set<std::string> defined;
  for (const auto& i : g.inputs) {
    if (i.name.empty()) problems.push_back("graph input with empty name");
    if (!defined.insert(i.name).second)
      problems.push_back("graph input '" + i.name + "' defined twice");
  }
  for (const auto& [k, t] : g.initializers) {
    if (!t.defined()) problems.push_back("initializer '" + k + "' has no data");
    defined.insert(k);
  }
  for (const auto& n : g.nodes) {
    if (n.op_type.empty()) problems.push_back("node '" + n.name + "' has no op type");
    for (const auto& in : n.inputs)
      if (!in.empty() && !defined.count(in))
        problems.push_back(n.Describe() + ": input '" + in + "' is not defined before use");
    for (const auto& out : n.outputs) {
      if (out.empty()) continue;
      if (!defined.insert(out).second)
        problems.push_back(n.Describe() + ": output '" + out + "' is defined twice");
    }
  }
  for (const auto& o : g.outputs)
    if (!defined.count(o.name))
      problems.push_back("graph output '" + o.name + "' is never produced");
  return problems;
}

void VerifyOrThrow(const Graph& g) {
  auto p = Verify(g);
  if (!p.empty()) throw Error("invalid graph: " + p.front());
}

void TopologicalSort(Graph& g) {
  std::unordered_map<std::string, int> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& o : g.nodes[i].outputs)
      if (!o.empty()) producer[o] = static_cast<int>(i);
  // 0 = unvisited, 1 = on stack, 2 = done. Iterative DFS keeps deep graphs off the C++ stack.
  std::vector<int> state(g.nodes.size(), 0);
  std::vector<Node> sorted;
  sorted.reserve(g.nodes.size());
  for (size_t root = 0; root < g.nodes.size(); ++root) {
    if (state[root]) continue;
    std::vector<std::pair<int, size_t>> stack{{static_cast<int>(root), 0}};
    state[root] = 1;
    while (!stack.empty()) {
      auto& [ni, next] = stack.back();
      const Node& n = g.nodes[ni];
      if (next < n.inputs.size()) {
        const std::string& in = n.inputs[next++];
        auto it = producer.find(in);
        if (in.empty() || it == producer.end()) continue;
        int p = it->second;
        if (state[p] == 1) throw Error("graph has a cycle through " + g.nodes[p].Describe());
        if (state[p] == 0) {
          state[p] = 1;
          stack.push_back({p, 0});
        }
      } else {
        state[ni] = 2;
        sorted.push_back(std::move(g.nodes[ni]));
        stack.pop_back();
      }
    }
  }
  g.nodes = std::move(sorted);
}

std::vector<int> Consumers(const Graph& g, const std::string& v) {
  std::vector<int> out;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& in : g.nodes[i].inputs)
      if (in == v) {
        out.push_back(static_cast<int>(i));
        break;
      }
  return out;
}

bool IsGraphOutput(const Graph& g, const std::string& v) {
  for (const auto& o : g.outputs)
    if (o.name == v) return true;
  return false;
}

void ReplaceAllUses(Graph& g, const std::string& from, const std::string& to) {
  for (auto& n : g.nodes)
    for (auto& in : n.inputs)
      if (in == from) in = to;
  for (auto& o : g.outputs)
    if (o.name == from) o.name = to;
}

void RemoveUnusedValues(Graph& g) {
  std::unordered_set<std::string> used;
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) used.insert(in);
    for (const auto& out : n.outputs) used.insert(out);
  }
  for (const auto& o : g.outputs) used.insert(o.name);
  for (auto it = g.initializers.begin(); it != g.initializers.end();)
    it = used.count(it->first) ? std::next(it) : g.initializers.erase(it);
  for (auto it = g.value_info.begin(); it != g.value_info.end();)
    it = used.count(it->first) ? std::next(it) : g.value_info.erase(it);
}

ValueNamer::ValueNamer(const Graph& g) {
  for (const auto& i : g.inputs) taken_.insert(i.name);
  for (const auto& [k, t] : g.initializers) taken_.insert(k);
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs) taken_.insert(o);
}

std::string ValueNamer::Fresh(const std::string& base) {
  std::string name = base;
  for (int i = 1; taken_.count(name); ++i) name = base + "_" + std::to_string(i);
  taken_.insert(name);
  return name;
}

Node MakeNode(const std::string& op_type, const std::string& name, std::vector<std::string> inputs,
              std::vector<std::string> outputs) {
  Node n;
  n.op_type = op_type;
  n.name = name;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

std::string UniqueValueName(const Graph& g, const std::string& base) {
  std::unordered_set<std::string> names;
  for (const auto& i : g.inputs) names.insert(i.name);
  for (const auto& [k, t] : g.initializers) names.insert(k);
  for (const auto& n : g.nodes)
    for (const auto& o : n.outputs) names.insert(o);
  if (!names.count(base)) return base;
  for (int i = 1;; ++i) {
    std::string c = base + "_" + std::to_string(i);
    if (!names.count(c)) return c;
  }
}

namespace {
std::string DimsToString(const ValueInfo& vi) {
  if (!vi.has_shape) return "?";
  std::string s = "[";
  for (size_t i = 0; i < vi.dims.size(); ++i) {
    if (i) s += ",";
    const Dim& d = vi.dims[i];
    s += d.known() ? std::to_string(d.value) : (d.symbol.empty() ? "?" : d.symbol);
  }
  return s + "]";
}

std::string AttrToString(const AttrValue& v) {
  std::ostringstream os;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, float>)
          os << x;
        else if constexpr (std::is_same_v<T, std::string>)
          os << '"' << x << '"';
        else if constexpr (std::is_same_v<T, Tensor>)
          os << "tensor<" << DTypeName(x.dtype()) << ShapeToString(x.shape()) << ">";
        else {
          os << "[";
          for (size_t i = 0; i < x.size(); ++i) os << (i ? "," : "") << x[i];
          os << "]";
        }
      },
      v);
  return os.str();
}
}  // namespace

std::string ToText(const Graph& g) {
  std::ostringstream os;
  os << "graph " << g.name << " (opset " << g.opset() << ")\n";
  for (const auto& i : g.inputs)
    os << "  input " << i.name << ": " << DTypeName(i.dtype) << DimsToString(i) << "\n";
  for (const auto& [k, t] : g.initializers)
    os << "  init " << k << ": " << DTypeName(t.dtype()) << ShapeToString(t.shape()) << "\n";
  for (const auto& n : g.nodes) {
    os << "  ";
    for (size_t i = 0; i < n.outputs.size(); ++i) os << (i ? ", " : "") << n.outputs[i];
    os << " = " << (n.domain.empty() ? "" : n.domain + "::") << n.op_type << "(";
    for (size_t i = 0; i < n.inputs.size(); ++i) os << (i ? ", " : "") << n.inputs[i];
    os << ")";
    if (!n.attrs.empty()) {
      os << " {";
      bool first = true;
      for (const auto& [k, v] : n.attrs) {
        os << (first ? "" : ", ") << k << "=" << AttrToString(v);
        first = false;
      }
      os << "}";
    }
    if (!n.name.empty()) os << "  # " << n.name;
    os << "\n";
  }
  for (const auto& o : g.outputs)
    os << "  output " << o.name << ": " << DTypeName(o.dtype) << DimsToString(o) << "\n";
  return os.str();
}

}  // namespace qforge::ir
