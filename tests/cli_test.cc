// CLI robustness and behaviour: spawns the qforge binary on good and bad inputs (missing,
// empty, truncated and byte-flipped models; wrong input names, shapes and dtypes; bad data sets;
// unwritable outputs) and checks exit codes, the one-line error, and that nothing partial is
// left behind. Fixtures: tests/data/cli (made by make_cli_fixtures.py).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "cli_test_util.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/data/npy.h"

extern char** environ;

namespace qforge {
namespace {

namespace fs = std::filesystem;

using cli_test::QforgeBinary;

fs::path Fixtures() { return fs::path(__FILE__).parent_path() / "data" / "cli"; }
std::string Fixture(const std::string& name) { return (Fixtures() / name).string(); }

using cli_test::ReadAll;
void WriteAll(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

struct Result {
  bool exited = false;  // false: killed by a signal (a crash) or timed out
  int code = -1;        // exit code when exited
  int signal = 0;
  std::string out, err;
  std::vector<std::string> ErrorLines() const {
    std::vector<std::string> lines;
    std::istringstream in(err);
    for (std::string l; std::getline(in, l);)
      if (l.rfind("qforge: warning:", 0) != 0) lines.push_back(l);
    return lines;
  }
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
  return os << "exited=" << r.exited << " code=" << r.code << " signal=" << r.signal
            << "\nstdout: " << r.out << "\nstderr: " << r.err;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(QforgeBinary())) << "qforge binary not found at " << QforgeBinary()
                                            << " (build target 'qforge' or set QFORGE_BIN)";
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("qf_cli_test_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path Tmp(const std::string& name) const { return dir_ / name; }

  // Runs qforge with `args`, stdout/stderr captured through files, with a 120 s timeout.
  Result Run(const std::vector<std::string>& args) {
    const std::string out = (dir_ / "stdout.txt").string(), err = (dir_ / "stderr.txt").string();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv_s = {QforgeBinary()};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid;
    Result r;
    const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      ADD_FAILURE() << "cannot spawn " << argv[0];
      return r;
    }
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        ADD_FAILURE() << "qforge timed out";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    r.exited = WIFEXITED(status);
    r.code = r.exited ? WEXITSTATUS(status) : -1;
    r.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    r.out = ReadAll(out);
    r.err = ReadAll(err);
    fs::remove(out);
    fs::remove(err);
    return r;
  }

  // A failure the way the CLI promises: exit code 1, exactly one "qforge: error: ..." line.
  void ExpectCleanError(const Result& r, const std::string& needle = "") {
    ASSERT_TRUE(r.exited) << r;
    EXPECT_EQ(r.code, 1) << r;
    const auto lines = r.ErrorLines();
    ASSERT_EQ(lines.size(), 1u) << r;
    EXPECT_EQ(lines[0].rfind("qforge: error: ", 0), 0u) << r;
    for (char c : lines[0])
      EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7F) << "control char\n" << r;
    if (!needle.empty()) {
      EXPECT_NE(r.err.find(needle), std::string::npos) << r;
    }
  }

  // Either success or a clean error; never a crash.
  void ExpectNoCrash(const Result& r) {
    ASSERT_TRUE(r.exited) << r;
    if (r.code != 0) ExpectCleanError(r);
  }

