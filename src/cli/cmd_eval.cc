// `qforge eval MODEL --data fashion-mnist`: top-1 accuracy of a classifier on the test split.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/measure.h"
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

int RunEval(const EvalOptions& o) {
  if (o.data != "fashion-mnist")
    throw Error("unknown data set '" + o.data + "' (supported: fashion-mnist)");
  ir::Graph graph = LoadModelForExecution(o.model);
  CheckImageClassifier(graph, o.model);  // reject an unsuitable model before loading the data

  runtime::SessionOptions options;
  options.threads = o.threads;
  runtime::Session session(std::move(graph), options);
  const data::LabeledImages test = data::LoadFashionMnist(data::Split::kTest, o.data_dir, o.limit);
  if (test.size() == 0) throw Error("no images to evaluate (--limit 0?)");
  const EvalResult r = EvaluateClassifier(session, test, o.batch, "eval");
  const std::vector<int64_t>& predicted = r.predicted;
  const int64_t correct = r.correct, batch = r.batch;
  const double seconds = r.seconds;

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
