// ONNX backend node-test conformance: every libonnx-testdata node test whose ops are all in the
// supported list runs through LoadModel + runtime::Session and is compared with its outputs.
//
// One gtest per test directory (Node/Conformance.Run/<dir>), so ctest lists each. Tolerance is
// the ONNX backend runner's default for node tests, np.testing.assert_allclose(rtol=1e-3,
// atol=1e-7): |actual - expected| <= atol + rtol * |expected|, NaN equal to NaN, infinities
// equal to the same infinity. Dtypes and shapes must match exactly.
//
// tests/conformance_exclusions.txt lists deliberate gaps ("<dir> <reason>"); an excluded test
// must fail with qforge::Error (not crash, not produce wrong numbers), and fails the suite if it
// starts passing. A reason starting with "skip-run:" means the test is not executed at all.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "qforge/onnx/onnx.h"
#include "qforge/runtime/session.h"

#ifndef QF_CONFORMANCE_EXCLUSIONS
#define QF_CONFORMANCE_EXCLUSIONS "tests/conformance_exclusions.txt"
#endif

namespace qforge {
namespace {

namespace fs = std::filesystem;

constexpr double kRtol = 1e-3;
constexpr double kAtol = 1e-7;

// The ops of issue item 5 (default ONNX domain).
const std::set<std::string>& SupportedOpList() {
  static const std::set<std::string> ops = {"Conv",
                                            "ConvTranspose",
                                            "Gemm",
                                            "MatMul",
                                            "BatchNormalization",
                                            "Relu",
                                            "LeakyRelu",
                                            "Clip",
                                            "Sigmoid",
                                            "HardSigmoid",
                                            "HardSwish",
                                            "Tanh",
                                            "Erf",
                                            "Gelu",
                                            "Softmax",
                                            "LogSoftmax",
                                            "Add",
                                            "Sub",
                                            "Mul",
                                            "Div",
                                            "Pow",
                                            "Sqrt",
                                            "Exp",
                                            "Neg",
                                            "Abs",
                                            "Min",
                                            "Max",
                                            "ReduceMean",
                                            "ReduceSum",
                                            "ReduceMax",
                                            "MaxPool",
                                            "AveragePool",
                                            "GlobalAveragePool",
                                            "Flatten",
                                            "Reshape",
                                            "Transpose",
                                            "Concat",
                                            "Split",
                                            "Slice",
                                            "Squeeze",
                                            "Unsqueeze",
                                            "Shape",
                                            "Gather",
                                            "Cast",
                                            "Constant",
                                            "ConstantOfShape",
                                            "Expand",
                                            "Where",
                                            "Equal",
                                            "Resize",
                                            "Pad",
                                            "Identity",
                                            "Dropout",
                                            "LayerNormalization",
                                            "QuantizeLinear",
                                            "DequantizeLinear",
                                            "QLinearConv",
                                            "QLinearMatMul",
                                            "ConvInteger",
                                            "MatMulInteger",
                                            "DynamicQuantizeLinear",
                                            "LSTM",
                                            "GRU"};
  return ops;
}

fs::path NodeTestRoot() {
  if (const char* env = std::getenv("QF_ONNX_NODE_TESTS")) return env;
  return "/usr/share/libonnx-testdata/data/node";
}

struct Scan {
  std::vector<std::string> selected;  // directory names, sorted
  std::vector<std::string> problems;  // unreadable models etc.
};

// Selects test directories whose model has at least one node and only default-domain nodes
// from the op list (function-expanded variants qualify only if all their ops are listed).
const Scan& ScanNodeTests() {
  static const Scan scan = [] {
    Scan s;
    std::error_code ec;
    if (!fs::is_directory(NodeTestRoot(), ec)) return s;
    std::vector<std::string> dirs;
    for (const auto& e : fs::directory_iterator(NodeTestRoot(), ec))
      if (e.is_directory()) dirs.push_back(e.path().filename().string());
    std::sort(dirs.begin(), dirs.end());
    for (const std::string& d : dirs) {
      try {
        auto ops = onnx_io::ReadModelOps((NodeTestRoot() / d / "model.onnx").string());
        bool all = !ops.empty();
        for (const auto& op : ops)
          all = all && op.domain.empty() && SupportedOpList().count(op.op_type);
        if (all) s.selected.push_back(d);
      } catch (const Error& e) {
        s.problems.push_back(e.what());
      }
    }
    return s;
  }();
  return scan;
}

struct Exclusion {
  std::string reason;
  bool skip_run = false;
};

struct Exclusions {
  std::map<std::string, Exclusion> entries;
  std::vector<std::string> problems;  // malformed lines
};

// Format: one "<test dir> <reason>" per line; '#' starts a comment line.
const Exclusions& LoadExclusions() {
  static const Exclusions ex = [] {
    Exclusions x;
    std::ifstream f(QF_CONFORMANCE_EXCLUSIONS);
    if (!f) {
      x.problems.push_back(std::string("cannot open ") + QF_CONFORMANCE_EXCLUSIONS);
      return x;
    }
    std::string line;
    for (int lineno = 1; std::getline(f, line); ++lineno) {
      const size_t start = line.find_first_not_of(" \t");
      if (start == std::string::npos || line[start] == '#') continue;
      std::istringstream is(line.substr(start));
      std::string name, reason;
      is >> name;
      std::getline(is >> std::ws, reason);
      if (reason.empty()) {
        x.problems.push_back("line " + std::to_string(lineno) + ": '" + name + "' has no reason");
        continue;
      }
      Exclusion e{reason, reason.rfind("skip-run:", 0) == 0};
      if (!x.entries.emplace(name, e).second)
        x.problems.push_back("line " + std::to_string(lineno) + ": '" + name + "' listed twice");
    }
    return x;
  }();
  return ex;
}

// Files named <prefix><N>.pb in dir, ordered by N.
std::vector<fs::path> NumberedPb(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<int, fs::path>> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string f = e.path().filename().string();
    if (f.rfind(prefix, 0) != 0 || e.path().extension() != ".pb") continue;
    found.emplace_back(std::stoi(f.substr(prefix.size())), e.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [n, p] : found) out.push_back(p);
  return out;
}

// Compares one output. Returns "" when it matches, else a description of the mismatch.
std::string CompareTensor(const std::string& name, const Tensor& expected, const Tensor& actual) {
  std::ostringstream os;
  if (!actual.defined()) return "output '" + name + "' missing";
  if (actual.dtype() != expected.dtype())
    return "output '" + name + "' has type " + std::string(DTypeName(actual.dtype())) +
           ", expected " + std::string(DTypeName(expected.dtype()));
  if (actual.shape() != expected.shape())
    return "output '" + name + "' has shape " + ShapeToString(actual.shape()) + ", expected " +
           ShapeToString(expected.shape());
  int64_t bad = 0, first_bad = -1;
  double max_err = 0;
  for (int64_t i = 0; i < expected.numel(); ++i) {
    const double e = expected.GetAsDouble(i), a = actual.GetAsDouble(i);
    bool ok;
    if (std::isnan(e) || std::isnan(a)) {
      ok = std::isnan(e) && std::isnan(a);
    } else if (std::isinf(e) || std::isinf(a)) {
      ok = e == a;
    } else {
      const double err = std::fabs(a - e);
      ok = err <= kAtol + kRtol * std::fabs(e);
      max_err = std::max(max_err, err);
    }
    if (!ok) {
      if (first_bad < 0) first_bad = i;
      ++bad;
    }
  }
  if (bad == 0) return "";
  os << "output '" << name << "': " << bad << " of " << expected.numel()
     << " elements differ (max abs error " << max_err << "); first at flat index " << first_bad
     << ": got " << actual.GetAsDouble(first_bad) << ", expected "
     << expected.GetAsDouble(first_bad);
  return os.str();
}

// Same bytes, another element type of the same size.
Tensor Reinterpret(const Tensor& t, DType dtype) {
  Tensor out(dtype, t.shape());
  std::memcpy(out.raw(), t.raw(), t.nbytes());
  return out;
}

// Loads and runs every data set of one node test. Throws qforge::Error for load/run failures;
// returns "" on a match, else the first mismatch.
std::string RunNodeTest(const fs::path& dir) {
  ir::Graph graph = onnx_io::LoadModel((dir / "model.onnx").string());
  const std::vector<ir::ValueInfo> graph_inputs = graph.inputs;
  const std::vector<ir::ValueInfo> graph_outputs = graph.outputs;
  runtime::Session session(std::move(graph));

  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
      sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) throw Error(dir.string() + ": no test_data_set_* folders");

