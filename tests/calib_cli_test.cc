// `qforge calibrate` end to end: spawns the binary on the bundled model with Fashion-MNIST, an
// image folder and a .npy folder; checks determinism, --merge, --json and error exits.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC  // private copy: other test files may include it too
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_test_util.h"
#include "qforge/calib/calib_table.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/data/npy.h"
#include "qforge/onnx/onnx.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

using cli_test::QforgeBinary;
const std::string kModel = (cli_test::Root() / "models" / "fmnist_cnn.onnx").string();

using cli_test::ReadAll;

class CalibrateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qf_calib_cli_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  struct Result {
    int code = -1;
    std::string out, err;
  };
  Result Run(const std::string& args) {
    const std::string cmd =
        QforgeBinary() + " " + args + " >" + Path("stdout") + " 2>" + Path("stderr");
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadAll(Path("stdout"));
    r.err = ReadAll(Path("stderr"));
    return r;
  }
  static bool HaveFashionMnist() { return cli_test::HaveFashionMnist(); }
  fs::path dir_;
};

TEST_F(CalibrateCli, FashionMnistIsDeterministicAndMerges) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const std::string common =
      "calibrate " + kModel + " --data fashion-mnist --samples 40 --batch 16 ";
  Result r = Run(common + "--method percentile --seed 1 --out " + Path("a.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("/conv1/Conv_output_0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("calibrated 15 tensors on 40 samples"), std::string::npos) << r.out;
  ASSERT_EQ(Run(common + "--method percentile --seed 1 --out " + Path("a2.json")).code, 0);
  EXPECT_EQ(ReadAll(Path("a.json")), ReadAll(Path("a2.json")));  // same data, order, seed
  ASSERT_EQ(Run(common + "--method percentile --seed 2 --out " + Path("b.json")).code, 0);
  EXPECT_NE(ReadAll(Path("a.json")), ReadAll(Path("b.json")));

  const calib::CalibTable a = calib::LoadCalibTable(Path("a.json"));
  EXPECT_EQ(a.samples, 40);
  EXPECT_EQ(a.method, "percentile");
  const calib::CalibEntry* in = a.Find("input");
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->stats.count, 40 * 784);
  EXPECT_GE(in->stats.min, 0);
  EXPECT_LE(in->stats.max, 1);
  ASSERT_NE(a.Find("logits"), nullptr);

  r = Run("calibrate --merge " + Path("a.json") + " " + Path("b.json") + " --json --out " +
          Path("m.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["samples"], 80);
  const calib::CalibTable m = calib::LoadCalibTable(Path("m.json"));
  EXPECT_EQ(m.Find("input")->stats.count, 80 * 784);
  EXPECT_EQ(m.Find("logits")->stats.max,
            std::max(a.Find("logits")->stats.max,
                     calib::LoadCalibTable(Path("b.json")).Find("logits")->stats.max));
}

TEST_F(CalibrateCli, EveryMethodRuns) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  for (const char* m : {"minmax", "moving_average", "percentile", "entropy", "mse"}) {
    const Result r = Run("calibrate " + kModel +
                         " --data fashion-mnist --samples 16 --json --activation-dtype int8 "
                         "--symmetric --method " +
                         m + " --out " + Path("c.json"));
    ASSERT_EQ(r.code, 0) << m << ": " << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["tensors"].size(), 15u);
    EXPECT_EQ(j["tensors"][0]["tensor"], "input");  // graph order
    for (const auto& t : j["tensors"]) {
      EXPECT_EQ(t["observer"], m);
      EXPECT_EQ(t["zero_point"], 0);
      EXPECT_LE(t["range"][0].get<double>(), 0);
      EXPECT_GE(t["range"][1].get<double>(), 0);
    }
  }
}

