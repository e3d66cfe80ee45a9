// Test helper: builds a one-node ir::Graph (inputs fed at run time or given as initializers)
// and runs it through runtime::Session, so op tests exercise the real factory + Run path.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "qforge/runtime/session.h"

namespace qforge::runtime::testing {

class NodeTest {
 public:
  NodeTest(const std::string& op, int64_t opset) {
    node_.op_type = op;
    node_.name = "node1";
    graph_.opset_imports[""] = opset;
  }
  // Adds the next input: a graph input fed at run time, or an initializer when constant.
  NodeTest& In(const Tensor& t, bool constant = false) {
    const std::string name = "x" + std::to_string(node_.inputs.size());
    node_.inputs.push_back(name);
    if (constant) {
      graph_.initializers[name] = t;
    } else {
      ir::ValueInfo vi;
      vi.name = name;
      vi.dtype = t.dtype();
      graph_.inputs.push_back(vi);
      feeds_[name] = t;
    }
    return *this;
  }
  // An omitted optional input (empty name).
  NodeTest& Skip() {
    node_.inputs.push_back("");
    return *this;
  }
  NodeTest& Attr(const std::string& key, ir::AttrValue v) {
    node_.attrs[key] = std::move(v);
    return *this;
  }
  // Runs with `outputs` outputs named y0, y1, ...; returns them in order.
  std::vector<Tensor> Run(int outputs = 1) {
    ir::Graph g = graph_;
    ir::Node n = node_;
    for (int i = 0; i < outputs; ++i) {
      n.outputs.push_back("y" + std::to_string(i));
      g.outputs.push_back(ir::ValueInfo{"y" + std::to_string(i)});
    }
    g.nodes = {n};
    Session s(std::move(g));
    std::map<std::string, Tensor> out = s.Run(feeds_);
    std::vector<Tensor> result;
    for (int i = 0; i < outputs; ++i) result.push_back(out.at("y" + std::to_string(i)));
    return result;
  }
  Tensor Run1() { return Run(1).at(0); }
  // The message of the Error thrown by Run, or "" if none was thrown.
  std::string Error(int outputs = 1) {
    try {
      Run(outputs);
    } catch (const qforge::Error& e) {
      return e.what();
    }
    return "";
  }

 private:
  ir::Graph graph_;
  ir::Node node_;
  std::map<std::string, Tensor> feeds_;
};

inline std::vector<float> F(const Tensor& t) { return t.ToFloatVector(); }
inline std::vector<int64_t> I(const Tensor& t) { return t.ToInt64Vector(); }
inline Tensor Fv(Shape s, std::vector<float> v) { return Tensor::FromVector<float>(s, v); }
inline Tensor Iv(std::vector<int64_t> v) {
  return Tensor::FromVector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

}  // namespace qforge::runtime::testing