  // Number of entries (files and directories) directly in `dir`; 0 if it does not exist.
  static size_t FilesIn(const fs::path& dir) {
    if (!fs::exists(dir)) return 0;
    return static_cast<size_t>(
        std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
  }

  fs::path dir_;
};

// Bad model files of every kind, written into the test's temp dir.
std::vector<std::pair<std::string, fs::path>> BadModels(const fs::path& dir) {
  std::vector<std::pair<std::string, fs::path>> out;
  out.emplace_back("missing", dir / "does_not_exist.onnx");
  WriteAll(dir / "empty.onnx", "");
  out.emplace_back("empty", dir / "empty.onnx");
  WriteAll(dir / "text.onnx", "this is not a protobuf at all\n");
  out.emplace_back("text", dir / "text.onnx");
  out.emplace_back("directory", dir);
  const std::string good = ReadAll(Fixture("tiny_fmnist.onnx"));
  for (size_t n : {size_t{1}, size_t{7}, size_t{40}, size_t{100}, good.size() / 2,
                   good.size() - 100, good.size() - 1}) {
    const fs::path p = dir / ("truncated_" + std::to_string(n) + ".onnx");
    WriteAll(p, good.substr(0, n));
    out.emplace_back("truncated to " + std::to_string(n) + " bytes", p);
  }
  return out;
}

TEST_F(CliTest, HelpHasAWorkedExampleForEveryCommand) {
  Result r = Run({"--help"});
  ASSERT_TRUE(r.exited);
  EXPECT_EQ(r.code, 0) << r;
  for (const char* cmd : {"info", "run", "eval", "bench", "formats"}) {
    EXPECT_NE(r.out.find(cmd), std::string::npos) << r.out;
    Result c = Run({cmd, "--help"});
    EXPECT_EQ(c.code, 0) << c;
    EXPECT_NE(c.out.find("Example:"), std::string::npos) << cmd << ": " << c.out;
    EXPECT_NE(c.out.find(std::string("qforge ") + cmd), std::string::npos) << c.out;
  }
}

TEST_F(CliTest, UsageErrorsExitWithTwoAndOneLine) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"info"},
           {"run", Fixture("tiny_fmnist.onnx")},
           {"bench", Fixture("tiny_fmnist.onnx"), "--batch", "0"},
           {"eval", Fixture("tiny_fmnist.onnx"), "--data", "fashion-mnist", "--batch", "x"}}) {
    Result r = Run(args);
    ASSERT_TRUE(r.exited) << r;
    EXPECT_EQ(r.code, 2) << r;
    ASSERT_EQ(r.ErrorLines().size(), 1u) << r;
    EXPECT_EQ(r.err.rfind("qforge: error: ", 0), 0u) << r;
  }
}