  for (const fs::path& set : sets) {
    const std::string where = set.filename().string() + ": ";
    std::map<std::string, Tensor> inputs;
    const auto in_files = NumberedPb(set, "input_");
    for (size_t i = 0; i < in_files.size(); ++i) {
      std::string name;
      Tensor t = onnx_io::LoadTensorProto(in_files[i].string(), &name);
      // The runner feeds inputs by position; the .pb name is a cross-check when present.
      if (i >= graph_inputs.size())
        return where + "more input files than graph inputs (" +
               std::to_string(graph_inputs.size()) + ")";
      if (!name.empty() && name != graph_inputs[i].name)
        return where + in_files[i].filename().string() + " is named '" + name +
               "' but graph input " + std::to_string(i) + " is '" + graph_inputs[i].name + "'";
      // ONNX 1.12 stores bfloat16 test tensors as uint16 bit patterns (numpy has no bfloat16).
      if (t.dtype() == DType::kU16 && graph_inputs[i].dtype == DType::kBF16)
        t = Reinterpret(t, DType::kBF16);
      inputs[graph_inputs[i].name] = t;
    }
    std::map<std::string, Tensor> outputs = session.Run(inputs);
    const auto out_files = NumberedPb(set, "output_");
    if (out_files.size() != graph_outputs.size())
      return where + std::to_string(out_files.size()) + " expected outputs for " +
             std::to_string(graph_outputs.size()) + " graph outputs";
    for (size_t i = 0; i < out_files.size(); ++i) {
      Tensor expected = onnx_io::LoadTensorProto(out_files[i].string());
      const std::string& name = graph_outputs[i].name;
      auto it = outputs.find(name);
      Tensor actual = it == outputs.end() ? Tensor() : it->second;
      // As for inputs: expected bfloat16 outputs are uint16 bit patterns, and the ONNX runner
      // compares them as such (assert_allclose on the uint16 values), so we do the same.
      if (actual.defined() && actual.dtype() == DType::kBF16 && expected.dtype() == DType::kU16)
        actual = Reinterpret(actual, DType::kU16);
      std::string diff = CompareTensor(name, expected, actual);
      if (!diff.empty()) return where + diff;
    }
  }
  return "";
}

class Conformance : public ::testing::TestWithParam<std::string> {};

TEST_P(Conformance, Run) {
  const std::string test = GetParam();
  const fs::path dir = NodeTestRoot() / test;
  const auto& ex = LoadExclusions().entries;
  auto it = ex.find(test);
  if (it == ex.end()) {
    std::string diff;
    try {
      diff = RunNodeTest(dir);
    } catch (const Error& e) {
      FAIL() << "qforge::Error: " << e.what();
    }
    EXPECT_EQ(diff, "") << test;
    return;
  }
  const Exclusion& e = it->second;
  if (e.skip_run) GTEST_SKIP() << "excluded: " << e.reason;
  // Excluded: must fail cleanly with a qforge::Error.
  std::string diff;
  try {
    diff = RunNodeTest(dir);
  } catch (const Error& err) {
    std::cout << "excluded (" << e.reason << "); fails as expected with: " << err.what() << "\n";
    return;
  }
  if (diff.empty())
    FAIL() << test << " is excluded (" << e.reason
           << ") but now passes: remove it from tests/conformance_exclusions.txt";
  FAIL() << test << " is excluded (" << e.reason
         << ") but produced wrong results instead of a clear error: " << diff;
}

// Registered at start-up from the directory scan; every process that lists or runs the suite
// scans only model.onnx files (a few MB), which takes well under a second.
INSTANTIATE_TEST_SUITE_P(Node, Conformance, ::testing::ValuesIn(ScanNodeTests().selected),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Conformance);

TEST(ConformanceSetup, TestDataFoundAndReadable) {
  ASSERT_TRUE(fs::is_directory(NodeTestRoot()))
      << NodeTestRoot() << " not found: install libonnx-testdata (or set QF_ONNX_NODE_TESTS)";
  const Scan& s = ScanNodeTests();
  EXPECT_FALSE(s.selected.empty()) << "no node tests use the supported ops";
  for (const auto& p : s.problems) ADD_FAILURE() << p;
}

TEST(ConformanceSetup, ExclusionsAreWellFormedAndKnown) {
  const Exclusions& ex = LoadExclusions();
  for (const auto& p : ex.problems) ADD_FAILURE() << p;
  const auto& selected = ScanNodeTests().selected;
  for (const auto& [name, e] : ex.entries)
    EXPECT_TRUE(std::binary_search(selected.begin(), selected.end(), name))
        << "exclusion '" << name << "' does not name a selected node test";
}

TEST(ConformanceSetup, ToleranceRule) {
  // Sanity of the comparison itself, so a broken comparator cannot make everything pass.
  Tensor e = Tensor::FromVector<float>({4}, {1.0f, 0.0f, NAN, INFINITY});
  EXPECT_EQ(CompareTensor("x", e, e.Clone()), "");
  Tensor a = Tensor::FromVector<float>({4}, {1.0009f, 0.0f, NAN, INFINITY});
  EXPECT_EQ(CompareTensor("x", e, a), "");
  a = Tensor::FromVector<float>({4}, {1.0011f, 0.0f, NAN, INFINITY});
  EXPECT_NE(CompareTensor("x", e, a), "");
  a = Tensor::FromVector<float>({4}, {1.0f, 1e-6f, NAN, INFINITY});
  EXPECT_NE(CompareTensor("x", e, a), "");
  a = Tensor::FromVector<float>({4}, {1.0f, 0.0f, 0.0f, INFINITY});
  EXPECT_NE(CompareTensor("x", e, a), "");
  a = Tensor::FromVector<float>({4}, {1.0f, 0.0f, NAN, -INFINITY});
  EXPECT_NE(CompareTensor("x", e, a), "");
  EXPECT_NE(CompareTensor("x", e, Tensor::FromVector<float>({2, 2}, {1, 0, NAN, INFINITY})), "");
  EXPECT_NE(CompareTensor("x", e, Tensor::FromVector<double>({4}, {1, 0, NAN, INFINITY})), "");
}

}  // namespace
}  // namespace qforge
