// Shared measurements: accuracy (eval), latency (bench) and in-process calibration.
#include "cli/measure.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <random>

#include "cli/common.h"
#include "qforge/calib/calibrator.h"
#include "qforge/data/idx.h"

namespace qforge::cli {

int64_t ArgMax(const float* scores, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(scores[i])) return i;
    if (scores[i] > scores[best]) best = i;
  }
  return best;
}

Shape ImageInputShape(const ir::ValueInfo& vi, int64_t b) {
  if (vi.dtype != DType::kF32)
    throw Error(fmt::format("eval feeds f32 images, but model input '{}' is {}", vi.name,
                            DTypeName(vi.dtype)));
  Shape shape = {b, 1, 28, 28};
  if (vi.has_shape && vi.dims.size() == 3) shape = {b, 28, 28};
  if (vi.has_shape && vi.dims.size() == 2) shape = {b, 784};
  bool ok = !vi.has_shape || vi.dims.size() == shape.size();
  for (size_t d = 1; ok && d < shape.size(); ++d)
    ok = !vi.dims[d].known() || vi.dims[d].value == shape[d];
  if (!ok)
    throw Error(
        fmt::format("model input '{}' has shape {}, which does not take 28x28 images "
                    "([N, 1, 28, 28], [N, 28, 28] or [N, 784])",
                    vi.name, DimsToString(vi)));
  return shape;
}

void CheckImageClassifier(const ir::Graph& graph, const std::string& what) {
  if (graph.inputs.size() != 1)
    throw Error(
        fmt::format("eval needs a model with one input, '{}' has {}", what, graph.inputs.size()));
  if (graph.outputs.empty()) throw Error("model '" + what + "' has no outputs");
  ImageInputShape(graph.inputs[0], 1);
}

EvalResult EvaluateClassifier(runtime::Session& session, const data::LabeledImages& test,
                              int64_t batch, const std::string& progress) {
  const ir::ValueInfo input = session.graph().inputs.at(0);
  const std::string output = session.graph().outputs.at(0).name;
  const bool fixed_batch = input.has_shape && !input.dims.empty() && input.dims[0].known();
  if (fixed_batch) batch = input.dims[0].value;
  if (batch < 1) throw Error("model input '" + input.name + "' has batch dimension 0");

  EvalResult r;
  r.batch = batch;
  data::BatchIterator it(test, batch);
  ProgressBar bar(progress, it.num_items());
  r.predicted.reserve(it.num_items());
  const auto start = std::chrono::steady_clock::now();
  for (data::Batch b; it.Next(b);) {
    Tensor images = b.images;
    if (fixed_batch && b.size() < batch) {
      images = Tensor(DType::kF32, {batch, 1, 28, 28});
      std::copy_n(b.images.data<float>(), b.images.numel(), images.data<float>());
    }
    images = images.Reshaped(ImageInputShape(input, images.dim(0)));
    const auto results = session.Run({{input.name, images}});
    const Tensor& scores = results.at(output);
    if (scores.dtype() != DType::kF32 || scores.rank() != 2 || scores.dim(0) != images.dim(0) ||
        scores.dim(1) != 10)
      throw Error(fmt::format("eval expects output '{}' to be f32 [{}, 10] class scores, got {} {}",
                              output, images.dim(0), DTypeName(scores.dtype()),
                              ShapeToString(scores.shape())));
    const float* s = scores.data<float>();
    const int64_t* labels = b.labels.data<int64_t>();
    for (int64_t i = 0; i < b.size(); ++i) {
      const int64_t p = ArgMax(s + i * 10, 10);
      r.predicted.push_back(p);
      r.correct += p == labels[i];
    }
    if (!progress.empty()) bar.Update(b.offset + b.size());
  }
  r.seconds = SecondsSince(start);
  bar.Finish();
  return r;
}

LatencyStats SummarizeLatencies(std::vector<double> ms) {
  if (ms.empty()) throw Error("no timed runs to summarize");
  std::sort(ms.begin(), ms.end());
  const size_t n = ms.size();
  LatencyStats s;
  s.median = n % 2 ? ms[n / 2] : 0.5 * (ms[n / 2 - 1] + ms[n / 2]);
  s.p90 = ms[static_cast<size_t>(std::ceil(0.9 * static_cast<double>(n))) - 1];
  s.min = ms.front();
  s.max = ms.back();
  s.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(n);
  double var = 0;
  for (double v : ms) var += (v - s.mean) * (v - s.mean);
  s.stddev = n > 1 ? std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
  return s;
}