TEST_F(CliTest, InfoDescribesTheModel) {
  Result r = Run({"info", Fixture("tiny_fmnist.onnx")});
  ASSERT_EQ(r.code, 0) << r;
  for (const char* want : {"image", "[batch, 1, 28, 28]", "logits", "[batch, 10]", "Gemm",
                           "Flatten", "7,850", "ai.onnx 13", "qforge-tests"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;

  r = Run({"info", Fixture("tiny_fmnist.onnx"), "--json"});
  ASSERT_EQ(r.code, 0) << r;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parameters"]["count"], 7850);
  EXPECT_EQ(j["parameters"]["bytes"], 7850 * 4);
  EXPECT_EQ(j["opset"], 13);
  EXPECT_EQ(j["inputs"][0]["name"], "image");
  EXPECT_EQ(j["inputs"][0]["shape"], nlohmann::json::parse(R"(["batch", 1, 28, 28])"));
  EXPECT_EQ(j["nodes"], 2);
}

TEST_F(CliTest, BadModelFilesGiveOneErrorLineForEveryCommand) {
  for (const auto& [what, path] : BadModels(dir_)) {
    SCOPED_TRACE(what);
    const fs::path out = Tmp("out_" + std::to_string(std::hash<std::string>{}(what)));
    ExpectCleanError(Run({"info", path.string()}));
    ExpectCleanError(
        Run({"run", path.string(), "--input", "image=x.npy", "--output", out.string()}));
    EXPECT_FALSE(fs::exists(out));
    ExpectCleanError(Run({"eval", path.string(), "--data", "fashion-mnist", "--limit", "10",
                          "--predictions", Tmp("pred.txt").string()}));
    EXPECT_FALSE(fs::exists(Tmp("pred.txt")));
    ExpectCleanError(Run({"bench", path.string(), "--runs", "1"}));
    ExpectCleanError(Run({"formats", path.string()}));
  }
  Result r = Run({"info", Tmp("does_not_exist.onnx").string()});
  EXPECT_NE(r.err.find("does_not_exist.onnx"), std::string::npos) << r;
}

TEST_F(CliTest, ByteFlippedModelsNeverCrash) {
  const std::string good = ReadAll(Fixture("tiny_fmnist.onnx"));
  const Tensor x = Tensor(DType::kF32, {2, 1, 28, 28});
  data::WriteNpy(Tmp("x.npy").string(), x);
  std::mt19937 rng(1234);
  // Flips concentrated in the first bytes (graph structure, names, dims) where damage matters
  // most, plus anywhere in the file.
  for (int k = 0; k < 40; ++k) {
    std::string bad = good;
    const size_t span = k % 2 ? bad.size() : std::min<size_t>(bad.size(), 400);
    for (int f = 0; f < 1 + k % 4; ++f) {
      const size_t pos = rng() % span;
      bad[pos] = static_cast<char>(bad[pos] ^ (1 + rng() % 255));
    }
    const fs::path p = Tmp("flipped.onnx");
    WriteAll(p, bad);
    SCOPED_TRACE("variant " + std::to_string(k));
    ExpectNoCrash(Run({"info", p.string()}));
    const fs::path out = Tmp("out");
    Result r = Run(
        {"run", p.string(), "--input", "image=" + Tmp("x.npy").string(), "--output", out.string()});
    ExpectNoCrash(r);
    if (r.code != 0) {
      EXPECT_FALSE(fs::exists(out));
    }
    fs::remove_all(out);
    ExpectNoCrash(Run({"bench", p.string(), "--runs", "1", "--warmup", "0"}));
  }
}

TEST_F(CliTest, UnsupportedOpNamesTheNodeAndOp) {
  Result r = Run({"info", Fixture("unsupported_op.onnx")});
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("qforge.test::NoSuchOp"), std::string::npos) << r;
  data::WriteNpy(Tmp("x.npy").string(), Tensor(DType::kF32, {2}));
  r = Run({"run", Fixture("unsupported_op.onnx"), "--input", "x=" + Tmp("x.npy").string(),
           "--output", Tmp("out").string()});
  ExpectCleanError(r, "NoSuchOp");
  EXPECT_NE(r.err.find("mystery"), std::string::npos) << r;
  EXPECT_FALSE(fs::exists(Tmp("out")));
  ExpectCleanError(Run({"bench", Fixture("unsupported_op.onnx")}), "NoSuchOp");
}

TEST_F(CliTest, RunWritesOneSanitizedNpyPerOutput) {
  data::WriteNpy(Tmp("x.npy").string(), Tensor::FromVector<float>({2, 3}, {-1, 2, -3, 4, -5, 6}));
  const fs::path out = Tmp("results/nested");
  Result r = Run({"run", Fixture("two_outputs.onnx"), "--input", "x=" + Tmp("x.npy").string(),
                  "--output", out.string()});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(FilesIn(out), 2u);
  Tensor relu = data::ReadNpy((out / "out_relu_0.npy").string());
  Tensor sum = data::ReadNpy((out / "_._sum.npy").string());
  EXPECT_EQ(relu.shape(), (Shape{2, 3}));
  EXPECT_EQ(relu.ToFloatVector(), (std::vector<float>{0, 2, 0, 4, 0, 6}));
  EXPECT_EQ(sum.ToFloatVector(), (std::vector<float>{-2, 4, -6, 8, -10, 12}));
  // Nothing escaped the output directory through the "../sum" name.
  EXPECT_FALSE(fs::exists(Tmp("results/sum.npy")));
}

TEST_F(CliTest, RunMatchesTheNumpyOracleOnTheTinyClassifier) {
  data::LabeledImages test =
      data::LoadFashionMnist(data::Split::kTest, std::string(data::kFashionMnistDir), 20);
  data::WriteNpy(Tmp("x.npy").string(), test.images);
  Result r = Run({"run", Fixture("tiny_fmnist.onnx"), "--input", "image=" + Tmp("x.npy").string(),
                  "--output", Tmp("out").string()});
  ASSERT_EQ(r.code, 0) << r;
  Tensor logits = data::ReadNpy(Tmp("out/logits.npy").string());
  ASSERT_EQ(logits.shape(), (Shape{20, 10}));
  std::istringstream want(ReadAll(Fixture("tiny_fmnist_predictions.txt")));
  for (int i = 0; i < 20; ++i) {
    int expected;
    want >> expected;
    const float* row = logits.data<float>() + i * 10;
    EXPECT_EQ(std::max_element(row, row + 10) - row, expected) << "image " << i;
  }
}

TEST_F(CliTest, RunRejectsWrongInputsWithoutWritingAnything) {
  const std::string model = Fixture("tiny_fmnist.onnx");
  data::WriteNpy(Tmp("good.npy").string(), Tensor(DType::kF32, {2, 1, 28, 28}));
  data::WriteNpy(Tmp("f64.npy").string(), Tensor(DType::kF64, {2, 1, 28, 28}));
  data::WriteNpy(Tmp("shape.npy").string(), Tensor(DType::kF32, {2, 1, 28, 27}));
  data::WriteNpy(Tmp("rank.npy").string(), Tensor(DType::kF32, {2, 784}));
  const std::string good = ReadAll(Tmp("good.npy"));
  WriteAll(Tmp("truncated.npy"), good.substr(0, good.size() - 3));
  WriteAll(Tmp("header.npy"), good.substr(0, 30));
  const std::string out = Tmp("out").string();
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {{"--input", "img=" + Tmp("good.npy").string()}, "unknown input 'img'"},
      {{"--input", "image=" + Tmp("f64.npy").string()}, "dtype f64"},
      {{"--input", "image=" + Tmp("shape.npy").string()}, "[2, 1, 28, 27]"},
      {{"--input", "image=" + Tmp("rank.npy").string()}, "[2, 784]"},
      {{"--input", "image=" + Tmp("truncated.npy").string()}, "truncated"},
      {{"--input", "image=" + Tmp("header.npy").string()}, "header.npy"},
      {{"--input", "image=" + Tmp("missing.npy").string()}, "missing.npy"},
      {{"--input", "image"}, "NAME=VALUE"},
      {{"--input", "image=" + Tmp("good.npy").string(), "--input",
        "image=" + Tmp("good.npy").string()},
       "twice"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"run", model, "--output", out};
    args.insert(args.end(), c.args.begin(), c.args.end());
    ExpectCleanError(Run(args), c.needle);
    EXPECT_FALSE(fs::exists(out)) << c.needle;
  }
  // Unwritable output locations: a regular file in the way, and a path below /proc.
  WriteAll(Tmp("a_file"), "x");
  ExpectCleanError(Run({"run", model, "--input", "image=" + Tmp("good.npy").string(), "--output",
                        Tmp("a_file").string()}),
                   "not a directory");
  ExpectCleanError(Run({"run", model, "--input", "image=" + Tmp("good.npy").string(), "--output",
                        "/proc/qforge_cli_test/out"}));
  EXPECT_EQ(FilesIn(dir_), 7u);  // only the inputs written above: no outputs, no temporaries
}

