// Tests for the IDX reader: plain and gzip files, every dtype, and truncated/corrupt files.
#include "qforge/data/idx.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace qforge::data {
namespace {

namespace fs = std::filesystem;

class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("qf_idx_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static void WriteRaw(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  static void WriteGz(const std::string& path, const std::string& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    gzclose(f);
  }
  void ExpectError(const std::string& path, const std::string& needle) {
    try {
      ReadIdx(path);
      FAIL() << "no error for " << path;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }

  fs::path dir_;
};

// A 2x3 u8 image set in IDX bytes, written by hand (independent of WriteIdx).
std::string HandWrittenU8() {
  return std::string("\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03\x01\x02\x03\xfd\xfe\xff",
                     18);
}

TEST_F(IdxTest, ReadsHandWrittenU8) {
  WriteRaw(Path("a.idx"), HandWrittenU8());
  Tensor t = ReadIdx(Path("a.idx"));
  EXPECT_EQ(t.dtype(), DType::kU8);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.ToInt64Vector(), (std::vector<int64_t>{1, 2, 3, 253, 254, 255}));
}

TEST_F(IdxTest, ReadsBigEndianI32AndF32) {
  // i32 [2] = {1, -2}; f32 [1] = {1.5f} (0x3FC00000).
  WriteRaw(Path("i.idx"),
           std::string("\x00\x00\x0C\x01\x00\x00\x00\x02\x00\x00\x00\x01\xff\xff\xff\xfe", 16));
  EXPECT_EQ(ReadIdx(Path("i.idx")).ToInt64Vector(), (std::vector<int64_t>{1, -2}));
  WriteRaw(Path("f.idx"), std::string("\x00\x00\x0D\x01\x00\x00\x00\x01\x3f\xc0\x00\x00", 12));
  EXPECT_EQ(ReadIdx(Path("f.idx")).ToFloatVector(), (std::vector<float>{1.5f}));
}

TEST_F(IdxTest, GzipIsDetectedFromContent) {
  WriteGz(Path("a.gz"), HandWrittenU8());
  EXPECT_EQ(ReadIdx(Path("a.gz")).ToInt64Vector(), (std::vector<int64_t>{1, 2, 3, 253, 254, 255}));
}

TEST_F(IdxTest, WriteReadRoundTripEveryType) {
  std::vector<Tensor> ts = {
      Tensor::FromVector<uint8_t>({2, 2}, {0, 1, 128, 255}),
      Tensor::FromVector<int8_t>({3}, {-128, 0, 127}),
      Tensor::FromVector<int16_t>({1, 2}, {-30000, 1234}),
      Tensor::FromVector<int32_t>({2}, {-70000, 123456789}),
      Tensor::FromVector<float>({2, 1, 1}, {3.25f, -0.5f}),
      Tensor::FromVector<double>({1}, {1e300}),
  };
  for (const Tensor& t : ts) {
    WriteIdx(Path("rt.idx"), t);
    Tensor back = ReadIdx(Path("rt.idx"));
    EXPECT_EQ(back.dtype(), t.dtype());
    EXPECT_EQ(back.shape(), t.shape());
    for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(back.GetAsDouble(i), t.GetAsDouble(i));
  }
  EXPECT_THROW(WriteIdx(Path("bad.idx"), Tensor(DType::kI64, {2})), Error);
}

TEST_F(IdxTest, MissingFileNamesThePath) { ExpectError(Path("nope.idx"), "cannot open"); }

TEST_F(IdxTest, BadHeadersAreRejected) {
  WriteRaw(Path("m.idx"), std::string("\x01\x00\x08\x01\x00\x00\x00\x01\x05", 9));
  ExpectError(Path("m.idx"), "bad magic");
  WriteRaw(Path("t.idx"), std::string("\x00\x00\x07\x01\x00\x00\x00\x01\x05", 9));
  ExpectError(Path("t.idx"), "unknown element type");
  WriteRaw(Path("r.idx"), std::string("\x00\x00\x08\x00", 4));
  ExpectError(Path("r.idx"), "rank 0");
  WriteRaw(Path("r9.idx"), std::string("\x00\x00\x08\x09", 4));
  ExpectError(Path("r9.idx"), "rank 9");
  // Dimensions whose product is far beyond 8 GiB must fail before any allocation.
  WriteRaw(Path("huge.idx"), std::string("\x00\x00\x0E\x02\xff\xff\xff\xff\xff\xff\xff\xff", 12));
  ExpectError(Path("huge.idx"), "exceed");
}

TEST_F(IdxTest, TrailingBytesAreRejected) {
  WriteRaw(Path("x.idx"), HandWrittenU8() + "z");
  ExpectError(Path("x.idx"), "trailing");
}

TEST_F(IdxTest, EveryTruncationOfAPlainFileFails) {
  const std::string good = HandWrittenU8();
  for (size_t n = 0; n < good.size(); ++n) {
    WriteRaw(Path("p.idx"), good.substr(0, n));
    ExpectError(Path("p.idx"), "truncated");
  }
}

TEST_F(IdxTest, EveryTruncationOfAGzipFileFails) {
  // Large enough that the deflate stream spans many bytes.
  Tensor t(DType::kU8, {50, 28, 28});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(i * 7);
  WriteIdx(Path("plain.idx"), t);
  WriteGz(Path("full.gz"), ReadAll(Path("plain.idx")));
  const std::string gz = ReadAll(Path("full.gz"));
  ASSERT_GT(gz.size(), 40u);
  EXPECT_EQ(ReadIdx(Path("full.gz")).numel(), t.numel());
  for (size_t n = 0; n < gz.size(); n += (n < 64 ? 1 : 37)) {
    WriteRaw(Path("cut.gz"), gz.substr(0, n));
    EXPECT_THROW(ReadIdx(Path("cut.gz")), Error) << "prefix length " << n;
  }
}

TEST_F(IdxTest, CorruptGzipFails) {
  Tensor t(DType::kU8, {20, 28, 28});
  for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = static_cast<uint8_t>(i % 251);
  WriteIdx(Path("plain.idx"), t);
  WriteGz(Path("full.gz"), ReadAll(Path("plain.idx")));
  std::string gz = ReadAll(Path("full.gz"));
  // Flip bits inside the deflate data and in the CRC trailer: either the stream is invalid or
  // the CRC check fails; both must surface as an Error.
  for (size_t pos : {gz.size() / 2, gz.size() - 6}) {
    std::string bad = gz;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x5A);
    WriteRaw(Path("bad.gz"), bad);
    EXPECT_THROW(ReadIdx(Path("bad.gz")), Error) << "flipped byte " << pos;
  }
}

}  // namespace
}  // namespace qforge::data
