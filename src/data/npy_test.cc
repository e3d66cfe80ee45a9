// Tests for the .npy reader/writer: round trips, NumPy's exact bytes, and malformed files.
#include "qforge/data/npy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace qforge::data {
namespace {

namespace fs = std::filesystem;

std::string TempDir() {
  fs::path p = fs::temp_directory_path() / ("qf_npy_test_" + std::to_string(::getpid()));
  fs::create_directories(p);
  return p.string();
}

// What numpy 1.24 writes for np.save(f, np.arange(6, dtype='<f4').reshape(2, 3)).
std::string NumpyArange6() {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  header.append(128 - 10 - header.size() - 1, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + std::string("\x76\x00", 2) + header;
  for (int i = 0; i < 6; ++i) {
    float f = static_cast<float>(i);
    bytes.append(reinterpret_cast<const char*>(&f), 4);
  }
  return bytes;
}

// Header + data for a hand-written dict, version 1.0.
std::string NpyWithDict(const std::string& dict, size_t data_bytes, int major = 1) {
  std::string h = dict + "\n";
  std::string out = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
  const uint32_t len = static_cast<uint32_t>(h.size());
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += static_cast<char>((len >> (8 * i)) & 0xFF);
  return out + h + std::string(data_bytes, '\0');
}

TEST(Npy, SerializeMatchesNumpyBytes) {
  Tensor t = Tensor::FromVector<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(SerializeNpy(t), NumpyArange6());
}

TEST(Npy, ParsesNumpyBytes) {
  Tensor t = ParseNpy(NumpyArange6(), "mem");
  EXPECT_EQ(t.dtype(), DType::kF32);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t.data<float>()[i], i);
}

TEST(Npy, ScalarAndOneDimShapesUsePythonTupleSyntax) {
  std::string s = SerializeNpy(Tensor::Scalar<int64_t>(3));
  EXPECT_NE(s.find("'shape': ()"), std::string::npos);
  s = SerializeNpy(Tensor::FromVector<bool>({2}, {true, false}));
  EXPECT_NE(s.find("'descr': '|b1'"), std::string::npos);
  EXPECT_NE(s.find("'shape': (2,)"), std::string::npos);
}

template <typename T>
void RoundTrip(DType want, Shape shape) {
  Tensor t(want, shape);
  for (int64_t i = 0; i < t.numel(); ++i)
    static_cast<T*>(t.raw())[i] = static_cast<T>((i * 37 + 11) % 100);
  const std::string bytes = SerializeNpy(t);
  const size_t header_end = bytes.size() - t.nbytes();
  EXPECT_EQ(header_end % 64, 0u);
  Tensor back = ParseNpy(bytes, "mem");
  EXPECT_EQ(back.dtype(), want);
  EXPECT_EQ(back.shape(), shape);
  EXPECT_EQ(std::memcmp(back.raw(), t.raw(), t.nbytes()), 0);
}

TEST(Npy, RoundTripsEveryDType) {
  RoundTrip<float>(DType::kF32, {2, 3, 4});
  RoundTrip<double>(DType::kF64, {5});
  RoundTrip<uint16_t>(DType::kF16, {3, 1});
  RoundTrip<int8_t>(DType::kI8, {7});
  RoundTrip<uint8_t>(DType::kU8, {1, 1, 28, 28});
  RoundTrip<int16_t>(DType::kI16, {4, 4});
  RoundTrip<int32_t>(DType::kI32, {});
  RoundTrip<int64_t>(DType::kI64, {2, 2});
  RoundTrip<uint16_t>(DType::kU16, {3});
  RoundTrip<uint32_t>(DType::kU32, {3});
  RoundTrip<uint64_t>(DType::kU64, {3});
  RoundTrip<uint8_t>(DType::kBool, {0, 3});  // values 0..99 are not valid bools, but 0 elements
}

TEST(Npy, BoolValuesOtherThanZeroOrOneAreRejected) {
  Tensor t = Tensor::FromVector<bool>({2}, {true, false});
  std::string bytes = SerializeNpy(t);
  bytes.back() = 7;
  EXPECT_THROW(ParseNpy(bytes, "mem"), Error);
}

TEST(Npy, Version2HeaderIsRead) {
  Tensor t = ParseNpy(NpyWithDict("{'descr': '<i4', 'fortran_order': False, 'shape': (3,)}", 12, 2),
                      "mem");
  EXPECT_EQ(t.dtype(), DType::kI32);
  EXPECT_EQ(t.shape(), (Shape{3}));
}

TEST(Npy, HeaderSpellingVariantsAreAccepted) {
  Tensor t = ParseNpy(
      NpyWithDict("{ \"shape\" : ( 2 , 2 ) , \"fortran_order\":False,\"descr\":\"<f8\"}", 32),
      "mem");
  EXPECT_EQ(t.dtype(), DType::kF64);
  EXPECT_EQ(t.shape(), (Shape{2, 2}));
}

void ExpectErrorContaining(const std::string& bytes, const std::string& needle) {
  try {
    ParseNpy(bytes, "x.npy");
    FAIL() << "no error; wanted one containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("x.npy"), std::string::npos) << e.what();
  }
}

TEST(Npy, RejectsFortranOrder) {
  ExpectErrorContaining(
      NpyWithDict("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24),
      "fortran_order");
}

TEST(Npy, RejectsBigEndianAndUnknownDTypes) {
  ExpectErrorContaining(NpyWithDict("{'descr': '>f4', 'fortran_order': False, 'shape': (1,)}", 4),
                        "big-endian");
  ExpectErrorContaining(NpyWithDict("{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}", 8),
                        "unsupported .npy dtype");
  ExpectErrorContaining(NpyWithDict("{'descr': '|O', 'fortran_order': False, 'shape': (1,)}", 8),
                        "unsupported .npy dtype");
}

TEST(Npy, RejectsBadHeaders) {
  ExpectErrorContaining("hello world, not numpy", "bad magic");
  ExpectErrorContaining(std::string("\x93NUMPY\x04\x00", 8) + "xx", "unsupported .npy version");
  ExpectErrorContaining(NpyWithDict("{'descr': '<f4', 'shape': (1,)}", 4), "missing");
  ExpectErrorContaining(NpyWithDict("{'descr': '<f4', 'fortran_order': False, 'shape': (1,", 4),
                        "bad .npy header");
  ExpectErrorContaining(NpyWithDict("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", 4),
                        "fortran_order");
  ExpectErrorContaining(NpyWithDict("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 4),
                        "shape");
  ExpectErrorContaining(
      NpyWithDict("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 4),
      "too large");
  ExpectErrorContaining(
      NpyWithDict("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", 4),
      "too large");
}

TEST(Npy, TruncatedOrPaddedDataIsRejected) {
  const std::string good = NumpyArange6();
  ExpectErrorContaining(good.substr(0, good.size() - 1), "truncated");
  ExpectErrorContaining(good + "x", "file has 25");
}

TEST(Npy, EveryPrefixOfAValidFileFailsCleanly) {
  const std::string good = NumpyArange6();
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_THROW(ParseNpy(good.substr(0, n), "prefix"), Error) << "prefix length " << n;
  }
}

TEST(Npy, FileRoundTripAndMissingFile) {
  const std::string dir = TempDir();
  const std::string path = dir + "/a.npy";
  Tensor t = Tensor::FromVector<float>({3}, {1.5f, -2.0f, 0.25f});
  WriteNpy(path, t);
  Tensor back = ReadNpy(path);
  EXPECT_EQ(back.ToFloatVector(), t.ToFloatVector());
  // Nothing but the target is left in the directory (no temporaries).
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  try {
    ReadNpy(dir + "/missing.npy");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.npy"), std::string::npos);
  }
  EXPECT_THROW(WriteNpy(dir + "/no/such/dir/a.npy", t), Error);
  EXPECT_THROW(SerializeNpy(Tensor(DType::kBF16, {2})), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qforge::data