TEST_F(CliTest, EvalPredictionsMatchTheNumpyOracle) {
  const std::string want = ReadAll(Fixture("tiny_fmnist_predictions.txt"));
  const data::LabeledImages test =
      data::LoadFashionMnist(data::Split::kTest, std::string(data::kFashionMnistDir), 200);
  int64_t correct = 0;
  std::istringstream in(want);
  for (int64_t i = 0; i < 200; ++i) {
    int64_t p;
    in >> p;
    correct += p == test.labels.data<int64_t>()[i];
  }
  // Batch sizes that do and do not divide 200 must give the same answers.
  for (const char* batch : {"64", "7", "200"}) {
    SCOPED_TRACE(std::string("batch ") + batch);
    const fs::path pred = Tmp(std::string("pred_") + batch + ".txt");
    Result r = Run({"eval", Fixture("tiny_fmnist.onnx"), "--data", "fashion-mnist", "--limit",
                    "200", "--batch", batch, "--json", "--predictions", pred.string()});
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_EQ(ReadAll(pred), want);
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["images"], 200);
    EXPECT_EQ(j["correct"], correct);
    EXPECT_DOUBLE_EQ(j["top1"].get<double>(), correct / 200.0);
  }
  Result r = Run({"eval", Fixture("tiny_fmnist.onnx"), "--data", "fashion-mnist", "--limit", "50"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("top-1 %"), std::string::npos) << r;
  EXPECT_EQ(r.err, "");  // no progress bar when stderr is not a terminal
}

