// Fashion-MNIST loading (IDX files from Debian's dataset-fashion-mnist) and batching.
#include "qforge/data/fashion_mnist.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "qforge/data/idx.h"

namespace qforge::data {
namespace {

constexpr int64_t kSide = 28;
constexpr int64_t kClasses = 10;

// Returns "<dir>/<base>.gz" if present, else "<dir>/<base>" if present; throws otherwise.
std::string FindFile(const std::string& dir, const std::string& base) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const std::string& name : {base + ".gz", base}) {
    fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  throw Error("dataset-fashion-mnist not installed: run scripts/setup.sh (missing " +
              (fs::path(dir) / (base + ".gz")).string() + ")");
}

}  // namespace

const std::array<std::string_view, 10>& FashionMnistClassNames() {
  static const std::array<std::string_view, 10> kNames = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return kNames;
}

LabeledImages LoadFashionMnist(Split split, const std::string& dir, int64_t limit) {
  const std::string prefix = split == Split::kTest ? "t10k" : "train";
  const std::string image_path = FindFile(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = FindFile(dir, prefix + "-labels-idx1-ubyte");
  Tensor raw_images = ReadIdx(image_path);
  Tensor raw_labels = ReadIdx(label_path);
  if (raw_images.dtype() != DType::kU8 || raw_images.rank() != 3 || raw_images.dim(1) != kSide ||
      raw_images.dim(2) != kSide)
    throw Error("bad Fashion-MNIST image file '" + image_path + "': expected u8 [N, 28, 28], got " +
                std::string(DTypeName(raw_images.dtype())) + " " +
                ShapeToString(raw_images.shape()));
  if (raw_labels.dtype() != DType::kU8 || raw_labels.rank() != 1)
    throw Error("bad Fashion-MNIST label file '" + label_path + "': expected u8 [N], got " +
                std::string(DTypeName(raw_labels.dtype())) + " " +
                ShapeToString(raw_labels.shape()));
  if (raw_labels.dim(0) != raw_images.dim(0))
    throw Error("Fashion-MNIST files disagree: " + std::to_string(raw_images.dim(0)) +
                " images in '" + image_path + "' but " + std::to_string(raw_labels.dim(0)) +
                " labels in '" + label_path + "'");
  int64_t n = raw_images.dim(0);
  if (limit >= 0) n = std::min(n, limit);

  LabeledImages out;
  out.images = Tensor(DType::kF32, {n, 1, kSide, kSide});
  out.labels = Tensor(DType::kI64, {n});
  const uint8_t* src = raw_images.data<uint8_t>();
  float* dst = out.images.data<float>();
  // Raw pixels scaled to [0, 1]; any mean/std normalization belongs to the model.
  for (int64_t i = 0; i < n * kSide * kSide; ++i) dst[i] = static_cast<float>(src[i]) / 255.0f;
  const uint8_t* lab = raw_labels.data<uint8_t>();
  int64_t* lab_out = out.labels.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (lab[i] >= kClasses)
      throw Error("bad Fashion-MNIST label file '" + label_path + "': label " +
                  std::to_string(lab[i]) + " at index " + std::to_string(i) + " is outside 0..9");
    lab_out[i] = lab[i];
  }
  return out;
}

Tensor SliceRows(const Tensor& t, int64_t begin, int64_t end) {
  if (t.rank() < 1 || begin < 0 || end < begin || end > t.dim(0))
    throw Error("SliceRows: rows [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") out of range for shape " + ShapeToString(t.shape()));
  Shape shape = t.shape();
  shape[0] = end - begin;
  Tensor out(t.dtype(), shape);
  const size_t row_bytes = t.dim(0) ? t.nbytes() / static_cast<size_t>(t.dim(0)) : 0;
  if (out.nbytes())
    std::memcpy(out.raw(), static_cast<const uint8_t*>(t.raw()) + row_bytes * begin, out.nbytes());
  return out;
}

BatchIterator::BatchIterator(const LabeledImages& data, int64_t batch_size, int64_t limit)
    : data_(data), batch_size_(batch_size) {
  if (batch_size < 1)
    throw Error("batch size must be at least 1, got " + std::to_string(batch_size));
  end_ = data.size();
  if (limit >= 0) end_ = std::min(end_, limit);
}

bool BatchIterator::Next(Batch& batch) {
  if (next_ >= end_) return false;
  const int64_t stop = std::min(end_, next_ + batch_size_);
  batch.offset = next_;
  batch.images = SliceRows(data_.images, next_, stop);
  batch.labels = SliceRows(data_.labels, next_, stop);
  next_ = stop;
  return true;
}

}  // namespace qforge::data
