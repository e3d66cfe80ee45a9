// `qforge quantize --method dynamic` end to end on the bundled MLP and ViT: node report, sizes,
// error table, Fashion-MNIST accuracy of the .onnx and .qf results against fp32 (full test set),
// per-row granularity, clean errors; and ONNX Runtime running the exported standard-ONNX dynamic
// model agrees with qforge (skipped when tools/ort/node_modules is not installed).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli_test_util.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/data/npy.h"
#include "qforge/onnx/onnx.h"

namespace qforge {
namespace {

namespace fs = std::filesystem;
using cli_test::HaveFashionMnist;
using cli_test::QforgeBinary;
using cli_test::Quote;
using cli_test::ReadAll;
using cli_test::Result;
using cli_test::Root;
using cli_test::RunQforge;

// fp32 top-1 % on the 10 000 test images (`qforge eval models/fmnist_*.onnx --data
// fashion-mnist`, models/README.md); tests/models_test.cc checks the fp32 models themselves.
constexpr double kFp32Mlp = 89.45, kFp32Vit = 87.73;

class DynamicCli : public cli_test::ScratchDirTest {
 protected:
  DynamicCli() : ScratchDirTest("qf_dynamic_cli") {}

  // Top-1 % from `qforge eval --json` on the whole Fashion-MNIST test set.
  double Top1(const std::string& model) const { return cli_test::EvalTop1(model, dir_); }

  nlohmann::json Quantize(const std::string& model, const std::string& out,
                          std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {"quantize", Model(model), "--method", "dynamic",
                                     "-o",       out,          "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    Result r = Run(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  }
};

TEST_F(DynamicCli, MlpReportAndAccuracy) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const nlohmann::json j =
      Quantize("fmnist_mlp", Tmp("mlp.onnx"), {"--data", "fashion-mnist", "--samples", "128"});
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["format"], "onnx-dynamic");
  int gemms = 0;
  for (const auto& n : j["nodes"]) {
    if (n["op"] == "Gemm") {
      EXPECT_TRUE(n["quantized"].get<bool>()) << n.dump();
      ++gemms;
    } else {
      EXPECT_FALSE(n["quantized"].get<bool>()) << n.dump();
      EXPECT_EQ(n["reason"], "stays fp32 (dynamic quantization covers MatMul, Gemm, LSTM, GRU)");
    }
  }
  EXPECT_EQ(gemms, 3);
  EXPECT_EQ(j["quantized_nodes"], 3);
  // int8 weights: about a quarter of the fp32 file.
  EXPECT_LT(j["sizes"]["ratio"].get<double>(), 0.3);
  EXPECT_EQ(j["sizes"]["quantized_bytes"].get<int64_t>(),
            static_cast<int64_t>(fs::file_size(Tmp("mlp.onnx"))));
  // 3 weights + 3 layer outputs, worst first, all measured.
  ASSERT_EQ(j["layers"].size(), 6u);
  double last = -1e9;
  for (const auto& l : j["layers"]) {
    EXPECT_GE(l["sqnr_db"].get<double>(), last);
    last = l["sqnr_db"];
    EXPECT_GT(last, 20) << l.dump();
  }
  // The standard ONNX ops, no qforge-only ones.
  const ir::Graph g = onnx_io::LoadModel(Tmp("mlp.onnx"));
  int dql = 0, mmi = 0;
  for (const auto& n : g.nodes) {
    EXPECT_TRUE(n.domain.empty()) << n.Describe();
    dql += n.op_type == "DynamicQuantizeLinear";
    mmi += n.op_type == "MatMulInteger";
  }
  EXPECT_EQ(dql, 3);
  EXPECT_EQ(mmi, 3);

  ASSERT_EQ(Quantize("fmnist_mlp", Tmp("mlp.qf"))["format"], "qf");
  const double fp32 = kFp32Mlp;
  EXPECT_NEAR(Top1(Tmp("mlp.onnx")), fp32, 0.3);
  EXPECT_NEAR(Top1(Tmp("mlp.qf")), fp32, 0.3);
}

TEST_F(DynamicCli, VitAccuracyPerTensorAndPerRow) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const nlohmann::json j = Quantize("fmnist_vit", Tmp("vit.onnx"));
  ASSERT_TRUE(j.is_object());
  int matmuls = 0, act_act = 0;
  for (const auto& n : j["nodes"]) {
    const std::string op = n["op"];
    if (op == "MatMul" || op == "Gemm") {
      EXPECT_TRUE(n["quantized"].get<bool>()) << n.dump();
      ++matmuls;
      act_act += n["reason"].get<std::string>().rfind("activations x activations", 0) == 0;
    } else if (op == "Conv") {
      EXPECT_EQ(n["reason"], "Conv not in --ops (opt-in: dynamic conv loses accuracy)");
    } else {
      EXPECT_FALSE(n["quantized"].get<bool>()) << n.dump();
    }
  }
  EXPECT_EQ(matmuls, 13);
  EXPECT_EQ(act_act, 4);  // Q K^T and attention x V in each of the 2 layers
  const nlohmann::json row =
      Quantize("fmnist_vit", Tmp("vit_row.qf"), {"--granularity", "per-row"});
  EXPECT_EQ(row["granularity"], "per-row");

