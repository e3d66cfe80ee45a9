// Measurements shared by `qforge eval`, `bench`, `compare` and `analyze`: top-1 accuracy on the
// Fashion-MNIST test split, latency timing with its statistics, and in-process calibration, so
// every command that quotes a figure computes it with the same code.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "qforge/calib/calib_table.h"
#include "qforge/calib/observer.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/ir/graph.h"
#include "qforge/runtime/session.h"

namespace qforge::cli {

// ---- classification accuracy (qforge eval) ----

// The index of the largest score (the first one on ties, a NaN wins like numpy.argmax).
int64_t ArgMax(const float* scores, int64_t n);

// The shape a batch of B images takes for this input: [B,1,28,28], [B,28,28] or [B,784],
// following the input's declared rank; known dims must agree. Throws Error otherwise.
Shape ImageInputShape(const ir::ValueInfo& vi, int64_t b);

// Checks that `graph` is a 28x28-image classifier qforge can evaluate (one f32 image input, at
// least one output); throws Error naming `what` (the model file) otherwise.
void CheckImageClassifier(const ir::Graph& graph, const std::string& what);

struct EvalResult {
  std::vector<int64_t> predicted;  // one class per image, in data set order
  int64_t correct = 0;
  double seconds = 0;  // inference only (not data loading)
  int64_t batch = 0;   // images per run actually used
  double top1() const {
    return predicted.empty() ? 0.0
                             : static_cast<double>(correct) / static_cast<double>(predicted.size());
  }
};

// Runs `session` (whose graph passed CheckImageClassifier) over `test` in batches of `batch`
// images (a model with a fixed batch dimension gets exactly that many; the last batch is then
// zero-padded and the padding ignored) and counts argmax(first output) == label. The output
// must be f32 [B, 10]. `progress` labels a stderr progress bar ("" for none).
EvalResult EvaluateClassifier(runtime::Session& session, const data::LabeledImages& test,
                              int64_t batch, const std::string& progress);

// ---- latency (qforge bench) ----

struct LatencyStats {
  double median = 0, p90 = 0, min = 0, max = 0, mean = 0, stddev = 0;  // ms
};

// Latencies in ms. median: mean of the middle two for an even count; p90: nearest rank
// (the ceil(0.9 n)-th smallest). `ms` must not be empty.
LatencyStats SummarizeLatencies(std::vector<double> ms);

struct TimingOptions {
  int warmup = 5;
  int runs = 0;           // exactly this many timed runs; 0: run until min_time
  double min_time = 1.0;  // else at least 10 runs and at least this many seconds
};

struct Timing {
  std::vector<double> ms;  // one per timed run
  double seconds = 0;      // wall time of the timed runs
  LatencyStats stats;
};

// Runs session.Run(feeds, observer) warmup times untimed, then times runs as `options` says.
// `before_each` (may be empty) is called right before each timed run (bench --profile).
Timing TimeSession(runtime::Session& session, const std::map<std::string, Tensor>& feeds,
                   const TimingOptions& options, const runtime::NodeObserver& observer = nullptr,
                   const std::function<void()>& before_each = nullptr);

// A random input for timing: floats uniform in [0, 1) (a valid image, a valid probability) drawn
// from `rng`; integers and bools zero (a valid index into anything).
Tensor RandomInput(DType dtype, const Shape& shape, std::mt19937& rng);

// ---- calibration (qforge calibrate, Fashion-MNIST source) ----

// A seeded shuffle of 0..n-1 (Fisher-Yates on mt19937_64, whose output the C++ standard fixes;
// the bounded draw is our own, so the order is the same with every standard library).
std::vector<int64_t> Permutation(int64_t n, uint64_t seed);

// What `qforge calibrate MODEL --data fashion-mnist --samples N --batch B --seed S --method M`
// computes, in process: the model as loaded (no pipeline) is run over the first `samples`
// images of the seeded shuffle of the training split (batches of `batch`, a fixed model batch
// wins and the sample count is rounded down to a multiple of it) and every f32 tensor observed.
// The table's model / data / seed are filled in as the command does.
calib::CalibTable CalibrateFashionMnist(const ir::Graph& model, const std::string& model_path,
                                        const std::string& data_dir, int64_t samples, int64_t batch,
                                        uint64_t seed, const calib::ObserverConfig& config,
                                        int threads, const std::string& progress);

}  // namespace qforge::cli
