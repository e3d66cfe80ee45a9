// Tests for the Fashion-MNIST loader and the batch iterator, on synthetic and real files.
#include "qforge/data/fashion_mnist.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "qforge/data/idx.h"

namespace qforge::data {
namespace {

namespace fs = std::filesystem;

class FashionMnistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qf_fmnist_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a synthetic test split with n images (pixel = (i + p) % 256) and labels i % 10.
  void WriteSplit(int64_t n, int64_t n_labels, uint8_t bad_label_at = 255) {
    Tensor images(DType::kU8, {n, 28, 28});
    for (int64_t i = 0; i < n; ++i)
      for (int64_t p = 0; p < 784; ++p)
        images.data<uint8_t>()[i * 784 + p] = static_cast<uint8_t>((i + p) % 256);
    Tensor labels(DType::kU8, {n_labels});
    for (int64_t i = 0; i < n_labels; ++i)
      labels.data<uint8_t>()[i] = i == bad_label_at ? 10 : static_cast<uint8_t>(i % 10);
    WriteIdx((dir_ / "t10k-images-idx3-ubyte").string(), images);
    WriteIdx((dir_ / "t10k-labels-idx1-ubyte").string(), labels);
  }
  std::string Dir() const { return dir_.string(); }

  fs::path dir_;
};

TEST_F(FashionMnistTest, LoadsSyntheticSplitScaledToUnitRange) {
  WriteSplit(5, 5);
  LabeledImages d = LoadFashionMnist(Split::kTest, Dir());
  ASSERT_EQ(d.size(), 5);
  EXPECT_EQ(d.images.shape(), (Shape{5, 1, 28, 28}));
  EXPECT_EQ(d.images.dtype(), DType::kF32);
  EXPECT_EQ(d.labels.dtype(), DType::kI64);
  const float* px = d.images.data<float>();
  EXPECT_FLOAT_EQ(px[0], 0.0f);
  EXPECT_FLOAT_EQ(px[255], 1.0f);
  EXPECT_FLOAT_EQ(px[2 * 784 + 10], 12.0f / 255.0f);
  EXPECT_EQ(d.labels.ToInt64Vector(), (std::vector<int64_t>{0, 1, 2, 3, 4}));
}

TEST_F(FashionMnistTest, LimitKeepsTheFirstImages) {
  WriteSplit(5, 5);
  LabeledImages d = LoadFashionMnist(Split::kTest, Dir(), 3);
  EXPECT_EQ(d.size(), 3);
  EXPECT_EQ(d.images.dim(0), 3);
  EXPECT_EQ(LoadFashionMnist(Split::kTest, Dir(), 100).size(), 5);
}

TEST_F(FashionMnistTest, MissingFilesSayHowToInstall) {
  try {
    LoadFashionMnist(Split::kTest, Dir() + "/nowhere");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("dataset-fashion-mnist not installed: run scripts/setup.sh"),
        std::string::npos)
        << e.what();
  }
  WriteSplit(5, 5);
  EXPECT_THROW(LoadFashionMnist(Split::kTrain, Dir()), Error);  // only the test split exists
}

TEST_F(FashionMnistTest, InconsistentFilesAreRejected) {
  WriteSplit(5, 4);
  EXPECT_THROW(LoadFashionMnist(Split::kTest, Dir()), Error);
  WriteSplit(5, 5, /*bad_label_at=*/3);
  try {
    LoadFashionMnist(Split::kTest, Dir());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label 10 at index 3"), std::string::npos) << e.what();
  }
  WriteIdx((dir_ / "t10k-images-idx3-ubyte").string(), Tensor(DType::kU8, {5, 28, 27}));
  EXPECT_THROW(LoadFashionMnist(Split::kTest, Dir()), Error);
}

TEST_F(FashionMnistTest, BatchIteratorCoversEveryRowOnce) {
  WriteSplit(10, 10);
  LabeledImages d = LoadFashionMnist(Split::kTest, Dir());
  BatchIterator it(d, 4);
  EXPECT_EQ(it.num_batches(), 3);
  std::vector<int64_t> sizes;
  std::vector<int64_t> seen_labels;
  for (Batch b; it.Next(b);) {
    sizes.push_back(b.size());
    EXPECT_EQ(b.images.shape(), (Shape{b.size(), 1, 28, 28}));
    // First pixel of row r is (r % 256) / 255.
    for (int64_t r = 0; r < b.size(); ++r)
      EXPECT_FLOAT_EQ(b.images.data<float>()[r * 784], (b.offset + r) / 255.0f);
    for (int64_t l : b.labels.ToInt64Vector()) seen_labels.push_back(l);
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
  EXPECT_EQ(seen_labels, d.labels.ToInt64Vector());

  BatchIterator limited(d, 4, 5);
  sizes.clear();
  for (Batch b; limited.Next(b);) sizes.push_back(b.size());
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 1}));
  EXPECT_THROW(BatchIterator(d, 0), Error);
}

// The real Debian data set (installed by scripts/setup.sh): 10000 test images, 1000 per class.
TEST(FashionMnistInstalled, TestSplitHasTenThousandBalancedImages) {
  LabeledImages d = LoadFashionMnist(Split::kTest);
  ASSERT_EQ(d.size(), 10000);
  std::vector<int> per_class(10, 0);
  for (int64_t l : d.labels.ToInt64Vector()) ++per_class[l];
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 1000) << "class " << c;
  float lo = 1, hi = 0;
  for (float v : d.images.span<float>()) lo = std::min(lo, v), hi = std::max(hi, v);
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
}

}  // namespace
}  // namespace qforge::data
