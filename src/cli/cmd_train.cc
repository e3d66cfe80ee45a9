// `qforge train MODEL --data fashion-mnist --epochs N -o OUT.onnx`: fp32 training of an ONNX
// classifier by the autograd engine (src/train), from its weights or re-initialized (--reinit).
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/onnx/onnx.h"
#include "qforge/train/trainer.h"

namespace qforge::cli {
namespace {

struct TrainCliOptions {
  std::string model, data, out;
  std::string data_dir = std::string(data::kFashionMnistDir);
  int epochs = 1;
  int64_t batch = 64;
  float lr = -1.0f;  // default by optimizer
  std::string optimizer = "sgd";
  std::string schedule = "cosine";
  int64_t step_size = 1;
  float gamma = 0.1f;
  int64_t warmup = 0;
  float momentum = 0.9f;
  float weight_decay = -1.0f;  // default by optimizer
  std::string augment = "shift";
  std::string loss = "ce";
  std::string teacher;
  float temperature = 4.0f;
  uint64_t seed = 0;
  int threads = 0;
  int64_t limit = -1, test_limit = -1;
  std::string checkpoint;
  bool resume = false;
  bool reinit = false;
  bool quiet = false;
  bool no_shuffle = false;
  bool profile = false;
};

int RunTrain(const TrainCliOptions& o) {
  if (o.data != "fashion-mnist")
    throw Error("unknown data set '" + o.data + "' (supported: fashion-mnist)");
  if (o.resume && o.checkpoint.empty()) throw Error("--resume needs --checkpoint DIR");
  ir::Graph graph = LoadModelFile(o.model);
  if (o.reinit) train::ReinitializeWeights(graph, o.seed);

  train::TrainOptions t;
  t.epochs = o.epochs;
  t.batch = o.batch;
  t.optimizer.kind = train::ParseOptimizerKind(o.optimizer);
  const bool sgd = t.optimizer.kind == train::OptimizerOptions::Kind::kSgd;
  t.lr = o.lr > 0 ? o.lr : (sgd ? 0.05f : 1e-3f);
  t.optimizer.momentum = o.momentum;
  t.optimizer.weight_decay = o.weight_decay >= 0 ? o.weight_decay : (sgd ? 5e-4f : 1e-2f);
  t.schedule.kind = train::ParseScheduleKind(o.schedule);
  t.schedule.step_size = o.step_size;
  t.schedule.gamma = o.gamma;
  t.schedule.warmup_steps = o.warmup;
  t.augment = train::ParseAugment(o.augment);
  t.loss = o.loss;
  t.temperature = o.temperature;
  t.seed = o.seed;
  t.threads = o.threads;
  t.checkpoint_dir = o.checkpoint;
  t.resume = o.resume;
  t.progress = !o.quiet;
  t.shuffle = !o.no_shuffle;
  t.profile = o.profile;
  ir::Graph teacher;
  if (!o.teacher.empty()) {
    teacher = LoadModelForExecution(o.teacher);
    t.teacher = &teacher;
  }
  if (o.loss == "kl" && o.teacher.empty()) throw Error("--loss kl needs --teacher MODEL");

  // Data after the model, so a bad model fails fast.
  const data::LabeledImages train_set =
      data::LoadFashionMnist(data::Split::kTrain, o.data_dir, o.limit);
  const data::LabeledImages test_set =
      o.test_limit == 0 ? data::LabeledImages{}
                        : data::LoadFashionMnist(data::Split::kTest, o.data_dir, o.test_limit);
  const train::TrainResult r = train::Train(graph, train_set, test_set, t);
  onnx_io::SaveModel(r.graph, o.out);  // writes atomically

  Table table({"epoch", "loss", "train %", "test %", "time s", "cpu s", "samples/s", "lr"},
              {true, true, true, true, true, true, true, true});
  for (const train::EpochStats& e : r.epochs)
    table.AddRow({std::to_string(e.epoch), fmt::format("{:.4f}", e.loss),
                  fmt::format("{:.2f}", 100 * e.train_accuracy),
                  e.test_accuracy >= 0 ? fmt::format("{:.2f}", 100 * e.test_accuracy) : "-",
                  fmt::format("{:.1f}", e.seconds), fmt::format("{:.2f}", e.cpu_seconds),
                  fmt::format("{:.0f}", e.samples_per_second), fmt::format("{:.3g}", e.last_lr)});
  std::cout << table.ToString();
  if (o.profile) {
    double total = 0;
    for (const train::OpProfile& p : r.profile) total += p.forward_seconds + p.backward_seconds;
    Table prof({"op", "calls", "forward s", "backward s", "total %"},
               {false, true, true, true, true});
    for (const train::OpProfile& p : r.profile)
      prof.AddRow(
          {p.op_type, std::to_string(std::max(p.forward_calls, p.backward_calls)),
           fmt::format("{:.3f}", p.forward_seconds), fmt::format("{:.3f}", p.backward_seconds),
           fmt::format("{:.1f}",
                       total > 0 ? 100 * (p.forward_seconds + p.backward_seconds) / total : 0.0)});
    std::cout << "per-op CPU time (all epochs):\n" << prof.ToString();
  }
  std::cout << "wrote " << o.out << "\n";
  return 0;
}

}  // namespace

Command AddTrainCommand(CLI::App& root) {
  auto o = std::make_shared<TrainCliOptions>();
  CLI::App* app =
      root.add_subcommand("train", "Train an fp32 ONNX classifier (autograd on the IR)");
  app->add_option("MODEL", o->model, "ONNX model to train (its initializers are the weights)")
      ->required();
  app->add_option("--data", o->data, "Data set: fashion-mnist")->required();
  app->add_option("-o,--output", o->out, "Trained model (ONNX)")->required();
  app->add_option("--data-dir", o->data_dir, "Where the data set's IDX files are")
      ->capture_default_str();
  app->add_option("--epochs", o->epochs, "Epochs")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--batch", o->batch, "Batch size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app->add_option("--lr", o->lr, "Base learning rate (default 0.05 sgd, 0.001 adamw)");
  app->add_option("--optimizer", o->optimizer, "sgd (momentum) or adamw")
      ->capture_default_str()
      ->check(CLI::IsMember({"sgd", "adamw"}));
  app->add_option("--momentum", o->momentum, "SGD momentum")->capture_default_str();
  app->add_option("--weight-decay", o->weight_decay,
                  "Weight decay (default 5e-4 sgd (L2), 0.01 adamw (decoupled))");
  app->add_option("--schedule", o->schedule, "Learning-rate schedule: constant, cosine, step")
      ->capture_default_str()
      ->check(CLI::IsMember({"constant", "cosine", "step"}));
  app->add_option("--step-size", o->step_size, "step schedule: decay every N epochs")
      ->capture_default_str();
  app->add_option("--gamma", o->gamma, "step schedule: decay factor")->capture_default_str();
  app->add_option("--warmup", o->warmup, "Linear warm-up steps")->capture_default_str();
  app->add_option("--augment", o->augment, "none, or a list of shift, shiftN, flip")
      ->capture_default_str();
  app->add_option("--loss", o->loss, "ce (labels), mse, kl (distillation, needs --teacher)")
      ->capture_default_str()
      ->check(CLI::IsMember({"ce", "mse", "kl"}));
  app->add_option("--teacher", o->teacher, "Teacher model for --loss kl / mse (distillation)");
  app->add_option("--temperature", o->temperature, "Distillation temperature")
      ->capture_default_str();
  app->add_option("--seed", o->seed, "Seed: shuffling, augmentation, dropout, --reinit")
      ->capture_default_str();
  app->add_option("--threads", o->threads, "Threads (0 = all cores)")->capture_default_str();
  app->add_option("--limit", o->limit, "Use only the first N training images");
  app->add_option("--test-limit", o->test_limit, "Evaluate on the first N test images (0: none)");
  app->add_option("--checkpoint", o->checkpoint,
                  "Directory for DIR/checkpoint.qfckpt, written atomically after every epoch");
  app->add_flag("--resume", o->resume, "Continue from the checkpoint in --checkpoint DIR");
  app->add_flag("--reinit", o->reinit, "Re-initialize weights (He) and train from scratch");
  app->add_flag("-q,--quiet", o->quiet, "No progress bar");
  app->add_flag("--profile", o->profile,
                "Print the CPU time per op (forward / backward), loss and optimizer step");
  app->add_flag("--no-shuffle", o->no_shuffle,
                "Visit the training images in file order every epoch (benchmarks)");
  app->footer(
      "Example:\n"
      "  qforge train models/fmnist_cnn.onnx --data fashion-mnist --reinit --epochs 2 \\\n"
      "      --checkpoint ckpt -o cnn_trained.onnx");
  return {app, [o] { return RunTrain(*o); }};
}

}  // namespace qforge::cli