TEST_F(CliTest, EvalRejectsBadDataAndModels) {
  const std::string model = Fixture("tiny_fmnist.onnx");
  ExpectCleanError(Run({"eval", model, "--data", "cifar10"}), "unknown data set");
  ExpectCleanError(
      Run({"eval", model, "--data", "fashion-mnist", "--data-dir", Tmp("nowhere").string()}),
      "dataset-fashion-mnist not installed: run scripts/setup.sh");
  // A data set directory with truncated files.
  fs::create_directories(Tmp("broken"));
  for (const char* f : {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    const std::string bytes = ReadAll(fs::path(data::kFashionMnistDir) / f);
    WriteAll(Tmp("broken") / f, bytes.substr(0, bytes.size() / 3));
  }
  ExpectCleanError(Run({"eval", model, "--data", "fashion-mnist", "--data-dir",
                        Tmp("broken").string(), "--predictions", Tmp("p.txt").string()}),
                   "t10k-images-idx3-ubyte.gz");
  EXPECT_FALSE(fs::exists(Tmp("p.txt")));
  // Models that are not 28x28-image classifiers.
  ExpectCleanError(Run({"eval", Fixture("two_outputs.onnx"), "--data", "fashion-mnist"}), "28x28");
  ExpectCleanError(Run({"eval", Fixture("unsupported_op.onnx"), "--data", "fashion-mnist"}));
  // An unwritable predictions file.
  ExpectCleanError(Run({"eval", model, "--data", "fashion-mnist", "--limit", "5", "--predictions",
                        Tmp("nodir/p.txt").string()}),
                   "p.txt");
  EXPECT_FALSE(fs::exists(Tmp("nodir")));
}

TEST_F(CliTest, BenchReportsLatencyStatistics) {
  Result r = Run({"bench", Fixture("tiny_fmnist.onnx"), "--batch", "4", "--threads", "1",
                  "--warmup", "1", "--runs", "7", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["runs"], 7);
  EXPECT_EQ(j["batch"], 4);
  EXPECT_EQ(j["threads"], 1);
  EXPECT_EQ(j["inputs"][0], "image f32 [4, 1, 28, 28]");
  const auto& l = j["latency_ms"];
  EXPECT_GT(l["min"].get<double>(), 0.0);
  EXPECT_LE(l["min"].get<double>(), l["median"].get<double>());
  EXPECT_LE(l["median"].get<double>(), l["p90"].get<double>());
  EXPECT_LE(l["p90"].get<double>(), l["max"].get<double>());
  EXPECT_NEAR(j["items_per_second"].get<double>(), 4 / (l["median"].get<double>() / 1e3), 1e-6);

  r = Run({"bench", Fixture("two_outputs.onnx"), "--shape", "x=5x3", "--runs", "2"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_NE(r.out.find("x f32 [5, 3]"), std::string::npos) << r;
  EXPECT_NE(r.out.find("median ms"), std::string::npos) << r;

  ExpectCleanError(Run({"bench", Fixture("tiny_fmnist.onnx"), "--isa", "sse1"}), "sse1");
  ExpectCleanError(Run({"bench", Fixture("tiny_fmnist.onnx"), "--shape", "image=1x1x28x27"}),
                   "does not fit");
  ExpectCleanError(Run({"bench", Fixture("tiny_fmnist.onnx"), "--shape", "nope=1x2"}), "nope");
  ExpectCleanError(Run({"bench", Fixture("tiny_fmnist.onnx"), "--shape", "image=1xx2"}),
                   "bad shape");
}

}  // namespace
}  // namespace qforge

namespace qforge {
namespace {

// Error statistics of approximating `ref` by `approx`, computed directly (the oracle).
struct Expected {
  double bias, std, sqnr_db;
};
Expected ExpectedStats(const std::vector<double>& ref, const std::vector<double>& approx) {
  double sum_e = 0, sum_e2 = 0, sum_r2 = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = approx[i] - ref[i];
    sum_e += e;
    sum_e2 += e * e;
    sum_r2 += ref[i] * ref[i];
  }
  const double n = static_cast<double>(ref.size());
  const double bias = sum_e / n;
  return {bias, std::sqrt(sum_e2 / n - bias * bias), 10 * std::log10(sum_r2 / sum_e2)};
}

TEST_F(CliTest, FormatsMatchHandComputedErrors) {
  Result r = Run({"formats", Fixture("formats_weights.onnx"), "--json"});
  ASSERT_EQ(r.code, 0) << r;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["weights"].size(), 2u);
  const auto& w1 = j["weights"][0];
  const auto& w2 = j["weights"][1];
  ASSERT_EQ(w1["name"], "w1");

  // w1 = [[1, -0.5], [0.25, 0.125]], int8 per tensor: s = 1/127, q = round_half_even(w / s):
  // 127, -63.5 -> -64, 31.75 -> 32, 15.875 -> 16.
  const double s = 1.0 / 127.0;
  const std::vector<double> ref = {1.0, -0.5, 0.25, 0.125};
  const Expected e = ExpectedStats(ref, {127 * s, -64 * s, 32 * s, 16 * s});
  const auto& i8 = w1["formats"]["int8/tensor"];
  EXPECT_NEAR(i8["bias"].get<double>(), e.bias, 1e-7);
  EXPECT_NEAR(i8["std"].get<double>(), e.std, 1e-7);
  EXPECT_NEAR(i8["sqnr_db"].get<double>(), e.sqnr_db, 1e-3);
  // int8 per channel: row scales 1/127 and 0.25/127; row 1 is [1, -0.5] as above, row 2
  // [0.25, 0.125] -> 127, 63.5 -> 64.
  const double s2 = 0.25 / 127.0;
  const Expected ec = ExpectedStats(ref, {127 * s, -64 * s, 127 * s2, 64 * s2});
  EXPECT_NEAR(w1["formats"]["int8/channel"]["bias"].get<double>(), ec.bias, 1e-7);
  EXPECT_NEAR(w1["formats"]["int8/channel"]["sqnr_db"].get<double>(), ec.sqnr_db, 1e-3);
  // Exactly representable in fp16 / bf16 / fp8 and in Q1.6 (multiples of 1/64, max 1 > Q0.7's).
  for (const char* f : {"fp16", "bf16", "fp8e4m3", "fp8e5m2", "q8"}) {
    EXPECT_TRUE(w1["formats"][f]["sqnr_db"].is_null()) << f << ": infinite SQNR is null";
    EXPECT_EQ(w1["formats"][f]["bias"], 0.0) << f;
  }
  EXPECT_EQ(w1["formats"]["q8"]["detail"], "Q1.6");

  // w2 = [[1000, 3], [0.5, -2]]: E4M3 saturates 1000 to 448 unless scaled; Q7.0 saturates to 127.
  EXPECT_EQ(w2["formats"]["fp8e4m3"]["max_abs_error"], 552.0);
  EXPECT_LT(w2["formats"]["fp8e4m3/scaled"]["max_abs_error"].get<double>(), 1.0);
  EXPECT_EQ(w2["formats"]["q8"]["detail"], "Q7.0");
  EXPECT_EQ(w2["formats"]["q8"]["max_abs_error"], 873.0);
  // E5M2 has 2 mantissa bits: 1000 rounds to 1024 (neighbours 896, 1024), 3 and 0.5 and -2 exact.
  EXPECT_EQ(w2["formats"]["fp8e5m2"]["max_abs_error"], 24.0);

  // Summary: bytes = ceil(n * bits / 8) + 4 bytes per scale, over both 2x2 tensors.
  std::map<std::string, int64_t> bytes;
  for (const auto& row : j["summary"]) bytes[row["format"]] = row["bytes"];
  EXPECT_EQ(bytes["int8/tensor"], 2 * (4 + 4));
  EXPECT_EQ(bytes["int8/channel"], 2 * (4 + 8));
  EXPECT_EQ(bytes["int4/channel"], 2 * (2 + 8));
  EXPECT_EQ(bytes["fp16"], 2 * 8);
  EXPECT_EQ(bytes["fp8e4m3"], 2 * 4);
  EXPECT_EQ(j["fp32_bytes"], 32);

  r = Run({"formats", Fixture("formats_weights.onnx")});
  ASSERT_EQ(r.code, 0) << r;
  for (const char* want : {"int4/channel", "fp8e5m2/scaled", "Q7.0", "mean SQNR dB"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want;
  ExpectCleanError(Run({"formats", Fixture("two_outputs.onnx")}), "no float weights");
}

}  // namespace
}  // namespace qforge
