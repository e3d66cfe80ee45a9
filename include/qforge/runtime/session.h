// Session: executes an ir::Graph on the CPU. Shapes are resolved at run time, so models with
// symbolic dimensions (batch, height, width) run at any concrete input shape.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "qforge/ir/graph.h"

namespace qforge::runtime {

struct SessionOptions {
  int threads = 0;  // 0: all available cores (OpenMP default)
};

// Called after each node runs with the node and its outputs (for calibration, analysis).
using NodeObserver = std::function<void(const ir::Node&, const std::vector<Tensor>& outputs)>;

class Session {
 public:
  // Validates the graph, creates a kernel for every node (prepacking constant weights).
  // Throws Error naming the node and op for an unsupported op or bad attributes.
  explicit Session(ir::Graph graph, SessionOptions options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Runs the graph. Every graph input must be given, with a matching dtype and rank and
  // matching known dimensions; an unknown input name is an error. Returns graph outputs.
  std::map<std::string, Tensor> Run(const std::map<std::string, Tensor>& inputs,
                                    const NodeObserver& observer = nullptr);

  const ir::Graph& graph() const;
  const SessionOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qforge::runtime
