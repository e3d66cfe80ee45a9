// The per-layer analysis behind `qforge analyze` and `qforge quantize --auto-exclude`: the error
// of each quantized tensor, each layer's sensitivity (accuracy with only that layer quantized),
// the activation histograms with their clipping ranges, and the greedy choice of layers to keep
// in fp32 so that accuracy stays within a budget of fp32, verified by measuring.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/measure.h"
#include "qforge/calib/calib_table.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/passes/quantize.h"

namespace qforge::cli {

// Top-1 accuracy of a static quantization result as qforge runs it: the QDQ graph is lowered to
// integer ops, stored and reloaded as a .qf file would be (in memory), prepared like
// LoadModelForExecution, and evaluated like `qforge eval`.
EvalResult EvaluateQuantized(const passes::QuantizeResult& r, const data::LabeledImages& test,
                             int64_t batch, int threads = 0);

// The "layers" of a quantization: nodes quantized on their own account (compute ops), not the
// Relu/Clip they absorb nor pass-through ops (MaxPool, Reshape, ...) that follow their producer.
std::vector<passes::NodeDecision> QuantizedLayers(const passes::QuantizeResult& r);

struct LayerSensitivity {
  std::string node, op;
  double top1 = 0;       // accuracy with only this layer quantized
  double agreement = 0;  // share of images classified as fp32 classifies them
};

struct ExclusionStep {
  std::vector<std::string> excluded;  // layers kept in fp32 (besides options.exclude)
  double top1 = 0;
};

struct SensitivityResult {
  double fp32_top1 = 0;
  double static_top1 = 0;  // every layer quantized (options.exclude still applied)
  int64_t images = 0;
  std::vector<LayerSensitivity> layers;  // worst (lowest accuracy) first
  std::vector<ExclusionStep> steps;      // steps[0]: nothing extra excluded
  std::vector<std::string> recommended;  // the last step's exclusions
  double recommended_top1 = 0;
  bool within_budget = false;
  double budget = 0;  // points
};

// Sensitivity of every layer of QuantizeStatic(model, table, options): quantizes with every other
// layer in `exclude` and measures accuracy on `test`; then, starting from the full quantization,
// excludes the most sensitive layers one at a time (re-quantizing and measuring each time) until
// top-1 is within `budget_points` of fp32 or every layer is excluded. `fp32_predicted` are the
// fp32 model's classes for `test` (agreement). `progress` prefixes stderr lines ("" for none).
SensitivityResult AnalyzeSensitivity(const ir::Graph& model, const calib::CalibTable& table,
                                     const passes::QuantizeOptions& options,
                                     const data::LabeledImages& test, const EvalResult& fp32_eval,
                                     int64_t eval_batch, double budget_points,
                                     const std::string& progress);

// One activation's histogram for the report, reduced to at most `bins` bins.
struct ActivationHistogram {
  std::string tensor, observer;
  double lo = 0, width = 0;  // bin k covers [lo + k * width, lo + (k + 1) * width)
  std::vector<int64_t> counts;
  double min = 0, max = 0;              // data extremes
  double range_min = 0, range_max = 0;  // the range the quantizer used
  double clipped = 0;                   // share of values in bins outside the range
};

// Histograms of the quantized activations of `r`: counts from `hist_table` (a histogram
// observer's table), ranges from `table` (the one quantized with).
std::vector<ActivationHistogram> ActivationHistograms(const passes::QuantizeResult& r,
                                                      const calib::CalibTable& table,
                                                      const calib::CalibTable& hist_table,
                                                      int bins);

nlohmann::json SensitivityToJson(const SensitivityResult& s);

}  // namespace qforge::cli
