// Tests of .npy sample folders: one input (flat or subfolder), several inputs, errors.
#include "qforge/data/npy_folder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "qforge/data/npy.h"

namespace qforge::data {
namespace {

namespace fs = std::filesystem;

class NpyFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qf_npy_folder_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& rel, float v) {
    fs::create_directories((dir_ / rel).parent_path());
    WriteNpy((dir_ / rel).string(), Tensor::FromVector<float>({2}, {v, v + 1}));
  }
  fs::path dir_;
};

TEST_F(NpyFolderTest, SingleInputFlat) {
  Write("b.npy", 2);
  Write("a.npy", 1);
  const NpyFolder f(dir_.string(), {"x"});
  ASSERT_EQ(f.size(), 2);
  EXPECT_EQ(f.Sample(0).at("x").data<float>()[0], 1);  // name order
  EXPECT_EQ(f.Sample(1).at("x").data<float>()[0], 2);
  EXPECT_THROW(f.Sample(2), Error);
}

TEST_F(NpyFolderTest, SeveralInputsInSubfolders) {
  Write("ids/0.npy", 1);
  Write("ids/1.npy", 2);
  Write("attn_mask/0.npy", 10);  // "attn/mask" in its file-name-safe form
  Write("attn_mask/1.npy", 20);
  const NpyFolder f(dir_.string(), {"ids", "attn/mask"});
  ASSERT_EQ(f.size(), 2);
  const auto s = f.Sample(1);
  EXPECT_EQ(s.at("ids").data<float>()[0], 2);
  EXPECT_EQ(s.at("attn/mask").data<float>()[0], 20);
}

TEST_F(NpyFolderTest, Errors) {
  EXPECT_THROW(NpyFolder((dir_ / "missing").string(), {"x"}), Error);
  EXPECT_THROW(NpyFolder(dir_.string(), {"x"}), Error);  // no files
  Write("a/0.npy", 1);
  Write("b/0.npy", 1);
  Write("b/1.npy", 1);
  EXPECT_THROW(NpyFolder(dir_.string(), {"a", "c"}), Error);  // no folder for c
  try {
    NpyFolder(dir_.string(), {"a", "b"});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has 2 files"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qforge::data
