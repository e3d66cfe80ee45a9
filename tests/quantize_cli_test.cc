// `qforge quantize` end to end on the bundled model: calibrate -> quantize (.onnx QDQ and .qf)
// -> size, accuracy, node report, error table, clean errors; and ONNX Runtime running the
// exported QDQ model agrees with qforge's integer runtime within one output quantization step
// (skipped when tools/ort/node_modules is not installed: scripts/ort_setup.sh).
#include <gtest/gtest.h>
#include <unistd.h>

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

// One calibration and one quantization shared by the tests (they take a few seconds).
class QuantizeCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("qf_quantize_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    if (!HaveFashionMnist()) return;
    Result c = Run({"calibrate", Model(), "--data", "fashion-mnist", "--samples", "1000", "-o",
                    Tmp("calib.json")});
    ASSERT_EQ(c.code, 0) << c.err;
    Result q = Run({"quantize", Model(), "--method", "static", "--calib", Tmp("calib.json"), "-o",
                    Tmp("q.qf"), "--data", "fashion-mnist", "--samples", "128", "--json"});
    ASSERT_EQ(q.code, 0) << q.err;
    report_ = nlohmann::json::parse(q.out);
    Result o = Run({"quantize", Model(), "--calib", Tmp("calib.json"), "-o", Tmp("q.onnx")});
    ASSERT_EQ(o.code, 0) << o.err;
    text_report_ = o.out;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  void SetUp() override {
    if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  }

  static std::string Model() { return (Root() / "models" / "fmnist_cnn.onnx").string(); }
  static std::string Tmp(const std::string& name) { return (dir_ / name).string(); }

  static Result Run(const std::vector<std::string>& args) { return RunQforge(args, dir_); }

  // Top-1 % from `qforge eval --json` on the first n test images.
  static double Top1(const std::string& model, int n) { return cli_test::EvalTop1(model, dir_, n); }

  static fs::path dir_;
  static nlohmann::json report_;
  static std::string text_report_;
};

fs::path QuantizeCli::dir_;
nlohmann::json QuantizeCli::report_;
std::string QuantizeCli::text_report_;

TEST_F(QuantizeCli, ReportsNodesSizesAndErrorTable) {
  // Sub/Div (the input normalization) have no int8 kernel; everything else is quantized.
  int quantized = 0;
  for (const auto& n : report_["nodes"]) {
    const std::string op = n["op"];
    if (op == "Sub" || op == "Div") {
      EXPECT_FALSE(n["quantized"].get<bool>());
      EXPECT_EQ(n["reason"], "no int8 kernel for " + op);
    } else {
      EXPECT_TRUE(n["quantized"].get<bool>()) << n.dump();
      ++quantized;
    }
  }
  EXPECT_EQ(quantized, report_["quantized_nodes"].get<int>());
  EXPECT_EQ(report_["format"], "qf");
  // The .qf file is at most 27% of the fp32 file.
  const double ratio = report_["sizes"]["ratio"];
  EXPECT_GT(ratio, 0.2);
  EXPECT_LE(ratio, 0.27);
  EXPECT_EQ(report_["sizes"]["quantized_bytes"].get<int64_t>(),
            static_cast<int64_t>(fs::file_size(Tmp("q.qf"))));
  // Every weight (4) and activation has a row, worst (lowest SQNR) first.
  int weights = 0, activations = 0;
  double last = -1e9;
  for (const auto& l : report_["layers"]) {
    (l["kind"] == "weight" ? weights : activations)++;
    const double sqnr = l["sqnr_db"];
    EXPECT_GE(sqnr, last);
    last = sqnr;
    EXPECT_GT(sqnr, 20) << l.dump();
    EXPECT_GT(l["count"].get<int64_t>(), 0);
  }
  EXPECT_EQ(weights, 4);
  EXPECT_GE(activations, 7);
  // The text form says the same for people.
  EXPECT_NE(text_report_.find("nodes: 10 of 12 quantized"), std::string::npos) << text_report_;
  EXPECT_NE(text_report_.find("no int8 kernel for Sub"), std::string::npos);
  EXPECT_NE(text_report_.find("SQNR dB"), std::string::npos);
}

TEST_F(QuantizeCli, QuantizedModelsKeepAccuracyAndAgree) {
  const int n = 2000;
  const double fp32 = Top1(Model(), n), qf = Top1(Tmp("q.qf"), n), qdq = Top1(Tmp("q.onnx"), n);
  EXPECT_NEAR(qf, fp32, 0.5);
  EXPECT_EQ(qf, qdq);  // the .onnx is lowered on load to the same integer graph
}

TEST_F(QuantizeCli, QfAndQdqRunBitIdentical) {
  const std::string x = (Root() / "models" / "fmnist_cnn.sample_input.npy").string();
  ASSERT_EQ(Run({"run", Tmp("q.qf"), "--input", "input=" + x, "--output", Tmp("a")}).code, 0);
  ASSERT_EQ(Run({"run", Tmp("q.onnx"), "--input", "input=" + x, "--output", Tmp("b")}).code, 0);
  const Tensor a = data::ReadNpy(Tmp("a/logits.npy")), b = data::ReadNpy(Tmp("b/logits.npy"));
  EXPECT_EQ(a.ToFloatVector(), b.ToFloatVector());
}

