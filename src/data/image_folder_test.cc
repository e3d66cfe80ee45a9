// Tests of image-folder loading: PNG/JPEG files written with stb_image_write to a temp dir,
// channel conversion, bilinear resize against hand-computed values, normalization, errors.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC  // private copy: other test files may include it too
#include "qforge/data/image_folder.h"

#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace qforge::data {
namespace {

namespace fs = std::filesystem;

class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qf_image_folder_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  // A 2x3 RGB image: pixel (y, x) = (10 y + x, 100, 200 - x).
  std::string WriteRgb(const std::string& name) {
    std::vector<unsigned char> px;
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x) px.insert(px.end(), {uint8_t(10 * y + x), 100, uint8_t(200 - x)});
    EXPECT_NE(stbi_write_png(Path(name).c_str(), 3, 2, 3, px.data(), 3 * 3), 0);
    return Path(name);
  }
  fs::path dir_;
};

TEST_F(ImageFolderTest, LoadsPngAsNchwFloats) {
  const std::string p = WriteRgb("a.png");
  ImageOptions o;
  const Tensor t = LoadImage(p, o);
  ASSERT_EQ(t.shape(), (Shape{3, 2, 3}));
  const float* v = t.data<float>();
  EXPECT_FLOAT_EQ(v[0 * 6 + 1 * 3 + 2], 12 / 255.0f);  // R at (1, 2)
  EXPECT_FLOAT_EQ(v[1 * 6 + 0], 100 / 255.0f);         // G
  EXPECT_FLOAT_EQ(v[2 * 6 + 2], 198 / 255.0f);         // B at (0, 2)
  // Normalization: (p / 255 - mean) / std per channel.
  o.mean = {0.5f, 0.25f, 0.0f};
  o.std = {0.5f, 2.0f, 1.0f};
  const Tensor n = LoadImage(p, o);
  EXPECT_FLOAT_EQ(n.data<float>()[0], (0 / 255.0f - 0.5f) / 0.5f);
  EXPECT_FLOAT_EQ(n.data<float>()[6], (100 / 255.0f - 0.25f) / 2.0f);
  // Gray: one channel (stb's luma).
  o = {};
  o.channels = 1;
  EXPECT_EQ(LoadImage(p, o).shape(), (Shape{1, 2, 3}));
}

TEST_F(ImageFolderTest, ResizeBilinearHalfPixel) {
  // 1x2 -> 1x4: samples at x = -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1).
  const std::vector<float> src = {0.0f, 1.0f};
  EXPECT_EQ(ResizeBilinear(src.data(), 1, 2, 1, 1, 4),
            (std::vector<float>{0.0f, 0.25f, 0.75f, 1.0f}));
  // 2x2 -> 1x1 averages the four pixels (center sample at (0.5, 0.5)).
  const std::vector<float> sq = {0, 1, 2, 3};
  EXPECT_EQ(ResizeBilinear(sq.data(), 2, 2, 1, 1, 1), (std::vector<float>{1.5f}));
  // Identity size is exact, channels stay interleaved.
  const std::vector<float> rgb = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(ResizeBilinear(rgb.data(), 1, 2, 3, 1, 2), rgb);
  // Through LoadImage: a resized image has the requested shape.
  ImageOptions o;
  o.height = 4, o.width = 5;
  EXPECT_EQ(LoadImage(WriteRgb("b.png"), o).shape(), (Shape{3, 4, 5}));
}

TEST_F(ImageFolderTest, JpegAndListing) {
  std::vector<unsigned char> gray(8 * 8, 128);
  ASSERT_NE(stbi_write_jpg(Path("c.JPG").c_str(), 8, 8, 1, gray.data(), 95), 0);
  WriteRgb("a.png");
  std::ofstream(Path("notes.txt")) << "x";
  fs::create_directories(dir_ / "sub.png");  // a directory, not an image
  const std::vector<std::string> files = ListImageFiles(dir_.string());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(fs::path(files[0]).filename(), "a.png");
  EXPECT_EQ(fs::path(files[1]).filename(), "c.JPG");
  ImageOptions o;
  const Tensor t = LoadImage(files[1], o);  // gray JPEG expanded to RGB
  EXPECT_EQ(t.shape(), (Shape{3, 8, 8}));
  EXPECT_NEAR(t.data<float>()[0], 128 / 255.0f, 2 / 255.0f);
}

TEST_F(ImageFolderTest, Errors) {
  EXPECT_THROW(ListImageFiles(Path("missing")), Error);
  std::ofstream(Path("bad.png")) << "not a png";
  try {
    LoadImage(Path("bad.png"), {});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.png"), std::string::npos);
  }
  ImageOptions o;
  o.channels = 2;
  EXPECT_THROW(o.Check(), Error);
  o.channels = 3;
  o.mean = {1, 2};
  EXPECT_THROW(o.Check(), Error);
  o.mean = {};
  o.std = {0};
  EXPECT_THROW(o.Check(), Error);
}

}  // namespace
}  // namespace qforge::data
