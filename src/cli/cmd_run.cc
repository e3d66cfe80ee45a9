// `qforge run MODEL --input name=file.npy ... --output DIR`: runs a model on .npy inputs and
// writes one .npy per graph output.
#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "cli/commands.h"
#include "cli/common.h"
#include "qforge/data/atomic_file.h"
#include "qforge/data/npy.h"
#include "qforge/runtime/session.h"

namespace qforge::cli {
namespace {

struct RunOptions {
  std::string model;
  std::vector<std::string> inputs;  // name=file.npy
  std::string output_dir;
  int threads = 0;
};

std::string ModelInputsText(const ir::Graph& g) {
  std::string s;
  for (const ir::ValueInfo& vi : g.inputs)
    s += (s.empty() ? "" : ", ") +
         fmt::format("{} ({} {})", vi.name, DTypeName(vi.dtype), DimsToString(vi));
  return s.empty() ? "none" : s;
}

// Checks one input against the model's declaration, naming the file in the message.
void CheckInput(const ir::ValueInfo& vi, const Tensor& t, const std::string& file) {
  if (vi.dtype != DType::kUndefined && t.dtype() != vi.dtype)
    throw Error(fmt::format("input '{}' from '{}' has dtype {}, the model expects {}", vi.name,
                            file, DTypeName(t.dtype()), DTypeName(vi.dtype)));
  if (!vi.has_shape) return;
  bool ok = static_cast<size_t>(t.rank()) == vi.dims.size();
  for (size_t d = 0; ok && d < vi.dims.size(); ++d)
    ok = !vi.dims[d].known() || vi.dims[d].value == t.shape()[d];
  if (!ok)
    throw Error(fmt::format("input '{}' from '{}' has shape {}, the model expects {}", vi.name,
                            file, ShapeToString(t.shape()), DimsToString(vi)));
}

void PrepareOutputDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw Error("output '" + dir + "' exists and is not a directory");
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create output directory '" + dir + "': " + ec.message());
}

int RunRun(const RunOptions& o) {
  ir::Graph graph = LoadModelForExecution(o.model);

  // Inputs: every NAME must be a model input, given once; dtype and shape checked per file.
  std::map<std::string, Tensor> feeds;
  for (const std::string& spec : o.inputs) {
    auto [name, file] = SplitNameValue(spec, "--input");
    const ir::ValueInfo* vi = nullptr;
    for (const ir::ValueInfo& in : graph.inputs)
      if (in.name == name) vi = &in;
    if (!vi)
      throw Error(fmt::format("unknown input '{}' in --input {} (model inputs: {})", name, spec,
                              ModelInputsText(graph)));
    if (feeds.count(name)) throw Error("input '" + name + "' given twice");
    Tensor t = data::ReadNpy(file);
    CheckInput(*vi, t, file);
    feeds[name] = std::move(t);
  }
  for (const ir::ValueInfo& in : graph.inputs)
    if (!feeds.count(in.name))
      throw Error(fmt::format("missing --input {}=FILE.npy (model inputs: {})", in.name,
                              ModelInputsText(graph)));

  runtime::SessionOptions options;
  options.threads = o.threads;
  runtime::Session session(std::move(graph), options);
  const std::map<std::string, Tensor> results = session.Run(feeds);

  // Serialize everything first, so an output .npy cannot hold (e.g. bf16) fails before any
  // file is written; then write each file atomically.
  std::vector<std::pair<std::string, std::string>> files;  // path, bytes
  std::set<std::string> used;
  for (const ir::ValueInfo& out : session.graph().outputs) {
    auto it = results.find(out.name);
    if (it == results.end()) throw Error("the model did not produce output '" + out.name + "'");
    std::string base = SanitizeFileName(out.name);
    std::string name = base;
    for (int k = 2; used.count(name); ++k) name = fmt::format("{}_{}", base, k);
    used.insert(name);
    const std::string path = (std::filesystem::path(o.output_dir) / (name + ".npy")).string();
    files.emplace_back(path, data::SerializeNpy(it->second));
  }
  PrepareOutputDir(o.output_dir);
  size_t k = 0;
  for (const ir::ValueInfo& out : session.graph().outputs) {
    const auto& [path, bytes] = files[k++];
    data::WriteFileAtomic(path, bytes);
    const Tensor& t = results.at(out.name);
    fmt::print("{}  {} {}  -> {}\n", out.name, DTypeName(t.dtype()), ShapeToString(t.shape()),
               path);
  }
  return 0;
}

}  // namespace

Command AddRunCommand(CLI::App& root) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* app = root.add_subcommand("run", "Run a model on .npy inputs, write .npy outputs");
  app->add_option("MODEL", o->model, "ONNX model file")->required();
  app->add_option("-i,--input", o->inputs, "NAME=FILE.npy for each model input (repeat)")
      ->required();
  app->add_option("-o,--output", o->output_dir, "Directory for the outputs (created if missing)")
      ->required();
  app->add_option("--threads", o->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  app->footer(R"EX(Example:
  $ python3 -c "import numpy as np; np.save('x.npy', np.random.rand(2,1,28,28).astype('f4'))"
  $ qforge run models/fmnist_cnn.onnx --input image=x.npy --output out/
  logits  f32 [2, 10]  -> out/logits.npy

Each output is written to DIR/<name>.npy, the name sanitized to [A-Za-z0-9._-]. Input dtypes
and shapes must match the model's (symbolic dimensions take any size). Files are written
atomically: a failed run leaves no partial file.)EX");
  return {app, [o] { return RunRun(*o); }};
}

}  // namespace qforge::cli