// Runs qforge (integer runtime, QDQ lowered on load) and ONNX Runtime on the QDQ model `qdq`
// for 256 test images; every logit agrees within one step of the output scale.
void ExpectOrtAgrees(const std::string& qdq, const std::string& tag) {
  const fs::path ort = Root() / "tools" / "ort";
  const auto tmp = [&](const std::string& n) { return (fs::path(qdq).parent_path() / n).string(); };
  const data::LabeledImages test =
      data::LoadFashionMnist(data::Split::kTest, std::string(data::kFashionMnistDir), 256);
  data::WriteNpy(tmp("x.npy"), test.images);
  const std::string qf_out = tmp(tag + "_qf"), ort_out = tmp(tag + "_ort");
  std::string cmd = Quote(QforgeBinary()) + " run " + Quote(qdq) +
                    " --input input=" + Quote(tmp("x.npy")) + " --output " + Quote(qf_out) +
                    " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  cmd = "node " + Quote((ort / "run.js").string()) + " " + Quote(qdq) +
        " --input input=" + Quote(tmp("x.npy")) + " --output " + Quote(ort_out) + " >/dev/null 2>" +
        Quote(tmp("ort_err.txt"));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << ReadAll(tmp("ort_err.txt"));
  const Tensor q = data::ReadNpy(qf_out + "/logits.npy");
  const Tensor o = data::ReadNpy(ort_out + "/logits.npy");
  ASSERT_EQ(q.shape(), o.shape());
  // The output step: the scale of the QuantizeLinear in front of the graph output.
  const ir::Graph g = onnx_io::LoadModel(qdq);
  const float step = g.initializers.at("logits_scale").data<float>()[0];
  const auto a = q.ToFloatVector(), b = o.ToFloatVector();
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_LE(std::fabs(a[i] - b[i]), step * 1.0001f) << tag << " logit " << i;
}

TEST_F(QuantizeCli, OnnxRuntimeAgreesWithinOneOutputStep) {
  if (!fs::exists(Root() / "tools" / "ort" / "node_modules" / "onnxruntime-node"))
    GTEST_SKIP() << "onnxruntime-node not installed (scripts/ort_setup.sh)";
  if (std::system("node --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "node not on PATH";
  ExpectOrtAgrees(Tmp("q.onnx"), "cnn");
  // A MobileNetV2-style model: depthwise convolutions, ReLU6, residual Adds, global pooling.
  const std::string mb = (Root() / "models" / "fmnist_mobilenetv2.onnx").string();
  if (!fs::exists(mb)) return;
  Result c = Run(
      {"calibrate", mb, "--data", "fashion-mnist", "--samples", "300", "-o", Tmp("mb_calib.json")});
  ASSERT_EQ(c.code, 0) << c.err;
  Result r = Run({"quantize", mb, "--calib", Tmp("mb_calib.json"), "-o", Tmp("mb.onnx")});
  ASSERT_EQ(r.code, 0) << r.err;
  ExpectOrtAgrees(Tmp("mb.onnx"), "mobilenetv2");
}

TEST_F(QuantizeCli, OptionsChangeTheModel) {
  Result r = Run({"quantize", Model(), "--calib", Tmp("calib.json"), "-o", Tmp("pt.onnx"),
                  "--per-tensor", "--activation-dtype", "int8", "--symmetric-activations",
                  "--exclude", "/fc2/Gemm", "--target", "avx2", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["target"], "avx2");
  for (const auto& n : j["nodes"]) {
    if (n["node"] == "/fc2/Gemm") {
      EXPECT_EQ(n["reason"], "excluded (--exclude)");
    }
  }
  const ir::Graph g = onnx_io::LoadModel(Tmp("pt.onnx"));
  EXPECT_EQ(g.initializers.at("fc1.weight_scale").numel(), 1);  // per tensor
  EXPECT_EQ(g.initializers.at("fc1.weight_quantized").dtype(), DType::kI8);
  EXPECT_EQ(g.initializers.at("/Div_output_0_zero_point").dtype(), DType::kI8);
  EXPECT_TRUE(g.is_initializer("fc2.weight"));  // excluded: fp32
  EXPECT_NEAR(Top1(Tmp("pt.onnx"), 1000), Top1(Model(), 1000), 1.5);
}

TEST_F(QuantizeCli, BadInputsAreCleanErrors) {
  auto expect_error = [&](std::vector<std::string> args, const std::string& needle) {
    Result r = Run(args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_NE(r.err.find("qforge: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  };
  expect_error({"quantize", Model(), "--calib", Tmp("missing.json"), "-o", Tmp("e1.onnx")},
               "missing.json");
  expect_error({"quantize", Model(), "--calib", Tmp("calib.json"), "-o", Tmp("e2.txt")}, ".qf");
  expect_error(
      {"quantize", Model(), "--calib", Tmp("calib.json"), "-o", Tmp("e3.onnx"), "--target", "z80"},
      "z80");
  expect_error({"quantize", Model(), "--calib", Tmp("calib.json"), "-o", Tmp("e4.onnx"),
                "--exclude", "nosuchnode"},
               "nosuchnode");
  expect_error({"quantize", Model(), "--calib", Tmp("calib.json"), "-o", Tmp("e5.onnx"),
                "--activation-dtype", "int4"},
               "int4");
  for (const char* f : {"e1.onnx", "e2.txt", "e3.onnx", "e4.onnx", "e5.onnx"})
    EXPECT_FALSE(fs::exists(Tmp(f))) << f;
  // A corrupt .qf is rejected by every command with a clear message.
  std::string bytes = ReadAll(Tmp("q.qf"));
  bytes[bytes.size() / 2] ^= 0x10;
  std::ofstream(Tmp("bad.qf"), std::ios::binary) << bytes;
  expect_error({"eval", Tmp("bad.qf"), "--data", "fashion-mnist", "--limit", "10"}, "checksum");
  std::ofstream(Tmp("short.qf"), std::ios::binary) << bytes.substr(0, 100);
  expect_error({"info", Tmp("short.qf")}, "truncated");
  // --help has a worked example.
  Result h = Run({"quantize", "--help"});
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("Example:"), std::string::npos);
}

}  // namespace
}  // namespace qforge
