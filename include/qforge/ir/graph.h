// The graph IR: Graph / Node / Value with typed attributes, independent of ONNX protobuf.
//
// Values are named edges (as in ONNX): a node input or output refers to a value by name, and
// the empty name means "optional input not given". Initializers are constant Tensors keyed by
// value name. Shapes may carry symbolic dimensions ("batch"), kept through import and export.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "qforge/tensor/tensor.h"

namespace qforge::ir {

// One dimension: a known size, a named symbol, or unknown (neither).
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string symbol;  // non-empty when symbolic
  bool known() const { return value >= 0; }
  static Dim Known(int64_t v) { return Dim{v, {}}; }
  static Dim Symbol(std::string s) { return Dim{-1, std::move(s)}; }
  bool operator==(const Dim&) const = default;
};

// Type and (possibly partial) shape of a value. has_shape=false: rank unknown.
struct ValueInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  bool has_shape = false;
  std::vector<Dim> dims;
  bool operator==(const ValueInfo&) const = default;
};

struct Graph;

// A typed attribute value. Subgraphs (If/Loop bodies) are not supported in this IR.
using AttrValue = std::variant<int64_t, float, std::string, Tensor, std::vector<int64_t>,
                               std::vector<float>, std::vector<std::string>>;

// Human-readable name of the alternative held ("int", "float", "string", "tensor", "ints", ...).
std::string AttrKindName(const AttrValue& v);

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" is the default ONNX domain ("ai.onnx")
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, AttrValue> attrs;

  bool has_attr(const std::string& key) const { return attrs.count(key) != 0; }
  // Typed getters. The defaulted form returns `def` when absent; the other throws Error naming
  // the node when absent. Both throw Error when the attribute has another kind.
  int64_t attr_int(const std::string& key) const;
  int64_t attr_int(const std::string& key, int64_t def) const;
  float attr_float(const std::string& key) const;
  float attr_float(const std::string& key, float def) const;
  const std::string& attr_string(const std::string& key) const;
  std::string attr_string(const std::string& key, const std::string& def) const;
  const Tensor& attr_tensor(const std::string& key) const;
  const std::vector<int64_t>& attr_ints(const std::string& key) const;
  std::vector<int64_t> attr_ints(const std::string& key, const std::vector<int64_t>& def) const;
  const std::vector<float>& attr_floats(const std::string& key) const;
  std::vector<float> attr_floats(const std::string& key, const std::vector<float>& def) const;
  const std::vector<std::string>& attr_strings(const std::string& key) const;

  // Number of inputs actually given (trailing empty names do not count).
  size_t num_inputs() const;
  bool has_input(size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
  // "Conv 'conv1'" for messages.
  std::string Describe() const;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;        // kept in topological order by import and by passes
  std::vector<ValueInfo> inputs;  // graph inputs that are not initializers
  std::vector<ValueInfo> outputs;
  std::map<std::string, ValueInfo> value_info;  // inferred types/shapes of intermediates
  std::map<std::string, Tensor> initializers;
  std::map<std::string, int64_t> opset_imports;  // domain -> version; "" is ai.onnx
  std::string producer_name;
  std::string doc_string;

  int64_t opset() const;  // ai.onnx opset version (0 if absent)
  bool is_initializer(const std::string& v) const { return initializers.count(v) != 0; }
  // Index of the node producing value v, or -1 (graph input / initializer / unknown).
  int FindProducer(const std::string& v) const;
  const Node* FindNode(const std::string& node_name) const;
  // Shape info for a value from inputs, outputs, value_info or initializers.
  std::optional<ValueInfo> FindValueInfo(const std::string& v) const;
  // Total number of parameters (elements of all initializers) and their bytes.
  int64_t ParameterCount() const;
  int64_t ParameterBytes() const;
};

// Checks structural validity: unique value producers, every input defined before use,
// graph outputs produced, no empty op types. Returns a list of problems (empty = valid).
std::vector<std::string> Verify(const Graph& g);
// Throws Error with the first problem if Verify finds any.
void VerifyOrThrow(const Graph& g);

// Reorders g.nodes topologically (stable for already-sorted graphs). Throws on cycles.
void TopologicalSort(Graph& g);

// Indices of the nodes that read value v.
std::vector<int> Consumers(const Graph& g, const std::string& v);
// True when v is one of the graph's outputs.
bool IsGraphOutput(const Graph& g, const std::string& v);
// Rewrites every node input and graph output named `from` to `to`.
void ReplaceAllUses(Graph& g, const std::string& from, const std::string& to);
// Drops initializers and value_info entries that no node or graph output refers to.
void RemoveUnusedValues(Graph& g);
// A value name not yet used in g, built from `base` ("w_folded", "w_folded_1", ...).
std::string UniqueValueName(const Graph& g, const std::string& base);

// Fresh value names for a pass that creates many values before its nodes enter the graph: every
// name is unused in g as it was at construction (inputs, initializers, node outputs) and not
// given out before. g's names are collected once, not per name.
class ValueNamer {
 public:
  explicit ValueNamer(const Graph& g);
  // base, else base_1, base_2, ...: the first one free; it is taken from then on.
  std::string Fresh(const std::string& base);

 private:
  std::set<std::string> taken_;
};

// A node with no attributes, in the default domain.
Node MakeNode(const std::string& op_type, const std::string& name, std::vector<std::string> inputs,
              std::vector<std::string> outputs);

// A stable text form for debugging and golden tests.
std::string ToText(const Graph& g);

}  // namespace qforge::ir
