// `qforge quantize --method dynamic` on the bundled LSTM and GRU (models/fmnist_{lstm,gru}.onnx):
// the .onnx export uses only ops ONNX Runtime runs (LSTM: com.microsoft DynamicQuantizeLSTM; GRU:
// unrolled DynamicQuantizeLinear + MatMulInteger), ONNX Runtime's logits agree with qforge's
// (on the .onnx and on the .qf with the qforge op), and the full test set accuracy stays within
// 0.3 points of fp32. ONNX Runtime parts skip when tools/ort/node_modules is not installed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

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

class RnnDynamicCli : public cli_test::ScratchDirTest {
 protected:
  RnnDynamicCli() : ScratchDirTest("qf_rnn_dynamic") {}

  bool Quantize(const std::string& model, const std::string& out) const {
    const Result r = Run({"quantize", Model(model), "--method", "dynamic", "-o", out});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0;
  }

  // Logits of the first 256 test images, by qforge or by ONNX Runtime (tools/ort/run.js).
  Tensor Logits(const std::string& model, bool ort, const std::string& tag) const {
    const std::string x = Tmp("x.npy");
    if (!fs::exists(x)) {
      const data::LabeledImages test =
          data::LoadFashionMnist(data::Split::kTest, std::string(data::kFashionMnistDir), 256);
      data::WriteNpy(x, test.images);
    }
    const std::string out = Tmp(tag);
    std::string cmd =
        ort ? "node " + Quote((Root() / "tools" / "ort" / "run.js").string()) + " " + Quote(model)
            : Quote(QforgeBinary()) + " run " + Quote(model);
    cmd += " --input input=" + Quote(x) + " --output " + Quote(out) + " >/dev/null 2>" +
           Quote(Tmp(tag + "_err.txt"));
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << ReadAll(Tmp(tag + "_err.txt"));
    return fs::exists(out + "/logits.npy") ? data::ReadNpy(out + "/logits.npy") : Tensor();
  }

  // Top-1 % on all 10 000 test images, one thread (OpenMP threads spinning on a loaded machine
  // made the default thread count many times slower).
  double Top1(const std::string& model) const {
    const Result r = Run({"eval", model, "--data", "fashion-mnist", "--threads", "1", "--json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return r.code == 0 ? 100.0 * nlohmann::json::parse(r.out)["top1"].get<double>() : -1;
  }
};

bool HaveOrt() {
  return fs::exists(Root() / "tools" / "ort" / "node_modules" / "onnxruntime-node") &&
         std::system("node --version >/dev/null 2>&1") == 0;
}

std::set<std::string> Ops(const ir::Graph& g) {
  std::set<std::string> ops;
  for (const ir::Node& n : g.nodes)
    ops.insert(n.domain.empty() ? n.op_type : n.domain + "::" + n.op_type);
  return ops;
}

// Every logit of b within one uint8 step of a's logit range ((max - min) / 255, the step a
// DynamicQuantizeLinear of the logits would use), and the predicted classes agree on all but
// two images.
void ExpectAgree(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_TRUE(a.defined() && b.defined()) << what;
  ASSERT_EQ(a.shape(), b.shape()) << what;
  const auto x = a.ToFloatVector(), y = b.ToFloatVector();
  const float lo = std::min(0.0f, *std::min_element(x.begin(), x.end()));
  const float hi = std::max(0.0f, *std::max_element(x.begin(), x.end()));
  const float step = (hi - lo) / 255.0f;
  float worst = 0;
  for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::fabs(x[i] - y[i]));
  EXPECT_LE(worst, step) << what << ": worst logit difference " << worst << ", step " << step;
  std::cout << "[ info ] " << what << ": worst logit difference " << worst << " (step " << step
            << ")\n";
  const int64_t n = a.dim(0), c = a.dim(1);
  int same = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto argmax = [&](const std::vector<float>& v) {
      return std::max_element(v.begin() + i * c, v.begin() + (i + 1) * c) - (v.begin() + i * c);
    };
    same += argmax(x) == argmax(y);
  }
  EXPECT_GE(same, n - 2) << what;
}

TEST_F(RnnDynamicCli, ExportUsesOpsOnnxRuntimeRuns) {
  for (const char* m : {"fmnist_lstm", "fmnist_gru"}) {
    SCOPED_TRACE(m);
    ASSERT_TRUE(Quantize(m, Tmp(std::string(m) + ".onnx")));
    const std::set<std::string> ops = Ops(onnx_io::LoadModel(Tmp(std::string(m) + ".onnx")));
    EXPECT_FALSE(ops.count("LSTM") || ops.count("GRU"));
    for (const std::string& op : ops) EXPECT_EQ(op.rfind("qforge::", 0), std::string::npos) << op;
    if (std::string(m) == "fmnist_lstm") {
      EXPECT_TRUE(ops.count("com.microsoft::DynamicQuantizeLSTM"));
    } else {
      EXPECT_TRUE(ops.count("DynamicQuantizeLinear") && ops.count("MatMulInteger"));
      // The .qf keeps the qforge op.
      ASSERT_TRUE(Quantize(m, Tmp("gru.qf")));
      EXPECT_TRUE(Ops(onnx_io::LoadQf(Tmp("gru.qf"))).count("qforge::DynamicQuantizeGRU"));
    }
  }
}

TEST_F(RnnDynamicCli, OnnxRuntimeAgreesWithQforge) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  if (!HaveOrt()) GTEST_SKIP() << "onnxruntime-node or node not installed (scripts/ort_setup.sh)";
  for (const char* m : {"fmnist_lstm", "fmnist_gru"}) {
    SCOPED_TRACE(m);
    const std::string onnx = Tmp(std::string(m) + ".onnx"), qf = Tmp(std::string(m) + ".qf");
    ASSERT_TRUE(Quantize(m, onnx));
    ASSERT_TRUE(Quantize(m, qf));
    const Tensor ort = Logits(onnx, true, std::string(m) + "_ort");
    ExpectAgree(Logits(onnx, false, std::string(m) + "_qf_onnx"), ort,
                std::string(m) + " qforge .onnx vs ONNX Runtime .onnx");
    ExpectAgree(Logits(qf, false, std::string(m) + "_qf_qf"), ort,
                std::string(m) + " qforge .qf vs ONNX Runtime .onnx");
  }
}

// Dynamic int8 within 0.3 points of fp32 top-1 on all 10 000 test images (README's table).
TEST_F(RnnDynamicCli, AccuracyCloseToFp32) {
  if (!HaveFashionMnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  for (const char* m : {"fmnist_lstm", "fmnist_gru"}) {
    SCOPED_TRACE(m);
    ASSERT_TRUE(Quantize(m, Tmp(std::string(m) + ".qf")));
    const double fp32 = Top1(Model(m));
    const double dyn = Top1(Tmp(std::string(m) + ".qf"));
    std::cout << "[ info ] " << m << " top-1 fp32 " << fp32 << " %, dynamic " << dyn << " %\n";
    EXPECT_GT(fp32, 80.0);
    EXPECT_NEAR(dyn, fp32, 0.3);
  }
}

}  // namespace
}  // namespace qforge