  const double fp32 = kFp32Vit;
  EXPECT_NEAR(Top1(Tmp("vit.onnx")), fp32, 0.3);
  EXPECT_NEAR(Top1(Tmp("vit_row.qf")), fp32, 0.3);
}

TEST_F(DynamicCli, ConvOptInAndCleanErrors) {
  auto expect_error = [&](std::vector<std::string> args, const std::string& needle) {
    Result r = Run(args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("qforge: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  };
  const std::string vit = Model("fmnist_vit");
  expect_error(
      {"quantize", vit, "--method", "dynamic", "-o", Tmp("e1.onnx"), "--granularity", "per-row"},
      "no standard ONNX form");
  expect_error({"quantize", vit, "--method", "dynamic", "-o", Tmp("e2.onnx"), "--granularity",
                "per-channel"},
               "per-channel");
  expect_error({"quantize", vit, "--method", "dynamic", "-o", Tmp("e3.onnx"), "--ops", "Softmax"},
               "Softmax");
  expect_error({"quantize", vit, "--method", "dynamic", "-o", Tmp("e4.txt")}, ".qf");
  expect_error({"quantize", vit, "--method", "dynamic", "-o", Tmp("e5.onnx"), "--exclude", "nope"},
               "nope");
  for (const char* f : {"e1.onnx", "e2.onnx", "e3.onnx", "e4.txt", "e5.onnx"})
    EXPECT_FALSE(fs::exists(Tmp(f))) << f;
  // --ops Conv quantizes the patch embedding too (ConvInteger), and the result runs.
  const nlohmann::json j =
      Quantize("fmnist_vit", Tmp("conv.qf"), {"--ops", "MatMul", "Gemm", "Conv"});
  for (const auto& n : j["nodes"]) {
    if (n["op"] == "Conv") {
      EXPECT_TRUE(n["quantized"].get<bool>());
    }
  }
  const std::string x = (Root() / "models" / "fmnist_vit.sample_input.npy").string();
  EXPECT_EQ(Run({"run", Tmp("conv.qf"), "--input", "input=" + x, "--output", Tmp("o")}).code, 0);
  // --help says why Conv is opt-in.
  Result h = Run({"quantize", "--help"});
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("dynamic conv is known to lose accuracy"), std::string::npos);
}

// qforge and ONNX Runtime on the exported dynamic model, 256 test images: every logit agrees
// within one uint8 step of the logits' own range ((max - min) / 255, the step a
// DynamicQuantizeLinear of the output would use), and almost every predicted class agrees.
void ExpectOrtAgrees(const std::string& model, const fs::path& dir, const std::string& tag) {
  const fs::path ort = Root() / "tools" / "ort";
  const auto tmp = [&](const std::string& n) { return (dir / n).string(); };
  const data::LabeledImages test =
      data::LoadFashionMnist(data::Split::kTest, std::string(data::kFashionMnistDir), 256);
  data::WriteNpy(tmp("x.npy"), test.images);
  const std::string qf_out = tmp(tag + "_qf"), ort_out = tmp(tag + "_ort");
  std::string cmd = Quote(QforgeBinary()) + " run " + Quote(model) +
                    " --input input=" + Quote(tmp("x.npy")) + " --output " + Quote(qf_out) +
                    " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  cmd = "node " + Quote((ort / "run.js").string()) + " " + Quote(model) +
        " --input input=" + Quote(tmp("x.npy")) + " --output " + Quote(ort_out) + " >/dev/null 2>" +
        Quote(tmp("ort_err.txt"));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << ReadAll(tmp("ort_err.txt"));
  const Tensor q = data::ReadNpy(qf_out + "/logits.npy");
  const Tensor o = data::ReadNpy(ort_out + "/logits.npy");
  ASSERT_EQ(q.shape(), o.shape());
  const auto a = q.ToFloatVector(), b = o.ToFloatVector();
  const float lo = std::min(0.0f, *std::min_element(a.begin(), a.end()));
  const float hi = std::max(0.0f, *std::max_element(a.begin(), a.end()));
  const float step = (hi - lo) / 255.0f;
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LE(worst, step) << tag << ": worst logit difference " << worst << ", step " << step;
  const int64_t n = q.dim(0), c = q.dim(1);
  int same = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto argmax = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + i * c, v.begin() + (i + 1) * c) - (v.begin() + i * c);
    };
    same += argmax(a) == argmax(b);
  }
  EXPECT_GE(same, n - 2) << tag;
}

TEST_F(DynamicCli, OnnxRuntimeAgreesOnTheExport) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  if (!fs::exists(Root() / "tools" / "ort" / "node_modules" / "onnxruntime-node"))
    GTEST_SKIP() << "onnxruntime-node not installed (scripts/ort_setup.sh)";
  if (std::system("node --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "node not on PATH";
  for (const char* m : {"fmnist_mlp", "fmnist_vit"}) {
    ASSERT_TRUE(Quantize(m, Tmp(std::string(m) + ".onnx")).is_object());
    ExpectOrtAgrees(Tmp(std::string(m) + ".onnx"), dir_, m);
  }
}

}  // namespace
}  // namespace qforge
