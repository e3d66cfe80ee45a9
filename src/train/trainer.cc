// The training loop, evaluation, He re-initialization and checkpoints (see train/trainer.h).
#include "qforge/train/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>

#include "qforge/data/atomic_file.h"
#include "qforge/runtime/session.h"
#include "qforge/train/autograd.h"
#include "qforge/train/loss.h"

namespace qforge::train {

namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

using Clock = std::chrono::steady_clock;

// CPU time of the whole process (every thread), in seconds.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---- Checkpoints: "QFCKPT1\n", u64 header length, JSON header, raw little-endian f32 data.
constexpr char kMagic[] = "QFCKPT1\n";

struct Checkpoint {
  int epochs_done = 0;
  int64_t steps = 0;
  std::string optimizer;
  std::map<std::string, Tensor> params, opt_state;
};

void WriteCheckpoint(const std::string& path, const Checkpoint& c) {
  nlohmann::json h;
  h["epochs_done"] = c.epochs_done;
  h["steps"] = c.steps;
  h["optimizer"] = c.optimizer;
  std::string data;
  auto add = [&](const char* group, const std::map<std::string, Tensor>& m) {
    for (const auto& [name, t] : m) {
      nlohmann::json e;
      e["group"] = group;
      e["name"] = name;
      e["shape"] = t.shape();
      e["offset"] = data.size();
      h["tensors"].push_back(e);
      data.append(static_cast<const char*>(t.raw()), t.nbytes());
    }
  };
  add("param", c.params);
  add("optimizer", c.opt_state);
  const std::string header = h.dump();
  uint64_t len = header.size();
  std::string len_bytes(reinterpret_cast<const char*>(&len), sizeof(len));
  data::WriteFileAtomic(path, {std::string_view(kMagic, 8), len_bytes, header, data});
}

Checkpoint ReadCheckpoint(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open checkpoint " + path);
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& why) { return Error("checkpoint " + path + ": " + why); };
  if (bytes.size() < 16 || bytes.compare(0, 8, kMagic, 8) != 0)
    throw bad("not a qforge checkpoint");
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + 8, 8);
  if (len > bytes.size() - 16) throw bad("truncated header");
  Checkpoint c;
  try {
    const nlohmann::json h = nlohmann::json::parse(bytes.substr(16, len));
    c.epochs_done = h.at("epochs_done").get<int>();
    c.steps = h.at("steps").get<int64_t>();
    c.optimizer = h.at("optimizer").get<std::string>();
    const size_t base = 16 + len;
    if (h.contains("tensors"))
      for (const auto& e : h.at("tensors")) {
        Tensor t(DType::kF32, e.at("shape").get<Shape>());
        const size_t off = e.at("offset").get<size_t>();
        if (off > bytes.size() - base || t.nbytes() > bytes.size() - base - off)
          throw bad("tensor '" + e.at("name").get<std::string>() + "' is truncated");
        std::memcpy(t.raw(), bytes.data() + base + off, t.nbytes());
        (e.at("group") == "param" ? c.params : c.opt_state)[e.at("name").get<std::string>()] = t;
      }
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("bad header: ") + e.what());
  }
  return c;
}

// Progress bar on stderr: redrawn in place on a terminal, a line per ~10% otherwise.
class Progress {
 public:
  Progress(bool enabled, int epoch, int epochs, int64_t total)
      : enabled_(enabled),
        tty_(isatty(2)),
        epoch_(epoch),
        epochs_(epochs),
        total_(total),
        start_(Clock::now()),
        last_(start_) {}
  void Update(int64_t done, double loss, double acc, bool final = false) {
    if (!enabled_) return;
    const auto now = Clock::now();
    const double el = Seconds(start_, now);
    if (final && !tty_ && done == printed_) return;  // the 100% line is already out
    if (!final) {
      if (tty_ ? Seconds(last_, now) < 0.2 : done * 10 / total_ == shown_decile_) return;
    }
    last_ = now;
    printed_ = done;
    shown_decile_ = done * 10 / std::max<int64_t>(total_, 1);
    constexpr int kWidth = 24;
    const int fill = static_cast<int>(kWidth * done / std::max<int64_t>(total_, 1));
    std::string bar(fill, '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "%sepoch %d/%d [%s] %lld/%lld  loss %.4f  acc %.2f%%  %.0f samples/s%s",
                 tty_ ? "\r" : "", epoch_, epochs_, bar.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), loss, 100.0 * acc, el > 0 ? done / el : 0.0,
                 tty_ && !final ? "" : "\n");
    std::fflush(stderr);
  }

 private:
  bool enabled_, tty_;
  int epoch_, epochs_;
  int64_t total_;
  Clock::time_point start_, last_;
  int64_t shown_decile_ = 0;
  int64_t printed_ = -1;
};

}  // namespace

