// The method comparison behind `qforge compare` (and the table of `qforge analyze --html`): each
// quantization method is a plug-in that turns the fp32 model into a model file; every file is
// then measured the same way (file size, accuracy, agreement with fp32, latency, throughput).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/measure.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/ir/graph.h"

namespace qforge::cli {

struct CompareOptions {
  std::string model;  // fp32 ONNX model
  std::string data_dir = std::string(data::kFashionMnistDir);
  std::vector<std::string> methods = {"fp32", "dynamic", "static", "qat"};
  // static: the calibration `qforge calibrate --data fashion-mnist` does with these settings.
  int64_t calib_samples = 1000;
  std::string calib_method = "minmax";
  int64_t calib_batch = 32;
  uint64_t seed = 0;
  int qat_epochs = 1;
  int64_t qat_limit = 10000;  // qat: training images per epoch (a short demo; 60000: all)
  int64_t batch_large = 32;   // the larger latency batch
  int64_t eval_batch = 64;    // images per run for accuracy (as `qforge eval --batch`)
  int64_t limit = -1;         // evaluate only the first N test images (-1: all)
  TimingOptions timing = {5, 0, 0.5};
  bool latency = true;   // false: skip the latency measurements (accuracy / size only)
  std::string keep_dir;  // write the method files here and keep them (default: a temp dir)
  bool progress = true;  // one line per step on stderr
};

// One latency measurement of a method's model file (random inputs, as `qforge bench`).
struct LatencyCell {
  int64_t batch = 1;
  int threads = 1;
  int runs = 0;
  LatencyStats stats;
};

struct MethodRow {
  std::string method;
  bool available = true;
  std::string reason;                        // why the method is not available
  std::string description;                   // the scheme in a few words
  std::string weight_bits, activation_bits;  // "32" (float), "8", "4", "8 (dynamic)" ...
  std::string file;                          // the model file measured
  int64_t bytes = 0;
  double size_ratio = 0;             // bytes / fp32 bytes
  std::vector<LatencyCell> latency;  // batch 1 x {1, all} threads, batch L x {1, all} threads
  double throughput = 0;             // images/s at batch L, all threads (batch / median)
  int64_t images = 0;                // test images evaluated
  double top1 = 0;                   // fraction
  double delta_points = 0;           // (top1 - fp32 top1) * 100
  double agreement = 0;              // fraction of images whose class equals fp32's
  double quantize_seconds = 0;       // calibration + quantization (+ training) + writing
};

struct CompareResult {
  std::vector<MethodRow> rows;
  int all_threads = 1;
  std::string isa;
};

// The methods compare knows, in display order, and whether each is built in.
std::vector<std::string> KnownMethods();

// Runs the methods in options.methods (fp32 is always measured first, as the reference, and
// shown only if asked for). Throws Error for an unknown method name or a model qforge cannot
// evaluate; a known method that is not built in gives a row with available = false.
CompareResult RunCompare(const CompareOptions& options);

// The result as a text table ("table"), GitHub markdown ("markdown"), CSV ("csv") or JSON
// ("json"); throws Error for another format.
std::string FormatCompare(const CompareResult& r, const CompareOptions& o,
                          const std::string& format);
nlohmann::json CompareToJson(const CompareResult& r, const CompareOptions& o);

}  // namespace qforge::cli
