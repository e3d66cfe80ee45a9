// Fashion-MNIST: loading the Debian dataset-fashion-mnist files, and batching labeled images.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "qforge/tensor/tensor.h"

namespace qforge::data {

// Where Debian's dataset-fashion-mnist package installs the four IDX files.
inline constexpr std::string_view kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

enum class Split { kTrain, kTest };

// A set of images with one class label each.
struct LabeledImages {
  Tensor images;  // f32 [N, 1, 28, 28], raw pixel / 255 in [0, 1] (no mean/std normalization)
  Tensor labels;  // i64 [N], class ids 0..9
  int64_t size() const { return labels.defined() ? labels.dim(0) : 0; }
};

// The ten class names, indexed by label.
const std::array<std::string_view, 10>& FashionMnistClassNames();

// Loads a split ("t10k-*" for kTest, "train-*" for kTrain) from `dir`, accepting the
// ".gz" files or their uncompressed forms. `limit` >= 0 keeps only the first `limit` images.
// Throws qforge::Error "dataset-fashion-mnist not installed: run scripts/setup.sh (...)" when
// the files are missing, and an error naming the file when it is corrupt or inconsistent
// (wrong dims, label count differing from image count, a label outside 0..9).
LabeledImages LoadFashionMnist(Split split, const std::string& dir = std::string(kFashionMnistDir),
                               int64_t limit = -1);

// One batch: rows [offset, offset + size) of the data set (copied).
struct Batch {
  int64_t offset = 0;
  Tensor images;  // [B, ...] with the data set's trailing dims
  Tensor labels;  // [B]
  int64_t size() const { return labels.dim(0); }
};

// Walks a data set in batches of `batch_size` (the last one may be smaller), over the first
// `limit` items (all when limit < 0 or limit > size). Usage:
//   BatchIterator it(data, 64);
//   for (Batch b; it.Next(b);) { ... }
class BatchIterator {
 public:
  BatchIterator(const LabeledImages& data, int64_t batch_size, int64_t limit = -1);
  // Fills `batch` with the next batch; returns false (leaving it unchanged) when done.
  bool Next(Batch& batch);
  int64_t num_items() const { return end_; }
  int64_t num_batches() const { return (end_ + batch_size_ - 1) / batch_size_; }

 private:
  const LabeledImages& data_;
  int64_t batch_size_;
  int64_t end_;
  int64_t next_ = 0;
};

// Copies rows [begin, end) along dimension 0 of `t` into a new tensor.
Tensor SliceRows(const Tensor& t, int64_t begin, int64_t end);

}  // namespace qforge::data