TEST_F(CalibrateCli, ImageAndNpyFolders) {
  // Ten 20x30 RGB PNGs: converted to the model's 1 channel and resized to 28x28.
  fs::create_directories(dir_ / "img");
  for (int k = 0; k < 10; ++k) {
    std::vector<unsigned char> px(20 * 30 * 3);
    for (size_t i = 0; i < px.size(); ++i) px[i] = (i / 3) % 30 < 15 ? 0 : 255;  // black | white
    const std::string p = (dir_ / "img" / ("i" + std::to_string(k) + ".png")).string();
    ASSERT_NE(stbi_write_png(p.c_str(), 30, 20, 3, px.data(), 30 * 3), 0);
  }
  Result r = Run("calibrate " + kModel + " --data " + Path("img") +
                 " --mean 0.5 --std 0.25 --method minmax --out " + Path("i.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  calib::CalibTable t = calib::LoadCalibTable(Path("i.json"));
  EXPECT_EQ(t.samples, 10);
  EXPECT_EQ(t.Find("input")->stats.count, 10 * 784);
  EXPECT_FLOAT_EQ(t.Find("input")->stats.min, -2.0f);  // (0 - 0.5) / 0.25
  EXPECT_FLOAT_EQ(t.Find("input")->stats.max, 2.0f);   // (1 - 0.5) / 0.25

  // .npy samples, with and without the leading batch dimension of 1.
  fs::create_directories(dir_ / "npy");
  for (int k = 0; k < 6; ++k) {
    std::vector<float> v(784, 0.1f * k);
    const Shape shape = k % 2 ? Shape{1, 1, 28, 28} : Shape{1, 28, 28};
    data::WriteNpy(Path("npy/s" + std::to_string(k) + ".npy"), Tensor::FromVector(shape, v));
  }
  r = Run("calibrate " + kModel + " --data " + Path("npy") + " --method mse --out " +
          Path("n.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  t = calib::LoadCalibTable(Path("n.json"));
  EXPECT_EQ(t.samples, 6);
  EXPECT_FLOAT_EQ(t.Find("input")->stats.max, 0.5f);
  // A sample of the wrong shape is an error naming the file.
  data::WriteNpy(Path("npy/z.npy"), Tensor::FromVector<float>({3}, {1, 2, 3}));
  r = Run("calibrate " + kModel + " --data " + Path("npy") + " --out " + Path("n2.json"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("z.npy"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(Path("n2.json")));
}

TEST_F(CalibrateCli, SeveralInputsFromNpySubfolders) {
  // y = a + b with two f32 [N, 3] inputs; samples in npy/a/*.npy and npy/b/*.npy.
  ir::Graph g;
  g.name = "two_inputs";
  g.opset_imports[""] = 17;
  for (const char* name : {"a", "b"})
    g.inputs.push_back({name, DType::kF32, true, {ir::Dim::Symbol("N"), ir::Dim::Known(3)}});
  g.nodes.push_back({"add", "Add", "", {"a", "b"}, {"y"}, {}});
  g.outputs.push_back({"y", DType::kF32, true, {ir::Dim::Symbol("N"), ir::Dim::Known(3)}});
  onnx_io::SaveModel(g, Path("two.onnx"));
  fs::create_directories(dir_ / "npy" / "a");
  fs::create_directories(dir_ / "npy" / "b");
  for (int k = 0; k < 5; ++k) {
    const std::string f = std::to_string(k) + ".npy";
    data::WriteNpy(Path("npy/a/" + f), Tensor::FromVector<float>({3}, {1.0f * k, 0, -1}));
    data::WriteNpy(Path("npy/b/" + f), Tensor::FromVector<float>({3}, {10.0f * k, 0, -2}));
  }
  Result r = Run("calibrate " + Path("two.onnx") + " --data " + Path("npy") + " --batch 2 -o " +
                 Path("t.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  const calib::CalibTable t = calib::LoadCalibTable(Path("t.json"));
  EXPECT_EQ(t.samples, 5);
  EXPECT_EQ(t.Find("a")->stats.max, 4);
  EXPECT_EQ(t.Find("b")->stats.max, 40);
  EXPECT_EQ(t.Find("y")->stats.max, 44);  // a and b paired by file index
  EXPECT_EQ(t.Find("y")->stats.min, -3);
  EXPECT_EQ(t.Find("y")->batches, 3);  // 2 + 2 + 1
  // A missing subfolder is an error naming the input.
  fs::remove_all(dir_ / "npy" / "b");
  r = Run("calibrate " + Path("two.onnx") + " --data " + Path("npy") + " -o " + Path("t2.json"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("model input 'b'"), std::string::npos) << r.err;
}

TEST_F(CalibrateCli, Errors) {
  Result r = Run("calibrate " + kModel + " --data fashion-mnist --method foo --out " + Path("x"));
  EXPECT_EQ(r.code, 2) << r.err;
  r = Run("calibrate " + kModel + " --data fashion-mnist");  // no --out
  EXPECT_EQ(r.code, 2) << r.err;
  r = Run("calibrate " + kModel + " --data " + Path("nope") + " --out " + Path("x"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
  std::ofstream(Path("bad.json")) << "{\"format\": \"qforge-calibration-table\", \"version\": 7}";
  r = Run("calibrate --merge " + Path("bad.json") + " --out " + Path("m.json"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("bad.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("version 7"), std::string::npos) << r.err;
  r = Run("calibrate " + kModel + " --merge " + Path("bad.json") + " --out " + Path("m.json"));
  EXPECT_EQ(r.code, 1);
  EXPECT_FALSE(fs::exists(Path("m.json")));
  r = Run("calibrate --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("Example"), std::string::npos);
}

}  // namespace
}  // namespace qforge