AugmentOptions ParseAugment(const std::string& spec) {
  AugmentOptions a;
  if (spec == "none" || spec.empty()) return a;
  std::stringstream ss(spec);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item == "flip") {
      a.hflip = true;
    } else if (item == "shift") {
      a.max_shift = 2;
    } else if (item.rfind("shift", 0) == 0 && item.size() > 5 &&
               std::all_of(item.begin() + 5, item.end(), ::isdigit)) {
      a.max_shift = std::stoi(item.substr(5));
    } else {
      throw Error("unknown augmentation '" + item + "' (expected none, shift, shiftN, flip)");
    }
  }
  return a;
}

Tensor MakeBatch(const Tensor& images, const std::vector<int64_t>& indices,
                 const AugmentOptions& augment, uint64_t seed, int64_t epoch) {
  if (images.rank() != 4 || images.dtype() != DType::kF32)
    throw Error("training images must be f32 [N, C, H, W], got " + ShapeToString(images.shape()));
  const int64_t c = images.dim(1), h = images.dim(2), w = images.dim(3), plane = h * w;
  const int64_t b = static_cast<int64_t>(indices.size());
  Tensor out(DType::kF32, {b, c, h, w});
  const float* src = images.data<float>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t idx = indices[i];
    int64_t dy = 0, dx = 0;
    bool flip = false;
    if (augment.max_shift > 0 || augment.hflip) {
      std::mt19937_64 rng(Mix(seed ^ Mix(static_cast<uint64_t>(epoch) * 0x100000001b3ULL +
                                         static_cast<uint64_t>(idx))));
      if (augment.max_shift > 0) {
        std::uniform_int_distribution<int> sh(-augment.max_shift, augment.max_shift);
        dy = sh(rng);
        dx = sh(rng);
      }
      if (augment.hflip) flip = (rng() & 1) != 0;
    }
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* s = src + (idx * c + ch) * plane;
      float* d = dst + (i * c + ch) * plane;
      for (int64_t y = 0; y < h; ++y) {
        const int64_t sy = y - dy;
        if (sy < 0 || sy >= h) continue;  // zero fill
        for (int64_t x = 0; x < w; ++x) {
          const int64_t fx = flip ? w - 1 - x : x;
          const int64_t sx = fx - dx;
          if (sx >= 0 && sx < w) d[y * w + x] = s[sy * w + sx];
        }
      }
    }
  }
  return out;
}

