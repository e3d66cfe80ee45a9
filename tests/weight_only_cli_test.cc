// `qforge quantize --method weight-only` end to end on the bundled MLP and ViT: node report,
// sizes, weight-error table, Fashion-MNIST accuracy of the int8 / int4 (group 32) results against
// fp32 (full test set), clean errors; and ONNX Runtime running the exported com.microsoft
// MatMulNBits models agrees with qforge (skipped when tools/ort/node_modules is not installed).
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
#include "qforge/onnx/qf_file.h"

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

class WeightOnlyCli : public cli_test::ScratchDirTest {
 protected:
  WeightOnlyCli() : ScratchDirTest("qf_weight_only_cli") {}

  double Top1(const std::string& model) const { return cli_test::EvalTop1(model, dir_); }

  nlohmann::json Quantize(const std::string& model, const std::string& out, int bits,
                          std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {"quantize",    Model(model), "--method",
                                     "weight-only", "--bits",     std::to_string(bits),
                                     "-o",          out,          "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    Result r = Run(args);
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  }
};

// Checks the report of a weight-only run: every MatMul / Gemm with constant weights quantized,
// activation x activation MatMuls kept with the reason, errors measured, sizes consistent.
void CheckReport(const nlohmann::json& j, int expect_quantized, double min_sqnr) {
  ASSERT_TRUE(j.is_object());
  int quantized = 0;
  for (const auto& n : j["nodes"]) {
    if (n["quantized"].get<bool>()) {
      ++quantized;
      EXPECT_NE(n["reason"].get<std::string>().find("MatMulNBits"), std::string::npos);
    } else {
      EXPECT_NE(n["reason"].get<std::string>().find("not a constant"), std::string::npos)
          << n.dump();
    }
  }
  EXPECT_EQ(quantized, expect_quantized);
  EXPECT_EQ(j["quantized_nodes"], expect_quantized);
  ASSERT_EQ(j["layers"].size(), static_cast<size_t>(expect_quantized));
  double last = -1e9;
  for (const auto& l : j["layers"]) {
    EXPECT_GE(l["sqnr_db"].get<double>(), last);  // worst first
    last = l["sqnr_db"];
    EXPECT_GT(last, min_sqnr) << l.dump();
    EXPECT_EQ(l["count"].get<int64_t>(), l["N"].get<int64_t>() * l["K"].get<int64_t>());
  }
}

TEST_F(WeightOnlyCli, MlpInt4AndInt8AccuracyAndSize) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const nlohmann::json q4 = Quantize("fmnist_mlp", Tmp("mlp4.qf"), 4, {"--group-size", "32"});
  CheckReport(q4, 3, 15);
  EXPECT_EQ(q4["format"], "qf");
  // int4 group 32 with fp16 scales: at most 16% of the fp32 file.
  EXPECT_LE(q4["sizes"]["ratio"].get<double>(), 0.16);
  EXPECT_EQ(q4["sizes"]["quantized_bytes"].get<int64_t>(),
            static_cast<int64_t>(fs::file_size(Tmp("mlp4.qf"))));
  const nlohmann::json o4 = Quantize("fmnist_mlp", Tmp("mlp4.onnx"), 4);
  EXPECT_LE(o4["sizes"]["ratio"].get<double>(), 0.16);
  const ir::Graph g = onnx_io::LoadModel(Tmp("mlp4.onnx"));
  int nbits = 0;
  for (const auto& n : g.nodes) nbits += n.op_type == "MatMulNBits" && n.domain == "com.microsoft";
  EXPECT_EQ(nbits, 3);
  const nlohmann::json q8 = Quantize("fmnist_mlp", Tmp("mlp8.qf"), 8, {"--group-size", "128"});
  CheckReport(q8, 3, 35);

  const double fp32 =
      89.45;  // qforge eval models/fmnist_mlp.onnx (tests/dynamic_quantize_cli_test)
  EXPECT_NEAR(Top1(Tmp("mlp4.qf")), fp32, 1.5);
  EXPECT_NEAR(Top1(Tmp("mlp4.onnx")), fp32, 1.5);
  EXPECT_NEAR(Top1(Tmp("mlp8.qf")), fp32, 0.1);
}

