// Bundled models vs ONNX Runtime: every models/NAME.onnx that has a models/NAME.ort_predictions.txt
// (ONNX Runtime's class for each Fashion-MNIST test image, made by tools/ort/eval_fmnist.js) is
// evaluated by `qforge eval` in fp32 on the first 1000 test images; the classes must be the same.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli_test_util.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using cli_test::QforgeBinary;
using cli_test::RunQforge;

constexpr int kImages = 1000;

fs::path ModelsDir() { return cli_test::Root() / "models"; }

// Bundled models with ONNX Runtime predictions, sorted by name.
std::vector<std::string> BundledModels() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ModelsDir())) {
    if (e.path().extension() != ".onnx") continue;
    const std::string name = e.path().stem().string();
    if (fs::exists(ModelsDir() / (name + ".ort_predictions.txt"))) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// The first `n` integers of a one-per-line predictions file (fewer if the file is shorter).
std::vector<int> ReadPredictions(const fs::path& p, int n) {
  std::ifstream in(p);
  std::vector<int> out;
  for (int v; static_cast<int>(out.size()) < n && in >> v;) out.push_back(v);
  return out;
}

TEST(BundledModels, TheCnnAndTheIssueModelsAreThere) {
  const std::vector<std::string> names = BundledModels();
  for (const char* want : {"fmnist_cnn", "fmnist_mobilenetv2", "fmnist_mlp", "fmnist_vit",
                           "fmnist_lstm", "fmnist_gru"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end())
        << "models/" << want << ".onnx or its .ort_predictions.txt is missing";
}

class BundledModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(BundledModelTest, Fp32EvalMatchesOnnxRuntime) {
  if (!cli_test::HaveFashionMnist()) GTEST_SKIP() << "no Fashion-MNIST data";
  ASSERT_TRUE(fs::exists(QforgeBinary())) << "qforge binary not found at " << QforgeBinary();
  const std::string name = GetParam();
  const std::vector<int> want =
      ReadPredictions(ModelsDir() / (name + ".ort_predictions.txt"), kImages);
  ASSERT_EQ(want.size(), static_cast<size_t>(kImages)) << name << ".ort_predictions.txt is short";

  const fs::path dir =
      fs::temp_directory_path() / ("qf_models_test_" + std::to_string(::getpid()) + "_" + name);
  fs::create_directories(dir);
  const fs::path pred = dir / "pred.txt";
  // Batch 64 does not divide 1000: the last, short batch is exercised too.
  const cli_test::Result r = RunQforge(
      {"eval", (ModelsDir() / (name + ".onnx")).string(), "--data", "fashion-mnist", "--limit",
       std::to_string(kImages), "--batch", "64", "--predictions", pred.string()},
      dir);
  const std::vector<int> got = ReadPredictions(pred, kImages + 1);
  fs::remove_all(dir);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  const std::string log = r.out + r.err;
  ASSERT_EQ(got.size(), static_cast<size_t>(kImages)) << log;
  int mismatches = 0;
  for (int i = 0; i < kImages; ++i) {
    if (got[i] != want[i] && ++mismatches <= 10)
      ADD_FAILURE() << name << ": test image " << i << ": qforge says " << got[i]
                    << ", ONNX Runtime says " << want[i];
  }
  EXPECT_EQ(mismatches, 0) << name << ": " << mismatches << " of " << kImages
                           << " predictions differ from ONNX Runtime";
}

INSTANTIATE_TEST_SUITE_P(Models, BundledModelTest, ::testing::ValuesIn(BundledModels()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace qforge
