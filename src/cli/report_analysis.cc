// Per-layer analysis: sensitivity by single-layer quantization, greedy fp32 exclusions, histograms.
#include "cli/report_analysis.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "cli/common.h"
#include "qforge/onnx/qf_file.h"

namespace qforge::cli {
namespace {

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

double Agreement(const EvalResult& a, const EvalResult& ref) {
  int64_t same = 0;
  for (size_t i = 0; i < a.predicted.size() && i < ref.predicted.size(); ++i)
    same += a.predicted[i] == ref.predicted[i];
  return a.predicted.empty() ? 0.0
                             : static_cast<double>(same) / static_cast<double>(a.predicted.size());
}

}  // namespace

EvalResult EvaluateQuantized(const passes::QuantizeResult& r, const data::LabeledImages& test,
                             int64_t batch, int threads) {
  // The same steps as `qforge quantize -o x.qf` followed by `qforge eval x.qf`.
  ir::Graph lowered = r.graph;
  passes::LowerQdqToInteger(lowered);
  ir::Graph graph = PrepareForExecution(onnx_io::LoadQfFromBytes(onnx_io::SaveQfToBytes(lowered)));
  runtime::SessionOptions so;
  so.threads = threads;
  runtime::Session session(std::move(graph), so);
  return EvaluateClassifier(session, test, batch, "");
}

std::vector<passes::NodeDecision> QuantizedLayers(const passes::QuantizeResult& r) {
  std::vector<passes::NodeDecision> layers;
  for (const passes::NodeDecision& d : r.nodes)
    if (d.quantized && !StartsWith(d.reason, "absorbed") && !StartsWith(d.reason, "pass-through"))
      layers.push_back(d);
  return layers;
}

SensitivityResult AnalyzeSensitivity(const ir::Graph& model, const calib::CalibTable& table,
                                     const passes::QuantizeOptions& options,
                                     const data::LabeledImages& test, const EvalResult& fp32_eval,
                                     int64_t eval_batch, double budget_points,
                                     const std::string& progress) {
  auto say = [&](const std::string& text) {
    if (!progress.empty()) fmt::print(stderr, "{}: {}\n", progress, text);
  };
  SensitivityResult s;
  s.budget = budget_points;
  s.fp32_top1 = fp32_eval.top1();
  s.images = static_cast<int64_t>(fp32_eval.predicted.size());
  auto quantize_without = [&](const std::vector<std::string>& extra) {
    passes::QuantizeOptions qo = options;
    qo.exclude.insert(qo.exclude.end(), extra.begin(), extra.end());
    return passes::QuantizeStatic(model, table, qo);
  };

  const passes::QuantizeResult full = quantize_without({});
  const std::vector<passes::NodeDecision> layers = QuantizedLayers(full);
  say(fmt::format("all {} layers quantized", layers.size()));
  s.static_top1 = EvaluateQuantized(full, test, eval_batch).top1();

  for (size_t i = 0; i < layers.size(); ++i) {
    say(fmt::format("sensitivity {}/{}: only '{}' quantized", i + 1, layers.size(),
                    layers[i].node));
    std::vector<std::string> others;
    for (size_t k = 0; k < layers.size(); ++k)
      if (k != i) others.push_back(layers[k].node);
    const EvalResult e = EvaluateQuantized(quantize_without(others), test, eval_batch);
    s.layers.push_back({layers[i].node, layers[i].op_type, e.top1(), Agreement(e, fp32_eval)});
  }
  // Worst first; equal accuracy keeps graph order.
  std::stable_sort(s.layers.begin(), s.layers.end(),
                   [](const auto& a, const auto& b) { return a.top1 < b.top1; });

  // Greedy: keep the most sensitive layers in fp32 until within budget, measuring each step.
  const double budget = budget_points / 100.0;
  s.steps.push_back({{}, s.static_top1});
  std::vector<std::string> excluded;
  for (size_t i = 0; i < s.layers.size() && s.fp32_top1 - s.steps.back().top1 > budget; ++i) {
    excluded.push_back(s.layers[i].node);
    say(fmt::format("keeping {} in fp32", fmt::join(excluded, ", ")));
    s.steps.push_back(
        {excluded, EvaluateQuantized(quantize_without(excluded), test, eval_batch).top1()});
  }
  s.recommended = s.steps.back().excluded;
  s.recommended_top1 = s.steps.back().top1;
  s.within_budget = s.fp32_top1 - s.recommended_top1 <= budget;
  return s;
}

std::vector<ActivationHistogram> ActivationHistograms(const passes::QuantizeResult& r,
                                                      const calib::CalibTable& table,
                                                      const calib::CalibTable& hist_table,
                                                      int bins) {
  std::vector<ActivationHistogram> out;
  for (const passes::QuantizedTensorInfo& t : r.tensors) {
    if (t.kind != passes::QuantizedTensorInfo::Kind::kActivation) continue;
    const calib::CalibEntry* e = table.Find(t.tensor);
    const calib::CalibEntry* h = hist_table.Find(t.tensor);
    if (!e || !h || h->histogram.empty()) continue;
    const calib::Histogram& src = h->histogram;
    const size_t n = src.counts.size();
    const size_t group = (n + static_cast<size_t>(bins) - 1) / static_cast<size_t>(bins);
    ActivationHistogram a;
    a.tensor = t.tensor;
    a.observer = e->observer;
    a.width = src.bin_width * static_cast<double>(group);
    a.lo = static_cast<double>(src.first_bin) * src.bin_width;
    a.min = e->stats.min;
    a.max = e->stats.max;
    a.range_min = e->range_min;
    a.range_max = e->range_max;
    int64_t total = 0, clipped = 0;
    for (size_t k = 0; k < n; ++k) {
      if (k % group == 0) a.counts.push_back(0);
      a.counts.back() += src.counts[k];
      const double center =
          (static_cast<double>(src.first_bin + static_cast<int64_t>(k)) + 0.5) * src.bin_width;
      total += src.counts[k];
      if (center < e->range_min || center > e->range_max) clipped += src.counts[k];
    }
    a.clipped = total > 0 ? static_cast<double>(clipped) / static_cast<double>(total) : 0.0;
    out.push_back(std::move(a));
  }
  return out;
}

nlohmann::json SensitivityToJson(const SensitivityResult& s) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : s.layers)
    layers.push_back(
        {{"node", l.node}, {"op", l.op}, {"top1", l.top1}, {"agreement", l.agreement}});
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& st : s.steps) steps.push_back({{"excluded", st.excluded}, {"top1", st.top1}});
  return {{"fp32_top1", s.fp32_top1},
          {"static_top1", s.static_top1},
          {"images", s.images},
          {"budget", s.budget},
          {"sensitivity", layers},
          {"steps", steps},
          {"recommended", s.recommended},
          {"recommended_top1", s.recommended_top1},
          {"within_budget", s.within_budget}};
}

}  // namespace qforge::cli