double Evaluate(const ir::Graph& model, const data::LabeledImages& data, int64_t batch,
                int threads) {
  if (data.size() == 0) return -1.0;
  runtime::SessionOptions so;
  so.threads = threads;
  runtime::Session session(model, so);
  const std::string in = model.inputs.at(0).name, out = model.outputs.at(0).name;
  int64_t correct = 0;
  data::BatchIterator it(data, batch);
  const int64_t* labels = nullptr;
  for (data::Batch b; it.Next(b);) {
    const Tensor logits = session.Run({{in, b.images}}).at(out);
    if (logits.rank() != 2) throw Error("evaluate: output '" + out + "' is not [batch, classes]");
    const std::vector<int64_t> y = b.labels.ToInt64Vector();
    const int64_t c = logits.dim(1);
    const float* p = logits.data<float>();
    for (int64_t i = 0; i < b.size(); ++i)
      correct += std::max_element(p + i * c, p + (i + 1) * c) - (p + i * c) == y[i];
  }
  (void)labels;
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

void ReinitializeWeights(ir::Graph& g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto he = [&](const std::string& name, int64_t fan_in) {
    auto it = g.initializers.find(name);
    if (it == g.initializers.end() || it->second.dtype() != DType::kF32) return;
    Tensor t(DType::kF32, it->second.shape());
    std::normal_distribution<float> nd(0.0f, std::sqrt(2.0f / std::max<int64_t>(1, fan_in)));
    for (float& v : t.span<float>()) v = nd(rng);
    it->second = t;
  };
  auto fill = [&](const ir::Node& n, size_t i, float v) {
    if (!n.has_input(i)) return;
    auto it = g.initializers.find(n.inputs[i]);
    if (it == g.initializers.end() || it->second.dtype() != DType::kF32) return;
    Tensor t(DType::kF32, it->second.shape());
    std::fill_n(t.data<float>(), t.numel(), v);
    it->second = t;
  };
  for (const ir::Node& n : g.nodes) {
    auto init = [&](size_t i) -> const Tensor* {
      if (!n.has_input(i)) return nullptr;
      auto it = g.initializers.find(n.inputs[i]);
      return it == g.initializers.end() ? nullptr : &it->second;
    };
    if (n.op_type == "Conv" || n.op_type == "ConvTranspose") {
      if (const Tensor* w = init(1); w && w->rank() >= 3) {
        const int64_t fan_in = n.op_type == "Conv"
                                   ? w->numel() / w->dim(0)
                                   : w->numel() / w->dim(0) * n.attr_int("group", 1);
        he(n.inputs[1], fan_in);
      }
      fill(n, 2, 0.0f);
    } else if (n.op_type == "Gemm") {
      if (const Tensor* w = init(1); w && w->rank() == 2)
        he(n.inputs[1], n.attr_int("transB", 0) ? w->dim(1) : w->dim(0));
      fill(n, 2, 0.0f);
    } else if (n.op_type == "MatMul") {
      if (const Tensor* w = init(1); w && w->rank() >= 2) he(n.inputs[1], w->dim(-2));
    } else if (n.op_type == "BatchNormalization") {
      fill(n, 1, 1.0f);
      fill(n, 2, 0.0f);
      fill(n, 3, 0.0f);
      fill(n, 4, 1.0f);
    } else if (n.op_type == "LayerNormalization") {
      fill(n, 1, 1.0f);
      fill(n, 2, 0.0f);
    }
  }
}

TrainResult Train(const ir::Graph& model, const data::LabeledImages& train,
                  const data::LabeledImages& test, const TrainOptions& o) {
  if (model.inputs.size() != 1 || model.outputs.empty())
    throw Error("train: the model must have one input and a logits output (has " +
                std::to_string(model.inputs.size()) + " inputs)");
  if (o.epochs < 1) throw Error("train: --epochs must be >= 1");
  if (o.batch < 1) throw Error("train: --batch must be >= 1");
  if (train.size() == 0) throw Error("train: the training set is empty");
  if ((o.loss == "kl") && !o.teacher) throw Error("train: the kl loss needs a teacher model");
  if (o.loss != "ce" && o.loss != "mse" && o.loss != "kl")
    throw Error("train: unknown loss '" + o.loss + "' (expected ce, mse or kl)");
  const std::string in_name = model.inputs[0].name, out_name = model.outputs[0].name;

  AutogradOptions ao;
  ao.threads = o.threads;
  ao.profile = o.profile;
  Autograd ag(model, DefaultTrainable(model), ao);
  OpProfile opt_profile{"(optimizer)"}, loss_profile{"(loss)"};
  Optimizer opt(o.optimizer);
  std::unique_ptr<runtime::Session> teacher;
  if (o.teacher) {
    runtime::SessionOptions so;
    so.threads = o.threads;
    teacher = std::make_unique<runtime::Session>(*o.teacher, so);
  }

  const int64_t n = train.size();
  const int64_t steps_per_epoch = (n + o.batch - 1) / o.batch;
  const int64_t total_steps = steps_per_epoch * o.epochs;
  const std::string opt_name = o.optimizer.kind == OptimizerOptions::Kind::kSgd ? "sgd" : "adamw";
  const std::string ckpt_path =
      o.checkpoint_dir.empty()
          ? ""
          : (std::filesystem::path(o.checkpoint_dir) / "checkpoint.qfckpt").string();

  TrainResult result;
  int start_epoch = 0;
  if (o.resume && !ckpt_path.empty() && std::filesystem::exists(ckpt_path)) {
    Checkpoint c = ReadCheckpoint(ckpt_path);
    if (c.optimizer != opt_name)
      throw Error("checkpoint " + ckpt_path + " was written by optimizer " + c.optimizer +
                  ", not " + opt_name);
    auto& inits = ag.graph().initializers;
    for (const auto& [name, t] : inits)
      if (t.dtype() == DType::kF32 && !c.params.count(name))
        throw Error("checkpoint " + ckpt_path + " has no tensor '" + name +
                    "': it belongs to another model");
    for (const auto& [name, t] : c.params) {
      auto it = inits.find(name);
      if (it == inits.end() || it->second.shape() != t.shape())
        throw Error("checkpoint " + ckpt_path + ": tensor '" + name +
                    "' does not match the model: it belongs to another model");
      it->second = t;
    }
    opt.LoadState(c.opt_state, c.steps);
    start_epoch = c.epochs_done;
    if (o.progress)
      std::fprintf(stderr, "resumed from %s after epoch %d\n", ckpt_path.c_str(), start_epoch);
  } else if (o.resume && o.progress) {
    std::fprintf(
        stderr, "no checkpoint to resume from%s; starting at epoch 1\n",
        ckpt_path.empty() ? " (no --checkpoint DIR)" : (" in " + o.checkpoint_dir).c_str());
  }
  if (!o.checkpoint_dir.empty()) std::filesystem::create_directories(o.checkpoint_dir);
  result.first_epoch = start_epoch + 1;

  const std::vector<int64_t> labels = train.labels.ToInt64Vector();
  for (int epoch = start_epoch; epoch < o.epochs; ++epoch) {
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 shuffle_rng(Mix(o.seed) ^ Mix(static_cast<uint64_t>(epoch) + 17));
    if (o.shuffle) std::shuffle(order.begin(), order.end(), shuffle_rng);
    Progress bar(o.progress, epoch + 1, o.epochs, n);
    const auto t0 = Clock::now();
    const double cpu0 = ProcessCpuSeconds();
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    float lr = o.lr;
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      const int64_t begin = s * o.batch, end = std::min(n, begin + o.batch);
      std::vector<int64_t> idx(order.begin() + begin, order.begin() + end);
      const Tensor x = MakeBatch(train.images, idx, o.augment, o.seed, epoch);
      const int64_t step = opt.steps();
      ag.ZeroGrad();
      const Tensor logits =
          ag.Forward({{in_name, x}}, true, Mix(o.seed + 1) ^ Mix(step), step).at(out_name);
      Tensor y(DType::kI64, {end - begin});
      for (int64_t i = 0; i < end - begin; ++i) y.data<int64_t>()[i] = labels[idx[i]];
      LossResult lres;
      const double loss_t0 = o.profile ? ProcessCpuSeconds() : 0.0;
      if (o.loss == "ce") {
        lres = CrossEntropy(logits, y);
      } else {
        Tensor target;
        if (teacher) {
          target =
              teacher->Run({{o.teacher->inputs.at(0).name, x}}).at(o.teacher->outputs.at(0).name);
        } else {
          target = Tensor(DType::kF32, logits.shape());
          for (int64_t i = 0; i < end - begin; ++i)
            target.data<float>()[i * logits.dim(1) + labels[idx[i]]] = 1.0f;
        }
        lres = o.loss == "kl" ? KlDivergence(logits, target, o.temperature)
                              : MeanSquaredError(logits, target);
        // Accuracy is always against the labels.
        lres.correct = 0;
        const int64_t c = logits.dim(1);
        const float* p = logits.data<float>();
        for (int64_t i = 0; i < end - begin; ++i)
          lres.correct +=
              std::max_element(p + i * c, p + (i + 1) * c) - (p + i * c) == labels[idx[i]];
      }
      if (!std::isfinite(lres.loss))
        throw Error("train: the loss became " + std::to_string(lres.loss) + " at step " +
                    std::to_string(step) + " (learning rate too high?)");
      if (o.profile) {
        loss_profile.forward_seconds += ProcessCpuSeconds() - loss_t0;
        ++loss_profile.forward_calls;
      }
      ag.Backward({{out_name, lres.grad}});
      lr = LearningRate(o.schedule, o.lr, step, total_steps, steps_per_epoch);
      const double opt_t0 = o.profile ? ProcessCpuSeconds() : 0.0;
      opt.Step(ag.graph().initializers, ag.grads(), lr);
      if (o.profile) {
        opt_profile.backward_seconds += ProcessCpuSeconds() - opt_t0;
        ++opt_profile.backward_calls;
      }
      loss_sum += lres.loss * (end - begin);
      correct += lres.correct;
      seen += end - begin;
      bar.Update(seen, loss_sum / seen, double(correct) / seen);
    }
    bar.Update(seen, loss_sum / seen, double(correct) / seen, true);
    EpochStats st;
    st.epoch = epoch + 1;
    st.seconds = Seconds(t0, Clock::now());
    st.cpu_seconds = ProcessCpuSeconds() - cpu0;
    st.samples_per_second = st.seconds > 0 ? seen / st.seconds : 0;
    st.loss = loss_sum / seen;
    st.train_accuracy = double(correct) / seen;
    st.last_lr = lr;
    st.test_accuracy = Evaluate(ag.graph(), test, o.eval_batch, o.threads);
    if (o.progress && st.test_accuracy >= 0)
      std::fprintf(stderr, "epoch %d: test accuracy %.2f%%\n", st.epoch, 100 * st.test_accuracy);
    result.epochs.push_back(st);
    if (!ckpt_path.empty()) {
      Checkpoint c;
      c.epochs_done = epoch + 1;
      c.steps = opt.steps();
      c.optimizer = opt_name;
      for (const auto& [name, t] : ag.graph().initializers)
        if (t.dtype() == DType::kF32) c.params[name] = t;
      c.opt_state = opt.State();
      WriteCheckpoint(ckpt_path, c);
    }
  }
  result.graph = ag.graph();
  if (o.profile) {
    result.profile = ag.Profile();
    result.profile.push_back(loss_profile);
    result.profile.push_back(opt_profile);
    std::stable_sort(
        result.profile.begin(), result.profile.end(), [](const OpProfile& a, const OpProfile& b) {
          return a.forward_seconds + a.backward_seconds > b.forward_seconds + b.backward_seconds;
        });
  }
  return result;
}

}  // namespace qforge::train