TEST_F(WeightOnlyCli, VitInt4AndInt8Accuracy) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const nlohmann::json q4 = Quantize("fmnist_vit", Tmp("vit4.qf"), 4);
  CheckReport(q4, 9, 15);  // 8 MatMul + the head Gemm; the 4 attention MatMuls stay
  // The Linear weights themselves: 4 bits + an fp16 scale per 32 = 14.1% of fp32.
  EXPECT_LE(q4["sizes"]["weights_ratio"].get<double>(), 0.145);
  const nlohmann::json q8 = Quantize("fmnist_vit", Tmp("vit8.qf"), 8, {"--scale-dtype", "fp32"});
  CheckReport(q8, 9, 35);
  const double fp32 = 87.73;  // qforge eval models/fmnist_vit.onnx
  EXPECT_NEAR(Top1(Tmp("vit4.qf")), fp32, 1.5);
  EXPECT_NEAR(Top1(Tmp("vit8.qf")), fp32, 0.1);
}

TEST_F(WeightOnlyCli, TextReportAndCleanErrors) {
  const std::string mlp = Model("fmnist_mlp");
  Result r = Run({"quantize", mlp, "--method", "weight-only", "-o", Tmp("a.qf"),
                  "--asymmetric-weights", "--group-size", "64"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("int4 weights per group of 64 (asymmetric"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("per-layer weight error"), std::string::npos);
  EXPECT_NE(r.out.find("fc1.weight"), std::string::npos);
  EXPECT_NE(r.out.find("% of fp32"), std::string::npos);
  auto expect_error = [&](std::vector<std::string> args, const std::string& needle) {
    Result e = Run(args);
    EXPECT_EQ(e.code, 1) << e.err;
    EXPECT_NE(e.err.find("qforge: error:"), std::string::npos) << e.err;
    EXPECT_NE(e.err.find(needle), std::string::npos) << e.err;
  };
  const std::vector<std::string> base = {"quantize", mlp, "--method", "weight-only"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  expect_error(with({"--bits", "3", "-o", Tmp("e1.qf")}), "--bits");
  expect_error(with({"--group-size", "48", "-o", Tmp("e2.qf")}), "--group-size");
  expect_error(with({"--scale-dtype", "bf16", "-o", Tmp("e3.qf")}), "--scale-dtype");
  expect_error(with({"-o", Tmp("e4.txt")}), ".qf");
  expect_error(with({"--exclude", "nope", "-o", Tmp("e5.qf")}), "nope");
  for (const char* f : {"e1.qf", "e2.qf", "e3.qf", "e4.txt", "e5.qf"})
    EXPECT_FALSE(fs::exists(Tmp(f))) << f;
}

// qforge and ONNX Runtime on an exported MatMulNBits model, 256 test images. qforge's kernels
// round the activations (int8 per row for 4-bit weights, int16 for 8-bit), ONNX Runtime's do
// not (or differently), so the logits differ by that rounding: within `rel` of the logits' range,
// and almost every predicted class agrees.
void ExpectOrtAgrees(const std::string& model, const fs::path& dir, const std::string& tag,
                     float rel) {
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
  const float range = *std::max_element(a.begin(), a.end()) - *std::min_element(a.begin(), a.end());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LE(worst, rel * range) << tag << ": worst logit difference " << worst << ", range "
                                << range;
  const int64_t n = q.dim(0), c = q.dim(1);
  int same = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto argmax = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + i * c, v.begin() + (i + 1) * c) - (v.begin() + i * c);
    };
    same += argmax(a) == argmax(b);
  }
  EXPECT_GE(same, n - 3) << tag;
}

TEST_F(WeightOnlyCli, OnnxRuntimeRunsTheMatMulNBitsExport) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  if (!fs::exists(Root() / "tools" / "ort" / "node_modules" / "onnxruntime-node"))
    GTEST_SKIP() << "onnxruntime-node not installed (scripts/ort_setup.sh)";
  if (std::system("node --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "node not on PATH";
  for (const char* m : {"fmnist_mlp", "fmnist_vit"}) {
    for (int bits : {4, 8}) {
      const std::string tag = std::string(m) + "_" + std::to_string(bits);
      ASSERT_TRUE(Quantize(m, Tmp(tag + ".onnx"), bits,
                           bits == 8 ? std::vector<std::string>{"--asymmetric-weights"}
                                     : std::vector<std::string>{})
                      .is_object());
      ExpectOrtAgrees(Tmp(tag + ".onnx"), dir_, tag, bits == 4 ? 0.02f : 0.001f);
    }
  }
}

}  // namespace
}  // namespace qforge
