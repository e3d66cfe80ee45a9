// `qforge bench MODEL`: in-process latency and throughput of a model on random inputs; the tool
// every speed figure of this project is quoted from.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/measure.h"
#include "qforge/kernels/isa.h"
#include "qforge/runtime/session.h"

namespace qforge::cli {
namespace {

struct BenchOptions {
  std::string model;
  int64_t batch = 1;
  int threads = 0;
  std::string isa;
  int warmup = 5;
  int runs = 0;  // 0: run until min_time
  double min_time = 1.0;
  std::vector<std::string> shapes;  // name=1x3x224x224
  bool json = false;
  bool no_optimize = false;
  bool profile = false;
};

// Per-node time over the timed runs, from the Session's observer: a node's time is the time
// between the previous node's completion (or the run's start) and its own.
struct Profile {
  std::map<const ir::Node*, double> node_ms;
  std::chrono::steady_clock::time_point last;
  void Start() { last = std::chrono::steady_clock::now(); }
  void Observe(const ir::Node& n) {
    const auto now = std::chrono::steady_clock::now();
    node_ms[&n] += 1e3 * std::chrono::duration<double>(now - last).count();
    last = now;
  }
};

std::string OpName(const ir::Node& n) {
  return n.domain.empty() ? n.op_type : n.domain + "::" + n.op_type;
}

// Tables: time per op type, then the slowest nodes (per run).
void PrintProfile(const Profile& p, size_t runs, bool json, nlohmann::json* out) {
  std::map<std::string, std::pair<double, int>> by_op;
  double total = 0;
  for (const auto& [n, ms] : p.node_ms) {
    by_op[OpName(*n)].first += ms / static_cast<double>(runs);
    by_op[OpName(*n)].second += 1;
    total += ms / static_cast<double>(runs);
  }
  std::vector<std::pair<std::string, std::pair<double, int>>> ops(by_op.begin(), by_op.end());
  std::sort(ops.begin(), ops.end(),
            [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::vector<std::pair<const ir::Node*, double>> nodes(p.node_ms.begin(), p.node_ms.end());
  std::sort(nodes.begin(), nodes.end(),
            [](const auto& a, const auto& b) { return a.second > b.second; });
  if (nodes.size() > 10) nodes.resize(10);
  if (json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& [op, v] : ops)
      j.push_back({{"op", op}, {"nodes", v.second}, {"ms_per_run", v.first}});
    (*out)["profile"] = j;
    return;
  }
  Table t({"op", "nodes", "ms/run", "share"}, {false, true, true, true});
  for (const auto& [op, v] : ops)
    t.AddRow({op, std::to_string(v.second), fmt::format("{:.3f}", v.first),
              fmt::format("{:.1f}%", total > 0 ? 100.0 * v.first / total : 0.0)});
  fmt::print("\nprofile: time per op type (sum over nodes, per run)\n{}", t.ToString());
  Table s({"node", "op", "ms/run"}, {false, false, true});
  for (const auto& [n, ms] : nodes)
    s.AddRow({n->name.empty() ? n->outputs[0] : n->name, OpName(*n),
              fmt::format("{:.3f}", ms / static_cast<double>(runs))});
  fmt::print("\nslowest nodes\n{}", s.ToString());
}

// Resolves an input's concrete shape: --shape override, else declared dims with a symbolic or
// unknown first dimension set to the batch size. Any other unknown dimension is an error.
Shape ConcreteShape(const ir::ValueInfo& vi, int64_t batch,
                    const std::map<std::string, Shape>& overrides) {
  if (auto it = overrides.find(vi.name); it != overrides.end()) {
    const Shape& s = it->second;
    bool ok = !vi.has_shape || s.size() == vi.dims.size();
    for (size_t d = 0; ok && vi.has_shape && d < s.size(); ++d)
      ok = !vi.dims[d].known() || vi.dims[d].value == s[d];
    if (!ok)
      throw Error(fmt::format("--shape {}={} does not fit the model's input shape {}", vi.name,
                              fmt::join(s, "x"), DimsToString(vi)));
    return s;
  }
  if (!vi.has_shape)
    throw Error(
        fmt::format("input '{}' has no declared shape; give --shape {}=DxDx...", vi.name, vi.name));
  Shape s;
  for (size_t d = 0; d < vi.dims.size(); ++d) {
    const ir::Dim& dim = vi.dims[d];
    if (dim.known()) {
      s.push_back(dim.value);
    } else if (d == 0) {
      s.push_back(batch);
    } else {
      throw Error(
          fmt::format("input '{}' dimension {} is {} ({}); give its size with --shape {}=DxDx...",
                      vi.name, d, dim.symbol.empty() ? "unknown" : "symbolic '" + dim.symbol + "'",
                      DimsToString(vi), vi.name));
    }
  }
  return s;
}

int RunBench(const BenchOptions& o) {
  if (!o.isa.empty()) kernels::SetIsa(kernels::ParseIsa(o.isa));
  std::map<std::string, Shape> overrides;
  for (const std::string& spec : o.shapes) {
    auto [name, text] = SplitNameValue(spec, "--shape");
    overrides[name] = ParseShape(text);
  }
  ir::Graph graph = LoadModelForExecution(o.model, !o.no_optimize);
  for (const auto& [name, shape] : overrides) {
    bool found = false;
    for (const ir::ValueInfo& vi : graph.inputs) found |= vi.name == name;
    if (!found) throw Error("--shape names unknown input '" + name + "'");
  }

  std::mt19937 rng(0);
  std::map<std::string, Tensor> feeds;
  std::vector<std::string> input_text;
  for (const ir::ValueInfo& vi : graph.inputs) {
    Shape s = ConcreteShape(vi, o.batch, overrides);
    feeds[vi.name] = RandomInput(vi.dtype, s, rng);
    input_text.push_back(fmt::format("{} {} {}", vi.name, DTypeName(vi.dtype), ShapeToString(s)));
  }
  // Items per run: the first input's leading dimension (the batch).
  int64_t items = 1;
  if (!graph.inputs.empty() && feeds[graph.inputs[0].name].rank() > 0)
    items = feeds[graph.inputs[0].name].dim(0);

  runtime::SessionOptions options;
  options.threads = o.threads;
  runtime::Session session(std::move(graph), options);
  const int threads = o.threads > 0 ? o.threads : omp_get_max_threads();

  // With --runs: exactly that many. Otherwise at least 10 runs and at least --min-time seconds.
  Profile profile;
  runtime::NodeObserver observer;
  std::function<void()> before_each;
  if (o.profile) {
    observer = [&profile](const ir::Node& n, const std::vector<Tensor>&) { profile.Observe(n); };
    before_each = [&profile] { profile.Start(); };
  }
  const Timing timing =
      TimeSession(session, feeds, {o.warmup, o.runs, o.min_time}, observer, before_each);
  const std::vector<double>& ms = timing.ms;
  const double total = timing.seconds;
  const LatencyStats& s = timing.stats;
  const double throughput = static_cast<double>(items) / (s.median / 1e3);
  const std::string isa(kernels::IsaName(kernels::ActiveIsa()));

  if (o.json) {
    nlohmann::json j = {{"model", o.model},
                        {"inputs", input_text},
                        {"batch", items},
                        {"threads", threads},
                        {"isa", isa},
                        {"warmup", o.warmup},
                        {"runs", ms.size()},
                        {"seconds", total},
                        {"latency_ms",
                         {{"median", s.median},
                          {"p90", s.p90},
                          {"min", s.min},
                          {"mean", s.mean},
                          {"max", s.max},
                          {"stddev", s.stddev}}},
                        {"items_per_second", throughput},
                        {"optimized", !o.no_optimize}};
    if (o.profile) PrintProfile(profile, ms.size(), true, &j);
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  fmt::print("model    {}\n", o.model);
  fmt::print("inputs   {}\n", fmt::join(input_text, ", "));
  fmt::print("setup    batch {}, threads {}, isa {}, {} warm-up + {} timed runs in {:.2f} s\n\n",
             items, threads, isa, o.warmup, ms.size(), total);
  Table t({"median ms", "p90 ms", "min ms", "mean ms", "max ms", "items/s"},
          {true, true, true, true, true, true});
  t.AddRow({fmt::format("{:.3f}", s.median), fmt::format("{:.3f}", s.p90),
            fmt::format("{:.3f}", s.min), fmt::format("{:.3f}", s.mean),
            fmt::format("{:.3f}", s.max), fmt::format("{:.1f}", throughput)});
  std::cout << t.ToString();
  if (o.profile) PrintProfile(profile, ms.size(), false, nullptr);
  return 0;
}

}  // namespace

Command AddBenchCommand(CLI::App& root) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* app = root.add_subcommand("bench", "Measure a model's latency and throughput");
  app->add_option("MODEL", o->model, "ONNX model file")->required();
  app->add_option("--batch", o->batch, "Size of a symbolic first input dimension")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--threads", o->threads, "Threads (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--isa", o->isa, "Force the kernels' instruction set: scalar, avx2, avx512");
  app->add_option("--warmup", o->warmup, "Untimed runs first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  auto* runs =
      app->add_option("--runs", o->runs, "Exactly N timed runs")->check(CLI::PositiveNumber);
  app->add_option("--min-time", o->min_time, "Else: time runs for at least S seconds (>= 10 runs)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str()
      ->excludes(runs);
  app->add_option("--shape", o->shapes, "NAME=1x3x224x224: an input's full shape (repeat)");
  app->add_flag("--json", o->json, "Print JSON instead of text");
  app->add_flag("--no-optimize", o->no_optimize,
                "Run the graph as loaded (no BN folding, constant folding or activation fusion)");
  app->add_flag("--profile", o->profile,
                "Also print time per op type and the slowest nodes (timed runs)");
  app->footer(R"EX(Example:
  $ qforge bench models/fmnist_cnn.onnx --batch 32 --threads 1
  model    models/fmnist_cnn.onnx
  inputs   image f32 [32, 1, 28, 28]
  setup    batch 32, threads 1, isa avx2, 5 warm-up + 412 timed runs in 1.00 s

  median ms  p90 ms  min ms  mean ms  max ms  items/s
  ---------------------------------------------------
      2.401   2.512   2.371    2.425   3.010  13327.8

Inputs are random (floats uniform in [0, 1), integers 0). A symbolic first dimension is set
from --batch; other symbolic dimensions need --shape. Each timed run is one Session::Run in
this process; items/s = batch / median latency.)EX");
  return {app, [o] { return RunBench(*o); }};
}

}  // namespace qforge::cli
