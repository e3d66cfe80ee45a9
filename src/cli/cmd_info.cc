// `qforge info MODEL`: a model's inputs, outputs, op histogram, parameters, opset and producer.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"

namespace qforge::cli {
namespace {

struct InfoOptions {
  std::string model;
  bool json = false;
};

// Op histogram, most frequent first (ties by name). Non-default domains are "domain::Op".
std::vector<std::pair<std::string, int64_t>> OpHistogram(const ir::Graph& g) {
  std::map<std::string, int64_t> counts;
  for (const ir::Node& n : g.nodes)
    ++counts[n.domain.empty() ? n.op_type : n.domain + "::" + n.op_type];
  std::vector<std::pair<std::string, int64_t>> ops(counts.begin(), counts.end());
  std::stable_sort(ops.begin(), ops.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return ops;
}

std::string OpsetText(const ir::Graph& g) {
  std::string s;
  for (const auto& [domain, version] : g.opset_imports) {
    if (!s.empty()) s += ", ";
    s += fmt::format("{} {}", domain.empty() ? "ai.onnx" : domain, version);
  }
  return s.empty() ? "(none)" : s;
}

int RunInfo(const InfoOptions& o) {
  const ir::Graph g = LoadModelFile(o.model);
  const auto ops = OpHistogram(g);
  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["graph"] = g.name;
    j["producer"] = g.producer_name;
    j["opset"] = g.opset();
    j["opset_imports"] = nlohmann::json::object();
    for (const auto& [domain, version] : g.opset_imports)
      j["opset_imports"][domain.empty() ? "ai.onnx" : domain] = version;
    for (const char* key : {"inputs", "outputs"}) {
      j[key] = nlohmann::json::array();
      for (const ir::ValueInfo& vi : key == std::string("inputs") ? g.inputs : g.outputs)
        j[key].push_back(
            {{"name", vi.name}, {"dtype", DTypeName(vi.dtype)}, {"shape", DimsToJson(vi)}});
    }
    j["nodes"] = g.nodes.size();
    j["ops"] = nlohmann::json::array();
    for (const auto& [op, n] : ops) j["ops"].push_back({{"op", op}, {"count", n}});
    j["initializers"] = g.initializers.size();
    j["parameters"] = {{"count", g.ParameterCount()}, {"bytes", g.ParameterBytes()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  Table head({"", ""});
  head.AddRow({"model", o.model});
  if (!g.name.empty()) head.AddRow({"graph", g.name});
  head.AddRow({"producer", g.producer_name.empty() ? "(unknown)" : g.producer_name});
  head.AddRow({"opset", OpsetText(g)});
  head.AddRow({"nodes", GroupThousands(static_cast<int64_t>(g.nodes.size()))});
  head.AddRow(
      {"parameters", fmt::format("{} in {} initializers ({})", GroupThousands(g.ParameterCount()),
                                 g.initializers.size(), HumanBytes(g.ParameterBytes()))});
  // Drop the empty header line and rule of the key/value block.
  std::string text = head.ToString();
  text = text.substr(text.find('\n', text.find('\n') + 1) + 1);
  std::cout << text << "\n";

  Table io({"kind", "name", "dtype", "shape"});
  for (const ir::ValueInfo& vi : g.inputs)
    io.AddRow({"input", vi.name, std::string(DTypeName(vi.dtype)), DimsToString(vi)});
  for (const ir::ValueInfo& vi : g.outputs)
    io.AddRow({"output", vi.name, std::string(DTypeName(vi.dtype)), DimsToString(vi)});
  std::cout << io.ToString() << "\n";

  Table hist({"op", "count"}, {false, true});
  for (const auto& [op, n] : ops) hist.AddRow({op, std::to_string(n)});
  std::cout << hist.ToString();
  return 0;
}

}  // namespace

Command AddInfoCommand(CLI::App& root) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* app = root.add_subcommand("info", "Show a model's inputs, outputs, ops and size");
  app->add_option("MODEL", o->model, "ONNX model file")->required();
  app->add_flag("--json", o->json, "Print JSON instead of tables");
  app->footer(R"EX(Example:
  $ qforge info models/fmnist_cnn.onnx
  model       models/fmnist_cnn.onnx
  producer    pytorch
  opset       ai.onnx 17
  ...
  kind    name    dtype  shape
  input   image   f32    [batch, 1, 28, 28]
  output  logits  f32    [batch, 10]

Symbolic dimensions are shown by name, unknown ones as '?'. Parameters are the elements of
all initializers; bytes are their storage size.)EX");
  return {app, [o] { return RunInfo(*o); }};
}

}  // namespace qforge::cli
