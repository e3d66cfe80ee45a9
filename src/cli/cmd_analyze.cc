// `qforge analyze MODEL --data fashion-mnist`: which layer hurts? Per-layer quantization error,
// sensitivity (accuracy with only that layer quantized), activation histograms with clipping
// ranges, and a verified recommendation of layers to keep in fp32; optionally an HTML report.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/measure.h"
#include "cli/report_analysis.h"
#include "cli/report_compare.h"
#include "cli/report_html.h"
#include "qforge/kernels/isa.h"
#include "qforge/passes/quantize.h"

namespace qforge::cli {
namespace {

struct AnalyzeOptions {
  std::string model;
  std::string data;
  std::string data_dir = std::string(data::kFashionMnistDir);
  std::string calib;  // an existing table instead of calibrating
  int64_t calib_samples = 1000;
  std::string calib_method = "minmax";
  int64_t error_samples = 256;
  int64_t limit = -1;
  int64_t eval_batch = 64;
  double budget = 0.5;
  int hist_bins = 64;
  std::string html;
  std::string methods = "fp32,static";  // the HTML report's method table
  double min_time = 0.5;
  bool no_latency = false;
  bool json = false;
};

// Non-finite numbers as strings in JSON ("inf", "-inf", "nan"), as `quantize --json` does.
nlohmann::json Num(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? nlohmann::json("nan") : nlohmann::json(v > 0 ? "inf" : "-inf");
}

// The first `samples` training images in batches, for the activation error statistics (as
// `qforge quantize --data fashion-mnist --samples N`).
std::vector<std::map<std::string, Tensor>> ErrorBatches(const AnalyzeOptions& o,
                                                        const ir::Graph& g) {
  const data::LabeledImages train =
      data::LoadFashionMnist(data::Split::kTrain, o.data_dir, o.error_samples);
  std::vector<std::map<std::string, Tensor>> batches;
  data::BatchIterator it(train, 64);
  for (data::Batch b; it.Next(b);)
    batches.push_back(
        {{g.inputs[0].name, b.images.Reshaped(ImageInputShape(g.inputs[0], b.size()))}});
  return batches;
}

int RunAnalyze(const AnalyzeOptions& o) {
  if (o.data != "fashion-mnist")
    throw Error("unknown data set '" + o.data + "' (supported: fashion-mnist)");
  if (!(o.budget >= 0)) throw Error("--budget must be >= 0 points");
  if (!o.html.empty()) CheckHtmlReportAvailable();
  auto say = [](const std::string& s) { fmt::print(stderr, "analyze: {}\n", s); };

  const ir::Graph model = LoadModelFile(o.model);
  CheckImageClassifier(PrepareForExecution(model), o.model);
  const data::LabeledImages test = data::LoadFashionMnist(data::Split::kTest, o.data_dir, o.limit);
  if (test.size() == 0) throw Error("no test images to evaluate (--limit 0?)");

  // Calibration: the table quantization uses, and one with histograms for the report.
  calib::ObserverConfig config;
  config.method = calib::ParseMethod(o.calib_method);
  calib::CalibTable table;
  if (!o.calib.empty()) {
    table = calib::LoadCalibTable(o.calib);
  } else {
    say(fmt::format("calibrating ({}, {} training images)", o.calib_method, o.calib_samples));
    table = CalibrateFashionMnist(model, o.model, o.data_dir, o.calib_samples, 32, 0, config, 0,
                                  "calibrate");
  }
  calib::CalibTable hist_table = table;
  const bool has_hist = std::any_of(table.entries.begin(), table.entries.end(),
                                    [](const auto& e) { return !e.second.histogram.empty(); });
  if (!has_hist) {
    say("observing histograms (percentile observer, for the report only)");
    calib::ObserverConfig hc;
    hc.method = calib::Method::kPercentile;
    hist_table = CalibrateFashionMnist(model, o.model, o.data_dir, o.calib_samples, 32, 0, hc, 0,
                                       "histograms");
  }

  passes::QuantizeOptions qo;
  qo.target = passes::FindTargetProfile(std::string(kernels::IsaName(kernels::ActiveIsa()))).name;

  // Per-tensor errors of the full static quantization.
  say("measuring per-tensor errors");
  passes::QuantizeResult full = passes::QuantizeStatic(model, table, qo);
  {
    ir::Graph reference = model;
    passes::RunInferencePipeline(reference);
    passes::MeasureActivationErrors(reference, full, ErrorBatches(o, model));
  }
  std::vector<const passes::QuantizedTensorInfo*> errors;
  for (const auto& t : full.tensors)
    if (t.error.count > 0) errors.push_back(&t);
  std::stable_sort(errors.begin(), errors.end(), [](const auto* a, const auto* b) {
    return a->error.sqnr_db < b->error.sqnr_db;
  });

  say(fmt::format("fp32 accuracy on {} test images", test.size()));
  EvalResult fp32;
  {
    runtime::Session session(PrepareForExecution(model), {});
    fp32 = EvaluateClassifier(session, test, o.eval_batch, "fp32");
  }
  const SensitivityResult s =
      AnalyzeSensitivity(model, table, qo, test, fp32, o.eval_batch, o.budget, "analyze");
  const std::vector<ActivationHistogram> hists =
      ActivationHistograms(full, table, hist_table, o.hist_bins);

  // The analysis as JSON (for --json and the HTML report).
  nlohmann::json j;
  j["model"] = o.model;
  j["calibration"] = {{"method", table.method}, {"samples", table.samples}, {"data", table.data}};
  j["summary"] = {{"images", s.images},
                  {"fp32_top1", s.fp32_top1},
                  {"static_top1", s.static_top1},
                  {"budget", s.budget},
                  {"recommended", s.recommended},
                  {"recommended_top1", s.recommended_top1},
                  {"within_budget", s.within_budget}};
  const nlohmann::json sj = SensitivityToJson(s);
  j["sensitivity"] = sj["sensitivity"];
  j["steps"] = sj["steps"];
  j["errors"] = nlohmann::json::array();
  for (const auto* t : errors) {
    const bool w = t->kind == passes::QuantizedTensorInfo::Kind::kWeight;
    j["errors"].push_back({{"tensor", t->tensor},
                           {"kind", w ? "weight" : "activation"},
                           {"node", t->node},
                           {"count", t->error.count},
                           {"bias", Num(t->error.bias)},
                           {"std", Num(t->error.std)},
                           {"sqnr_db", Num(t->error.sqnr_db)},
                           {"cosine", Num(t->error.cosine)}});
  }
  j["histograms"] = nlohmann::json::array();
  for (const auto& h : hists)
    j["histograms"].push_back({{"tensor", h.tensor},
                               {"observer", h.observer},
                               {"lo", h.lo},
                               {"width", h.width},
                               {"counts", h.counts},
                               {"min", h.min},
                               {"max", h.max},
                               {"range_min", h.range_min},
                               {"range_max", h.range_max},
                               {"clipped", h.clipped}});

  if (!o.html.empty()) {
    HtmlReport report;
    report.title = "qforge analyze: " + o.model;
    report.analysis = j;
    CompareOptions co;
    co.model = o.model;
    co.data_dir = o.data_dir;
    co.methods.clear();
    for (size_t start = 0; start <= o.methods.size();) {
      size_t comma = std::min(o.methods.find(',', start), o.methods.size());
      if (comma > start) co.methods.push_back(o.methods.substr(start, comma - start));
      start = comma + 1;
    }
    co.calib_samples = o.calib_samples;
    co.calib_method = o.calib_method;
    co.limit = o.limit;
    co.eval_batch = o.eval_batch;
    co.timing.min_time = o.min_time;
    co.latency = !o.no_latency;
    if (!co.methods.empty()) {
      say("comparing methods for the report: " + o.methods);
      report.compare = CompareToJson(RunCompare(co), co);
    }
    WriteHtmlReport(report, o.html);
    say("wrote " + o.html);
  }
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  fmt::print(
      "model {}: fp32 top-1 {:.2f}%, static int8 (every layer) {:.2f}% ({:+.2f} points) "
      "on {} fashion-mnist test images\n",
      o.model, 100 * s.fp32_top1, 100 * s.static_top1, 100 * (s.static_top1 - s.fp32_top1),
      s.images);
  fmt::print("calibration: {} on {} samples ({})\n", table.method, table.samples, table.data);

  fmt::print("\nsensitivity: top-1 with only that layer quantized (worst first)\n");
  Table st({"layer", "op", "top-1 %", "drop pts", "agree %"}, {false, false, true, true, true});
  for (const auto& l : s.layers)
    st.AddRow({l.node, l.op, fmt::format("{:.2f}", 100 * l.top1),
               fmt::format("{:.2f}", 100 * (s.fp32_top1 - l.top1)),
               fmt::format("{:.2f}", 100 * l.agreement)});
  std::cout << st.ToString();

  fmt::print(
      "\nper-tensor error (worst SQNR first; e = quantized - fp32; activations on {} "
      "training images)\n",
      o.error_samples);
  Table et({"tensor", "kind", "node", "bias", "std", "SQNR dB", "cosine"},
           {false, false, false, true, true, true, true});
  for (const auto* t : errors)
    et.AddRow({t->tensor,
               t->kind == passes::QuantizedTensorInfo::Kind::kWeight ? "weight" : "activation",
               t->node, fmt::format("{:.3g}", t->error.bias), fmt::format("{:.3g}", t->error.std),
               Db(t->error.sqnr_db), fmt::format("{:.5f}", t->error.cosine)});
  std::cout << et.ToString();

  fmt::print("\nactivation ranges (the clipping range each observer chose)\n");
  Table rt({"tensor", "observer", "min", "max", "range min", "range max", "clipped %"},
           {false, false, true, true, true, true, true});
  for (const auto& h : hists)
    rt.AddRow({h.tensor, h.observer, fmt::format("{:.5g}", h.min), fmt::format("{:.5g}", h.max),
               fmt::format("{:.5g}", h.range_min), fmt::format("{:.5g}", h.range_max),
               fmt::format("{:.3f}", 100 * h.clipped)});
  std::cout << rt.ToString();

  fmt::print("\nrecommendation (budget {:.2f} points; each step quantized and measured)\n",
             s.budget);
  Table gt({"step", "kept in fp32", "top-1 %", "delta pts"}, {true, false, true, true});
  for (size_t i = 0; i < s.steps.size(); ++i)
    gt.AddRow({std::to_string(i),
               s.steps[i].excluded.empty()
                   ? "(none)"
                   : fmt::format("{}", fmt::join(s.steps[i].excluded, ", ")),
               fmt::format("{:.2f}", 100 * s.steps[i].top1),
               fmt::format("{:+.2f}", 100 * (s.steps[i].top1 - s.fp32_top1))});
  std::cout << gt.ToString();
  if (s.recommended.empty())
    fmt::print("every layer can stay int8: accuracy is within the budget\n");
  else if (s.within_budget)
    fmt::print(
        "keep {} in fp32: top-1 {:.2f}% ({:+.2f} points)\n  apply: qforge quantize {} "
        "--method static --calib CALIB --exclude {}   (or --auto-exclude --budget {})\n",
        fmt::join(s.recommended, ", "), 100 * s.recommended_top1,
        100 * (s.recommended_top1 - s.fp32_top1), o.model, fmt::join(s.recommended, " "), s.budget);
  else
    fmt::print("the budget is not reached even with every layer in fp32\n");
  return 0;
}

}  // namespace

Command AddAnalyzeCommand(CLI::App& root) {
  auto o = std::make_shared<AnalyzeOptions>();
  CLI::App* app = root.add_subcommand(
      "analyze", "Which layer hurts: per-layer error, sensitivity, ranges, fp32 recommendation");
  app->add_option("MODEL", o->model, "fp32 ONNX model (an image classifier)")->required();
  app->add_option("--data", o->data, "Data set: fashion-mnist")->required();
  app->add_option("--data-dir", o->data_dir, "Where the data set's IDX files are")
      ->capture_default_str();
  app->add_option("--calib", o->calib, "Use this calibration table instead of calibrating");
  app->add_option("--calib-samples", o->calib_samples, "Calibration images (training split)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--calib-method", o->calib_method,
                  "Observer (minmax, moving_average, percentile, entropy, mse)")
      ->check(CLI::IsMember({"minmax", "moving_average", "percentile", "entropy", "mse"}))
      ->capture_default_str();
  app->add_option("--error-samples", o->error_samples,
                  "Training images for the activation error statistics")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--limit", o->limit, "Evaluate accuracy on the first N test images only")
      ->check(CLI::PositiveNumber);
  app->add_option("--eval-batch", o->eval_batch, "Images per run for accuracy")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--budget", o->budget, "Accuracy budget in points of top-1 below fp32")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--hist-bins", o->hist_bins, "Bins per histogram in the report")
      ->check(CLI::Range(8, 512))
      ->capture_default_str();
  app->add_option("--html", o->html, "Write a self-contained HTML report to FILE");
  app->add_option("--methods", o->methods, "--html: the methods of the report's table")
      ->capture_default_str();
  app->add_option("--min-time", o->min_time, "--html: seconds per latency cell")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_flag("--no-latency", o->no_latency, "--html: no latency measurements");
  app->add_flag("--json", o->json, "Print JSON instead of tables");
  app->footer(R"EX(Example:
  $ qforge analyze models/fmnist_cnn.onnx --data fashion-mnist --budget 0.5 --html report.html

Calibrates like 'qforge calibrate' (or takes --calib), quantizes like 'qforge quantize --method
static' and evaluates like 'qforge eval'. Sensitivity of a layer = top-1 accuracy when only that
layer is quantized (every other layer passed to --exclude). The recommendation keeps the most
sensitive layers in fp32, one at a time, re-quantizing and measuring each time, until top-1 is
within --budget points of fp32; 'qforge quantize --auto-exclude --budget B' applies it. Progress
goes to stderr. See docs/report.md.)EX");
  return {app, [o] { return RunAnalyze(*o); }};
}

}  // namespace qforge::cli
