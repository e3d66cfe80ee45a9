// Helpers shared by the tests that run the qforge binary: where it and the repository are,
// reading files, shell quoting, running a command with stdout/stderr captured, whether
// Fashion-MNIST is installed, and top-1 from `qforge eval --json`.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "qforge/data/fashion_mnist.h"

namespace qforge::cli_test {

namespace fs = std::filesystem;

// The repository root (this header is tests/cli_test_util.h).
inline fs::path Root() { return fs::path(__FILE__).parent_path().parent_path(); }

// The qforge binary: $QFORGE_BIN, else <build>/src/cli/qforge next to the running test's
// <build>/tests/ directory.
inline std::string QforgeBinary() {
  if (const char* env = std::getenv("QFORGE_BIN")) return env;
  return (fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "src/cli/qforge")
      .string();
}

inline std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Single-quotes s for /bin/sh.
inline std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Result {
  int code = -1;  // exit code; -1 when killed by a signal
  std::string out, err;
};

// Runs `qforge args...` through the shell; stdout and stderr go through files in scratch_dir
// (which must exist), so the output can be large.
inline Result RunQforge(const std::vector<std::string>& args, const fs::path& scratch_dir) {
  std::string cmd = Quote(QforgeBinary());
  for (const auto& a : args) cmd += " " + Quote(a);
  const std::string out = (scratch_dir / "stdout.txt").string();
  const std::string err = (scratch_dir / "stderr.txt").string();
  cmd += " >" + Quote(out) + " 2>" + Quote(err);
  Result r;
  const int rc = std::system(cmd.c_str());
  r.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = ReadAll(out);
  r.err = ReadAll(err);
  return r;
}

// Both the training and the test images of dataset-fashion-mnist are installed.
inline bool HaveFashionMnist() {
  auto have = [](const std::string& name) {
    const fs::path dir(data::kFashionMnistDir);
    return fs::exists(dir / (name + ".gz")) || fs::exists(dir / name);
  };
  return have("train-images-idx3-ubyte") && have("t10k-images-idx3-ubyte");
}

// Top-1 in % from `qforge eval MODEL --data fashion-mnist --json` (the first `limit` test
// images; 0: all 10 000); -1 (and a test failure) when qforge fails.
inline double EvalTop1(const std::string& model, const fs::path& scratch_dir, int limit = 0) {
  std::vector<std::string> args = {"eval", model, "--data", "fashion-mnist", "--json"};
  if (limit > 0) args.insert(args.end(), {"--limit", std::to_string(limit)});
  const Result r = RunQforge(args, scratch_dir);
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? 100.0 * nlohmann::json::parse(r.out)["top1"].get<double>() : -1;
}

// A test fixture with its own scratch directory (under the system temp dir, named by `prefix`,
// the process id and the test), made empty before each test and removed after it; Run() runs
// qforge with its stdout / stderr files there.
class ScratchDirTest : public ::testing::Test {
 protected:
  explicit ScratchDirTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           (prefix_ + "_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Tmp(const std::string& name) const { return (dir_ / name).string(); }
  // models/NAME.onnx in the repository.
  static std::string Model(const std::string& name) {
    return (Root() / "models" / (name + ".onnx")).string();
  }
  Result Run(const std::vector<std::string>& args) const { return RunQforge(args, dir_); }

  fs::path dir_;

 private:
  std::string prefix_;
};

}  // namespace qforge::cli_test
