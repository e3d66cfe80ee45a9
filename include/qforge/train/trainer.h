// The training loop: mini-batch training of an ir::Graph classifier on a labeled image set
// (shuffling, augmentation, loss, optimizer, schedule, progress, atomic resumable checkpoints),
// evaluation, and He re-initialization for training from scratch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "qforge/data/fashion_mnist.h"
#include "qforge/ir/graph.h"
#include "qforge/train/autograd.h"
#include "qforge/train/optimizer.h"

namespace qforge::train {

struct AugmentOptions {
  int max_shift = 0;   // random translation by up to +-max_shift pixels (zero fill)
  bool hflip = false;  // random horizontal flip with probability 1/2
};

// Parses "none" or a comma list of "shift" (2 pixels), "shiftN" (N pixels), "flip".
AugmentOptions ParseAugment(const std::string& spec);

struct TrainOptions {
  int epochs = 1;
  int64_t batch = 64;
  float lr = 0.01f;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  AugmentOptions augment;
  uint64_t seed = 0;  // shuffling, augmentation, dropout: a run is a function of the seed
  int threads = 0;    // 0: OpenMP default
  // "ce" (cross-entropy on labels), "mse" (to one-hot labels, or to the teacher's logits),
  // "kl" (distillation toward the teacher's logits at `temperature`; labels unused).
  std::string loss = "ce";
  const ir::Graph* teacher = nullptr;
  float temperature = 4.0f;
  std::string checkpoint_dir;  // "" = no checkpoints; else DIR/checkpoint.qfckpt per epoch
  bool resume = false;         // continue from DIR/checkpoint.qfckpt when it exists
  bool progress = true;        // progress bar on stderr
  int64_t eval_batch = 256;
  bool profile = false;  // per-op CPU time in TrainResult::profile (and "(optimizer)" steps)
  bool shuffle = true;   // false: samples in data-set order every epoch (benchmarks)
};

struct EpochStats {
  int epoch = 0;                                            // 1-based
  double loss = 0, train_accuracy = 0, test_accuracy = -1;  // accuracy in [0, 1]; -1: no test
  double seconds = 0, samples_per_second = 0;
  double cpu_seconds = 0;  // process CPU time (all threads) of the epoch's training steps
  float last_lr = 0;
};

struct TrainResult {
  ir::Graph graph;  // the trained model (updated initializers, BatchNorm running statistics)
  std::vector<EpochStats> epochs;
  int first_epoch = 1;             // > 1 when resumed from a checkpoint
  std::vector<OpProfile> profile;  // TrainOptions::profile: per op, most expensive first
};

// Trains `model` (one image input [B, C, H, W], first output = logits [B, classes]) on
// `train`, evaluating on `test` after each epoch when it is non-empty. The trainable
// parameters are DefaultTrainable(model). Throws Error naming the problem (bad model shape,
// unsupported op, checkpoint of another model).
TrainResult Train(const ir::Graph& model, const data::LabeledImages& train,
                  const data::LabeledImages& test, const TrainOptions& options);

// Top-1 accuracy of the graph's first output on `data`, run by the inference runtime.
double Evaluate(const ir::Graph& model, const data::LabeledImages& data, int64_t batch = 256,
                int threads = 0);

// Training from scratch: He-normal weights (std = sqrt(2 / fan_in)) for Conv / ConvTranspose /
// Gemm / MatMul weights, zero biases, BatchNorm scale 1, bias 0, mean 0, var 1, LayerNorm
// scale 1, bias 0. Deterministic for the seed. Other initializers are kept.
void ReinitializeWeights(ir::Graph& g, uint64_t seed);

// One image batch with augmentation: rows `indices` of images [N, C, H, W]; each sample's
// random shift/flip comes from (seed, epoch, sample index), so it does not depend on batching
// or threads.
Tensor MakeBatch(const Tensor& images, const std::vector<int64_t>& indices,
                 const AugmentOptions& augment, uint64_t seed, int64_t epoch);

}  // namespace qforge::train
