// `qforge qat MODEL --data fashion-mnist --epochs N --estimator ste|lsq|soft -o OUT`:
// quantization-aware training from the fp32 model, exported like static PTQ (QDQ .onnx or .qf).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/measure.h"
#include "qforge/calib/observer.h"
#include "qforge/data/atomic_file.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/onnx/onnx.h"
#include "qforge/onnx/qf_file.h"
#include "qforge/passes/quantize.h"
#include "qforge/runtime/session.h"
#include "qforge/train/qat.h"

namespace qforge::cli {
namespace {

struct QatCliOptions {
  std::string model, data, output;
  std::string data_dir = std::string(data::kFashionMnistDir);
  std::string estimator = "ste";
  int epochs = 1;
  int bits_w = 8, bits_a = 8;
  bool distill = false;
  double distill_weight = -1;  // -1: 1 with --distill, else 0
  double temperature = 1.0;
  int64_t calib_samples = 1000;
  std::string calib_method = "minmax";
  int64_t batch = 64;
  int64_t limit = -1;
  int64_t eval_limit = -1;
  double lr = 1e-4;
  double lr_quant = -1;
  double soft_fraction = 0.8;
  int64_t freeze_observers = 0;
  int64_t freeze_bn = 0;
  int64_t val_images = 0;
  int64_t val_every = 50;
  uint64_t seed = 1;
  int threads = 0;
  double weight_decay = 0;
  std::string optimizer = "adamw";
  double momentum = 0.9;
  bool ptq = true;
  std::string json;
};

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

int RunQat(const QatCliOptions& o) {
  if (o.data != "fashion-mnist")
    throw Error("unknown data set '" + o.data + "' (supported: fashion-mnist)");
  if (!EndsWith(o.output, ".qf") && !EndsWith(o.output, ".onnx"))
    throw Error("-o must name a .qf or .onnx file, got '" + o.output + "'");
  if (!(o.soft_fraction > 0 && o.soft_fraction <= 1))
    throw Error("--soft-fraction must be in (0, 1]");
  const train::OptimizerOptions::Kind optimizer = train::ParseOptimizerKind(o.optimizer);
  if (o.distill && o.distill_weight >= 0 && o.distill_weight != 1)
    throw Error("--distill is --distill-weight 1 (label-free); give one of them");
  const double distill_weight = o.distill ? 1.0 : std::max(0.0, o.distill_weight);
  if (distill_weight > 1) throw Error("--distill-weight must be in [0, 1]");
  const bool label_free = distill_weight == 1;
  train::QatOptions qo;
  qo.estimator = train::ParseEstimator(o.estimator);
  qo.bits_w = o.bits_w;
  qo.bits_a = o.bits_a;
  qo.observer_freeze_step = o.freeze_observers;
  qo.bn_freeze_step = o.freeze_bn;
  const auto start = std::chrono::steady_clock::now();

  const ir::Graph fp32 = LoadModelFile(o.model);
  CheckImageClassifier(fp32, o.model);
  const data::LabeledImages train_set = data::LoadFashionMnist(data::Split::kTrain, o.data_dir);
  const data::LabeledImages test =
      data::LoadFashionMnist(data::Split::kTest, o.data_dir, o.eval_limit);
  if (test.size() == 0) throw Error("no test images (--eval-limit 0?)");

  calib::ObserverConfig oc;
  oc.method = calib::ParseMethod(o.calib_method);
  const calib::CalibTable table = CalibrateFashionMnist(fp32, o.model, o.data_dir, o.calib_samples,
                                                        64, o.seed, oc, o.threads, "calibrate");

  if (o.val_images >= train_set.size())
    throw Error("--val-images must be fewer than the " + std::to_string(train_set.size()) +
                " training images");
  const int64_t pool = train_set.size() - o.val_images;
  const int64_t n = o.limit >= 0 ? std::min(o.limit, pool) : pool;
  const int64_t total_steps = (n + o.batch - 1) / o.batch * o.epochs;
  qo.soft.anneal_steps = static_cast<int64_t>(std::llround(o.soft_fraction * total_steps));
  train::QatModel m = train::PrepareQat(fp32, table, qo);
  fmt::print(stderr, "qat: {} fake quantizers ({} trainable tensors), {} steps of batch {}{}\n",
             m.sites.size(), m.weights.size() + m.quant_params.size(), total_steps, o.batch,
             m.batch_norms.empty()
                 ? std::string()
                 : fmt::format(", {} BatchNorms on batch statistics until step {}",
                               m.batch_norms.size(), o.freeze_bn));

  runtime::SessionOptions so;
  so.threads = o.threads;
  runtime::Session fp32_session(PrepareForExecution(fp32), so);
  const EvalResult fp32_eval = EvaluateClassifier(fp32_session, test, 100, "eval fp32");
  // Static PTQ from the same calibration table: the model QAT starts from (its step-0 hard
  // forward, with the biases snapped), the baseline QAT has to beat.
  double ptq_top1 = -1;
  if (o.ptq) {
    runtime::Session ptq_session(PrepareForExecution(m.qdq), so);
    ptq_top1 = EvaluateClassifier(ptq_session, test, 100, "eval static PTQ").top1();
  }

  train::QatTrainOptions to;
  to.epochs = o.epochs;
  to.batch = o.batch;
  to.limit = o.limit;
  to.lr = o.lr;
  to.lr_quant = o.lr_quant;
  to.seed = o.seed;
  to.threads = o.threads;
  to.weight_decay = o.weight_decay;
  to.optimizer = optimizer;
  to.momentum = o.momentum;
  to.distill_weight = distill_weight;
  to.val_images = o.val_images;
  to.val_every = o.val_every;
  to.temperature = o.temperature;
  to.progress = [](const train::QatProgress& p) {
    fmt::print(stderr, "epoch {} step {}/{}  loss {:.4f}  acc {:.2f}%  {:.0f} samples/s{}\n",
               p.epoch, p.step, p.total_steps, p.loss, 100.0 * p.accuracy, p.samples_per_second,
               p.end_of_epoch ? "  (end of epoch)" : "");
  };
  const train::QatTrainResult tr = train::TrainQat(m, fp32, train_set, to);
  if (tr.selected_step >= 0)
    fmt::print(stderr, "held-out {} training images: start {:.2f}%, kept step {} ({:.2f}%)\n",
               o.val_images, 100.0 * tr.val_accuracy_start, tr.selected_step,
               100.0 * tr.val_accuracy);

  const std::vector<int64_t> fake = train::PredictFakeQuant(m, test, 100, o.threads);
  int64_t fake_correct = 0;
  for (int64_t i = 0; i < test.size(); ++i)
    fake_correct += fake[i] == test.labels.data<int64_t>()[i];

  ir::Graph qdq = train::ExportQdq(m);
  runtime::Session int_session(PrepareForExecution(qdq), so);
  const EvalResult int_eval = EvaluateClassifier(int_session, test, 100, "eval int8");
  int64_t agree = 0;
  for (int64_t i = 0; i < test.size(); ++i) agree += fake[i] == int_eval.predicted[i];

  if (EndsWith(o.output, ".qf")) {
    passes::LowerQdqToInteger(qdq);
    onnx_io::SaveQf(qdq, o.output);
  } else {
    onnx_io::SaveModel(qdq, o.output);
  }

  const double nt = static_cast<double>(test.size());
  Table t({"model", "estimator", "bits", "epochs", "fp32 %", "PTQ %", "fake-quant %", "integer %",
           "agreement %", "train s", "total s"},
          {false, false, false, true, true, true, true, true, true, true, true});
  t.AddRow({o.model,
            o.estimator + (label_free           ? std::string(" +distill")
                           : distill_weight > 0 ? fmt::format(" +distill {:g}", distill_weight)
                                                : std::string()),
            fmt::format("W{}A{}", o.bits_w, o.bits_a), std::to_string(o.epochs),
            fmt::format("{:.2f}", 100.0 * fp32_eval.top1()),
            o.ptq ? fmt::format("{:.2f}", 100.0 * ptq_top1) : std::string("-"),
            fmt::format("{:.2f}", 100.0 * double(fake_correct) / nt),
            fmt::format("{:.2f}", 100.0 * int_eval.top1()),
            fmt::format("{:.2f}", 100.0 * double(agree) / nt), fmt::format("{:.1f}", tr.seconds),
            fmt::format("{:.1f}", Seconds(start))});
  if (!o.json.empty()) {
    // Accuracies in percent of the test images; seconds of wall time.
    nlohmann::json j;
    j["model"] = o.model;
    j["estimator"] = o.estimator;
    j["distill"] = label_free;
    j["distill_weight"] = distill_weight;
    j["bits_w"] = o.bits_w;
    j["bits_a"] = o.bits_a;
    j["epochs"] = o.epochs;
    j["images_per_epoch"] = n;
    j["batch"] = o.batch;
    j["steps"] = tr.steps;
    j["optimizer"] = o.optimizer;
    if (o.optimizer == "sgd") j["momentum"] = o.momentum;
    j["lr"] = o.lr;
    j["lr_quant"] = o.lr_quant >= 0 ? o.lr_quant : o.lr;
    j["weight_decay"] = o.weight_decay;
    j["temperature"] = o.temperature;
    if (o.estimator == "soft") j["soft_fraction"] = o.soft_fraction;
    j["freeze_observers"] = o.freeze_observers;
    j["freeze_bn"] = o.freeze_bn;
    j["val_images"] = o.val_images;
    if (o.val_images > 0) {
      j["val_every"] = o.val_every;
      j["selected_step"] = tr.selected_step;
      j["val_start"] = 100.0 * tr.val_accuracy_start;
      j["val_selected"] = 100.0 * tr.val_accuracy;
      nlohmann::json h = nlohmann::json::array();
      for (const auto& [step, acc] : tr.val_history) h.push_back({step, 100.0 * acc});
      j["val_history"] = h;
    }
    j["calib_samples"] = o.calib_samples;
    j["calib_method"] = o.calib_method;
    j["seed"] = o.seed;
    j["threads"] = o.threads;
    j["test_images"] = test.size();
    j["fp32"] = 100.0 * fp32_eval.top1();
    j["ptq"] = o.ptq ? nlohmann::json(100.0 * ptq_top1) : nlohmann::json();
    j["fake_quant"] = 100.0 * double(fake_correct) / nt;
    j["integer"] = 100.0 * int_eval.top1();
    j["agreement"] = 100.0 * double(agree) / nt;
    j["differ"] = test.size() - agree;
    j["weight_scale_change"] = {{"median", tr.weight_scale_change_median},
                                {"max", tr.weight_scale_change_max}};
    j["activation_scale_change"] = {{"median", tr.act_scale_change_median},
                                    {"max", tr.act_scale_change_max}};
    j["train_seconds"] = tr.seconds;
    j["total_seconds"] = Seconds(start);
    j["output"] = o.output;
    data::WriteFileAtomic(o.json, j.dump(2) + "\n");
  }
  std::cout << t.ToString();
  std::cout << "wrote " << o.output << " (" << test.size() << " test images, "
            << test.size() - agree << " predictions differ between fake-quant and integer)\n";
  return 0;
}

}  // namespace

Command AddQatCommand(CLI::App& root) {
  auto o = std::make_shared<QatCliOptions>();
  CLI::App* app = root.add_subcommand(
      "qat",
      "Quantization-aware training (fake quantization, ste / lsq / soft), exported like PTQ");
  app->add_option("MODEL", o->model, "fp32 ONNX classifier to fine-tune")->required();
  app->add_option("--data", o->data, "Data set: fashion-mnist")->required();
  app->add_option("-o,--output", o->output, "Output: OUT.qf (integer model) or OUT.onnx (QDQ)")
      ->required();
  app->add_option("--data-dir", o->data_dir, "Where the data set's IDX files are")
      ->capture_default_str();
  app->add_option("--epochs", o->epochs, "Training epochs")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--estimator", o->estimator, "Gradient through rounding: ste, lsq or soft")
      ->capture_default_str();
  app->add_option("--bits-w", o->bits_w, "Weight bits: 8, 4 or 2 (signed, per channel)")
      ->capture_default_str();
  app->add_option("--bits-a", o->bits_a, "Activation bits: 8 or 4 (unsigned, per tensor)")
      ->capture_default_str();
  app->add_flag("--distill", o->distill,
                "Label-free: KL divergence toward the fp32 model's logits instead of labels");
  app->add_option("--distill-weight", o->distill_weight,
                  "Mix: loss = W * KL(teacher) + (1 - W) * cross-entropy (0: labels only; "
                  "1: --distill)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--temperature", o->temperature, "Distillation temperature")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--calib-samples", o->calib_samples,
                  "Training images used to calibrate the ranges")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--calib-method", o->calib_method, "Observer for the initial ranges")
      ->capture_default_str();
  app->add_option("--batch", o->batch, "Training batch size")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--limit", o->limit, "Training images per epoch (default: all 60000)")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--eval-limit", o->eval_limit, "Evaluate on the first N test images only")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--lr", o->lr, "Learning rate (cosine decay)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--lr-quant", o->lr_quant,
                  "lsq: learning rate of scales / zero points (default: --lr)");
  app->add_option("--soft-fraction", o->soft_fraction,
                  "soft: fraction of the steps over which the temperature is annealed (hard after)")
      ->capture_default_str();
  app->add_option(
         "--freeze-observers,--freeze-observers-step", o->freeze_observers,
         "ste/soft: observers update the ranges until this step (0: calibrated ranges fixed)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--freeze-bn-step", o->freeze_bn,
                  "BatchNorm on batch statistics (running statistics updated) until this step, "
                  "then folded and frozen (0: folded, fp32 statistics, from the start)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--val-images", o->val_images,
                  "Hold out N training images (not trained on) and keep the step (0 = start, "
                  "every --val-every) most accurate on them")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_option("--val-every", o->val_every, "Steps between held-out evaluations")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--optimizer", o->optimizer, "adamw or sgd (with --momentum)")
      ->capture_default_str();
  app->add_option("--momentum", o->momentum, "sgd: momentum")->capture_default_str();
  app->add_option("--weight-decay", o->weight_decay,
                  "Weight decay of the weights (AdamW: decoupled; sgd: L2), never of scales")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_flag("!--no-ptq", o->ptq,
                "Skip the static PTQ evaluation (same calibration) shown beside the QAT result");
  app->add_option("--json", o->json,
                  "Also write the summary (settings, accuracies, times) to FILE as JSON");
  app->add_option("--seed", o->seed, "Seed (calibration sample, shuffling)")->capture_default_str();
  app->add_option("--threads", o->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  app->footer(R"EX(Example:
  $ qforge qat models/fmnist_cnn.onnx --data fashion-mnist --epochs 1 --estimator lsq -o cnn_qat.qf

Steps: calibrate (--calib-samples training images, --calib-method), quantize statically to find
where to quantize, replace each QuantizeLinear/DequantizeLinear by a fake quantizer (BatchNorm is
folded first; with --freeze-bn-step N it trains on batch statistics until step N), train with
AdamW (optionally keeping the step most accurate on --val-images held-out training images), then write the model like 'qforge quantize' does: a QDQ .onnx,
or a .qf with the integer ops the runtime executes. The summary compares fp32, the fake-quantized
model and the integer runtime on the test split (agreement: same predicted class).)EX");
  return {app, [o] { return RunQat(*o); }};
}

}  // namespace qforge::cli
