// `qforge qat` end to end on a few Fashion-MNIST images: the summary table, the written .qf /
// .onnx running on the integer runtime, and clean errors that leave no output file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "qforge/data/fashion_mnist.h"
#include "qforge/onnx/onnx.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;

fs::path Root() { return fs::path(__FILE__).parent_path().parent_path(); }

std::string QforgeBinary() {
  if (const char* env = std::getenv("QFORGE_BIN")) return env;
  return (fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "src/cli/qforge")
      .string();
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Result {
  int code = -1;
  std::string out, err;
};

class QatCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("qf_qat_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Tmp(const std::string& n) const { return (dir_ / n).string(); }

  Result Run(const std::vector<std::string>& args) const {
    std::string cmd = "'" + QforgeBinary() + "'";
    for (const std::string& a : args) cmd += " '" + a + "'";
    cmd += " >'" + Tmp("out.txt") + "' 2>'" + Tmp("err.txt") + "'";
    const int rc = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = ReadAll(Tmp("out.txt"));
    r.err = ReadAll(Tmp("err.txt"));
    return r;
  }

  std::vector<std::string> Small(const std::string& out, const std::string& estimator) const {
    return {"qat",
            (Root() / "models/fmnist_cnn.onnx").string(),
            "--data",
            "fashion-mnist",
            "--limit",
            "128",
            "--eval-limit",
            "200",
            "--calib-samples",
            "64",
            "--estimator",
            estimator,
            "-o",
            out};
  }

  fs::path dir_;
};

bool HaveFashionMnist() {
  return fs::exists(fs::path(data::kFashionMnistDir) / "t10k-images-idx3-ubyte.gz") ||
         fs::exists(fs::path(data::kFashionMnistDir) / "t10k-images-idx3-ubyte");
}

TEST_F(QatCli, TrainsAndWritesRunnableModels) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  Result r = Run(Small(Tmp("m.qf"), "lsq"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("agreement %"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("W8A8"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("end of epoch"), std::string::npos) << r.err;  // progress on stderr
  ASSERT_TRUE(fs::exists(Tmp("m.qf")));
  Result e = Run({"eval", Tmp("m.qf"), "--data", "fashion-mnist", "--limit", "200"});
  EXPECT_EQ(e.code, 0) << e.err;

  std::vector<std::string> args = Small(Tmp("m.onnx"), "soft");
  args.insert(args.end(), {"--bits-w", "4", "--distill"});
  r = Run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("soft +distill"), std::string::npos) << r.out;
  const ir::Graph g = onnx_io::LoadModel(Tmp("m.onnx"));  // a standard QDQ model
  int dq = 0;
  for (const ir::Node& n : g.nodes) {
    EXPECT_TRUE(n.domain.empty()) << n.Describe();
    dq += n.op_type == "DequantizeLinear";
  }
  EXPECT_GT(dq, 4);
}

// --json: the summary with its settings; with --epochs 0 the exported model is the static PTQ
// model of the same calibration, so its accuracy equals the PTQ column exactly.
TEST_F(QatCli, JsonSummaryAndUntrainedEqualsPtq) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  std::vector<std::string> args = Small(Tmp("z.qf"), "ste");
  args.insert(args.end(), {"--epochs", "0", "--json", Tmp("z.json"), "--threads", "1"});
  Result r = Run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("PTQ %"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(ReadAll(Tmp("z.json")));
  EXPECT_EQ(j["estimator"], "ste");
  EXPECT_EQ(j["bits_w"], 8);
  EXPECT_EQ(j["epochs"], 0);
  EXPECT_EQ(j["images_per_epoch"], 128);
  EXPECT_EQ(j["steps"], 0);
  EXPECT_EQ(j["threads"], 1);
  EXPECT_EQ(j["test_images"], 200);
  EXPECT_GT(j["fp32"].get<double>(), 70.0);
  EXPECT_EQ(j["integer"].get<double>(), j["ptq"].get<double>());
  EXPECT_EQ(j["agreement"].get<double>(), 100.0);

  args = Small(Tmp("y.qf"), "lsq");
  args.insert(args.end(), {"--no-ptq", "--json", Tmp("y.json"), "--weight-decay", "0.01",
                           "--optimizer", "sgd", "--lr", "0.001"});
  r = Run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json k = nlohmann::json::parse(ReadAll(Tmp("y.json")));
  EXPECT_TRUE(k["ptq"].is_null());
  EXPECT_EQ(k["steps"], 2);
  EXPECT_EQ(k["weight_decay"].get<double>(), 0.01);
  EXPECT_EQ(k["optimizer"], "sgd");
  EXPECT_EQ(k["momentum"].get<double>(), 0.9);
}

// --freeze-bn-step, --val-images (held-out selection) and --distill-weight end to end, in the
// JSON summary; the model still runs on the integer runtime.
TEST_F(QatCli, BatchNormPhaseHeldOutSelectionAndLossMix) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  std::vector<std::string> args = Small(Tmp("v.qf"), "ste");
  args.insert(args.end(), {"--freeze-bn-step", "1", "--val-images", "100", "--val-every", "1",
                           "--distill-weight", "0.5", "--threads", "1", "--json", Tmp("v.json"),
                           "--freeze-observers-step", "1"});
  Result r = Run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("2 BatchNorms on batch statistics until step 1"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("held-out 100 training images"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("ste +distill 0.5"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(ReadAll(Tmp("v.json")));
  EXPECT_EQ(j["freeze_bn"], 1);
  EXPECT_EQ(j["freeze_observers"], 1);
  EXPECT_EQ(j["distill_weight"].get<double>(), 0.5);
  EXPECT_EQ(j["distill"], false);
  EXPECT_EQ(j["val_images"], 100);
  EXPECT_EQ(j["steps"], 2);
  ASSERT_EQ(j["val_history"].size(), 3u);  // start, step 1, step 2
  const int64_t sel = j["selected_step"].get<int64_t>();
  EXPECT_GE(sel, 0);
  EXPECT_LE(sel, 2);
  double best = 0;
  for (const auto& h : j["val_history"]) best = std::max(best, h[1].get<double>());
  EXPECT_EQ(j["val_selected"].get<double>(), best);
  EXPECT_GE(j["agreement"].get<double>(), 99.0);
  Result e = Run({"eval", Tmp("v.qf"), "--data", "fashion-mnist", "--limit", "200"});
  EXPECT_EQ(e.code, 0) << e.err;
}

TEST_F(QatCli, CleanErrors) {
  auto expect_error = [&](std::vector<std::string> args, const std::string& needle,
                          const std::string& out) {
    Result r = Run(args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("qforge: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(out)) << out;
  };
  expect_error(Small(Tmp("a.qf"), "magic"), "unknown QAT estimator 'magic'", Tmp("a.qf"));
  expect_error(Small(Tmp("b.txt"), "ste"), ".qf or .onnx", Tmp("b.txt"));
  std::vector<std::string> bits = Small(Tmp("c.qf"), "ste");
  bits.insert(bits.end(), {"--bits-w", "3"});
  expect_error(bits, "--bits-w must be 8, 4 or 2", Tmp("c.qf"));
  std::vector<std::string> opt = Small(Tmp("d.qf"), "ste");
  opt.insert(opt.end(), {"--optimizer", "adam"});
  expect_error(opt, "unknown optimizer 'adam'", Tmp("d.qf"));
  std::vector<std::string> mix = Small(Tmp("e.qf"), "ste");
  mix.insert(mix.end(), {"--distill", "--distill-weight", "0.5"});
  expect_error(mix, "--distill is --distill-weight 1", Tmp("e.qf"));
  std::vector<std::string> val = Small(Tmp("f.qf"), "ste");
  val.insert(val.end(), {"--val-images", "60000"});
  expect_error(val, "--val-images must be fewer than", Tmp("f.qf"));
}

}  // namespace
}  // namespace qforge
