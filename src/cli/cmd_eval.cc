// `qforge eval MODEL --data fashion-mnist`: top-1 accuracy of a classifier on the test split.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "qforge/data/atomic_file.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/runtime/session.h"

namespace qforge::cli {
namespace {

struct EvalOptions {
  std::string model;
  std::string data;
  std::string data_dir = std::string(data::kFashionMnistDir);
  int64_t limit = -1;
  int64_t batch = 64;
  int threads = 0;
  bool json = false;
  std::string predictions;
};

// The index of the largest score (the first one on ties, a NaN wins like numpy.argmax).
int64_t ArgMax(const float* scores, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(scores[i])) return i;
    if (scores[i] > scores[best]) best = i;
  }
  return best;
}

// The shape a batch of B images takes for this input: [B,1,28,28], [B,28,28] or [B,784],
// following the input's declared rank; known dims must agree.
Shape InputShapeFor(const ir::ValueInfo& vi, int64_t b) {
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

int RunEval(const EvalOptions& o) {
  if (o.data != "fashion-mnist")
    throw Error("unknown data set '" + o.data + "' (supported: fashion-mnist)");
  ir::Graph graph = LoadModelForExecution(o.model);
  if (graph.inputs.size() != 1)
    throw Error(fmt::format("eval needs a model with one input, '{}' has {}", o.model,
                            graph.inputs.size()));
  if (graph.outputs.empty()) throw Error("model '" + o.model + "' has no outputs");
  const ir::ValueInfo input = graph.inputs[0];
  const std::string output = graph.outputs[0].name;
  InputShapeFor(input, 1);  // reject an unsuitable model before loading the data

  runtime::SessionOptions options;
  options.threads = o.threads;
  runtime::Session session(std::move(graph), options);
  const data::LabeledImages test = data::LoadFashionMnist(data::Split::kTest, o.data_dir, o.limit);
  if (test.size() == 0) throw Error("no images to evaluate (--limit 0?)");

  // A model with a fixed batch dimension gets exactly that many images per run; the last,
  // shorter batch is zero-padded and the padding's scores ignored.
  int64_t batch = o.batch;
  const bool fixed_batch = input.has_shape && !input.dims.empty() && input.dims[0].known();
  if (fixed_batch) batch = input.dims[0].value;
  if (batch < 1) throw Error("model input '" + input.name + "' has batch dimension 0");

  data::BatchIterator it(test, batch);
  ProgressBar bar("eval", it.num_items());
  std::vector<int64_t> predicted;
  predicted.reserve(it.num_items());
  int64_t correct = 0;
  const auto start = std::chrono::steady_clock::now();
  for (data::Batch b; it.Next(b);) {
    Tensor images = b.images;
    if (fixed_batch && b.size() < batch) {
      images = Tensor(DType::kF32, {batch, 1, 28, 28});
      std::copy_n(b.images.data<float>(), b.images.numel(), images.data<float>());
    }
    images = images.Reshaped(InputShapeFor(input, images.dim(0)));
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
      predicted.push_back(p);
      correct += p == labels[i];
    }
    bar.Update(b.offset + b.size());
  }
  const double seconds = SecondsSince(start);
  bar.Finish();

  const int64_t n = static_cast<int64_t>(predicted.size());
  const double top1 = static_cast<double>(correct) / static_cast<double>(n);
  if (!o.predictions.empty()) {
    std::string text;
    for (int64_t p : predicted) text += std::to_string(p) + "\n";
    data::WriteFileAtomic(o.predictions, text);
  }
  if (o.json) {
    nlohmann::json j = {{"model", o.model},   {"dataset", "fashion-mnist"},
                        {"split", "test"},    {"images", n},
                        {"correct", correct}, {"top1", top1},
                        {"seconds", seconds}, {"images_per_second", n / seconds},
                        {"batch", batch},     {"threads", o.threads}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  Table t({"model", "data", "images", "top-1 %", "time s", "images/s"},
          {false, false, true, true, true, true});
  t.AddRow({o.model, "fashion-mnist test", std::to_string(n), fmt::format("{:.2f}", 100.0 * top1),
            fmt::format("{:.3f}", seconds), fmt::format("{:.0f}", n / seconds)});
  std::cout << t.ToString();
  return 0;
}

}  // namespace

Command AddEvalCommand(CLI::App& root) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* app = root.add_subcommand("eval", "Top-1 accuracy of a classifier on a test set");
  app->add_option("MODEL", o->model, "ONNX model file (one f32 image input, [N,10] scores out)")
      ->required();
  app->add_option("--data", o->data, "Data set: fashion-mnist")->required();
  app->add_option("--data-dir", o->data_dir, "Where the data set's IDX files are")
      ->capture_default_str();
  app->add_option("--limit", o->limit, "Evaluate only the first N test images")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--batch", o->batch, "Images per run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--threads", o->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  app->add_flag("--json", o->json, "Print JSON instead of a table");
  app->add_option("--predictions", o->predictions,
                  "Write the predicted class of each image to FILE, one per line");
  app->footer(R"EX(Example:
  $ qforge eval models/fmnist_cnn.onnx --data fashion-mnist --batch 100
  model                   data                images  top-1 %  time s  images/s
  -----------------------------------------------------------------------------
  models/fmnist_cnn.onnx  fashion-mnist test   10000    91.20   1.234      8104

Images are raw pixels / 255 in [0, 1], shaped [N, 1, 28, 28] (or [N, 28, 28] / [N, 784] if the
model's input has that rank); the model must contain any normalization it needs. The class is
the argmax of the first output (first index on ties). Time covers inference only (not data
loading). A progress bar is drawn on stderr when it is a terminal.)EX");
  return {app, [o] { return RunEval(*o); }};
}

}  // namespace qforge::cli