Timing TimeSession(runtime::Session& session, const std::map<std::string, Tensor>& feeds,
                   const TimingOptions& o, const runtime::NodeObserver& observer,
                   const std::function<void()>& before_each) {
  for (int i = 0; i < o.warmup; ++i) session.Run(feeds);
  Timing t;
  const auto start = std::chrono::steady_clock::now();
  // With runs: exactly that many. Otherwise at least 10 runs and at least min_time seconds.
  while (o.runs > 0 ? static_cast<int>(t.ms.size()) < o.runs
                    : (t.ms.size() < 10 || SecondsSince(start) < o.min_time)) {
    const auto t0 = std::chrono::steady_clock::now();
    if (before_each) before_each();
    session.Run(feeds, observer);
    t.ms.push_back(1e3 * SecondsSince(t0));
  }
  t.seconds = SecondsSince(start);
  t.stats = SummarizeLatencies(t.ms);
  return t;
}

Tensor RandomInput(DType dtype, const Shape& shape, std::mt19937& rng) {
  if (!IsStorable(dtype))
    throw Error(fmt::format("cannot make a random input of dtype {}", DTypeName(dtype)));
  Tensor t(dtype, shape);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  if (dtype == DType::kF32)
    for (float& v : t.span<float>()) v = u(rng);
  if (dtype == DType::kF64)
    for (double& v : t.span<double>()) v = u(rng);
  return t;
}

std::vector<int64_t> Permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(
        (static_cast<unsigned __int128>(rng()) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(p[i], p[j]);
  }
  return p;
}

calib::CalibTable CalibrateFashionMnist(const ir::Graph& model, const std::string& model_path,
                                        const std::string& data_dir, int64_t samples, int64_t batch,
                                        uint64_t seed, const calib::ObserverConfig& config,
                                        int threads, const std::string& progress) {
  namespace fs = std::filesystem;
  config.Check();
  CheckImageClassifier(model, model_path);
  const ir::ValueInfo vi = model.inputs[0];
  if (vi.has_shape && !vi.dims.empty() && vi.dims[0].known()) batch = vi.dims[0].value;
  if (batch < 1) throw Error("model input has batch dimension 0");
  std::string path = (fs::path(data_dir) / "train-images-idx3-ubyte.gz").string();
  if (!fs::exists(path)) path = (fs::path(data_dir) / "train-images-idx3-ubyte").string();
  if (!fs::exists(path))
    throw Error("dataset-fashion-mnist not installed: run scripts/setup.sh (" + path +
                "[.gz] missing)");
  const Tensor images = data::ReadIdx(path);
  if (images.dtype() != DType::kU8 || images.rank() != 3 || images.dim(1) != 28 ||
      images.dim(2) != 28)
    throw Error("'" + path + "' does not hold u8 28x28 images");
  int64_t n = std::min(samples, images.dim(0));
  const bool fixed_batch = vi.has_shape && !vi.dims.empty() && vi.dims[0].known();
  if (fixed_batch) n = n / batch * batch;
  if (n <= 0) throw Error("no calibration samples to run (--calib-samples 0?)");
  const std::vector<int64_t> order = Permutation(images.dim(0), seed);

  runtime::SessionOptions so;
  so.threads = threads;
  runtime::Session session(model, so);
  calib::Calibrator calibrator(session, config);
  ProgressBar bar(progress, n);
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t b1 = std::min(n, b0 + batch);
    Tensor t(DType::kF32, ImageInputShape(vi, b1 - b0));
    float* dst = t.data<float>();
    for (int64_t i = b0; i < b1; ++i) {
      const uint8_t* src = images.data<uint8_t>() + order[i] * 784;
      for (int k = 0; k < 784; ++k) *dst++ = static_cast<float>(src[k]) / 255.0f;
    }
    calibrator.Run({{vi.name, t}}, b1 - b0);
    if (!progress.empty()) bar.Update(b1);
  }
  bar.Finish();
  calib::CalibTable table = calibrator.Table();
  table.model = model_path;
  table.data = "fashion-mnist train";
  table.seed = seed;
  return table;
}

}  // namespace qforge::cli
