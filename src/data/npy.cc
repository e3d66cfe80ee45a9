// .npy reader and writer (NumPy format versions 1.0/2.0/3.0, little-endian, C order).
#include "qforge/data/npy.h"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "qforge/data/atomic_file.h"

namespace qforge::data {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

struct Descr {
  char kind;  // 'f', 'i', 'u', 'b'
  int size;
  DType dtype;
};
constexpr Descr kDescrs[] = {{'f', 2, DType::kF16}, {'f', 4, DType::kF32}, {'f', 8, DType::kF64},
                             {'i', 1, DType::kI8},  {'i', 2, DType::kI16}, {'i', 4, DType::kI32},
                             {'i', 8, DType::kI64}, {'u', 1, DType::kU8},  {'u', 2, DType::kU16},
                             {'u', 4, DType::kU32}, {'u', 8, DType::kU64}, {'b', 1, DType::kBool}};

// A tiny parser for the Python dict literal in the header, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& what) : s_(text), what_(what) {}

  void Parse(std::string& descr, bool& fortran, Shape& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    Expect('{');
    while (true) {
      SkipSpace();
      if (Peek() == '}') break;
      std::string key = ParseString();
      Expect(':');
      if (key == "descr") {
        descr = ParseString();
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran = ParseBool();
        have_fortran = true;
      } else if (key == "shape") {
        shape = ParseTuple();
        have_shape = true;
      } else {
        Fail("unexpected key '" + key + "'");
      }
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() != '}') Fail("expected ',' or '}'");
    }
    ++pos_;
    if (!have_descr || !have_fortran || !have_shape)
      Fail("missing one of 'descr', 'fortran_order', 'shape'");
    SkipSpace();
    if (pos_ != s_.size()) Fail("unexpected text after the dict");
  }

 private:
  [[noreturn]] void Fail(const std::string& why) const {
    throw Error("bad .npy header in '" + what_ + "': " + why);
  }
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void SkipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void Expect(char c) {
    SkipSpace();
    if (Peek() != c) Fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string ParseString() {
    SkipSpace();
    char q = Peek();
    if (q != '\'' && q != '"') Fail("expected a quoted string");
    size_t end = s_.find(q, pos_ + 1);
    if (end == std::string_view::npos) Fail("unterminated string");
    std::string out(s_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return out;
  }
  bool ParseBool() {
    SkipSpace();
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    Fail("fortran_order must be True or False");
  }
  Shape ParseTuple() {
    Expect('(');
    Shape shape;
    while (true) {
      SkipSpace();
      if (Peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(Peek()))) Fail("bad shape dimension");
      int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(Peek()))) {
        if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) Fail("shape dimension too large");
        v = v * 10 + (s_[pos_++] - '0');
      }
      shape.push_back(v);
      SkipSpace();
      if (Peek() == 'L') ++pos_;  // Python 2 longs
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() != ')') Fail("expected ',' or ')' in shape");
    }
    ++pos_;
    return shape;
  }

  std::string_view s_;
  const std::string& what_;
  size_t pos_ = 0;
};

DType DTypeFromDescr(const std::string& descr, const std::string& what) {
  auto fail = [&](const std::string& why) -> DType {
    throw Error("unsupported .npy dtype '" + descr + "' in '" + what + "': " + why);
  };
  if (descr.size() < 3) return fail("expected e.g. '<f4'");
  char order = descr[0];
  char kind = descr[1];
  int size = 0;
  for (size_t i = 2; i < descr.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(descr[i])) || size > 100)
      return fail("expected e.g. '<f4'");
    size = size * 10 + (descr[i] - '0');
  }
  if (order != '<' && order != '|' && order != '=' && order != '>')
    return fail("bad byte-order character");
  if (order == '>' && size > 1) return fail("big-endian data is not supported");
  for (const Descr& d : kDescrs)
    if (d.kind == kind && d.size == size) return d.dtype;
  return fail("supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1");
}

std::string DescrFor(DType t) {
  for (const Descr& d : kDescrs) {
    if (d.dtype == t) {
      const char order = d.size == 1 ? '|' : '<';
      return std::string(1, order) + d.kind + std::to_string(d.size);
    }
  }
  throw Error("dtype " + std::string(DTypeName(t)) + " cannot be stored in a .npy file");
}

uint32_t LittleEndian(const std::string& b, size_t pos, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[pos + i]);
  return v;
}

}  // namespace

Tensor ParseNpy(const std::string& bytes, const std::string& what) {
  if (bytes.size() < kMagicLen + 2 || bytes.compare(0, kMagicLen, kMagic) != 0)
    throw Error("not a .npy file '" + what + "': bad magic (expected \\x93NUMPY)");
  const int major = static_cast<uint8_t>(bytes[6]);
  size_t header_start;
  size_t header_len;
  if (major == 1) {
    if (bytes.size() < 10) throw Error("truncated .npy file '" + what + "': incomplete header");
    header_len = LittleEndian(bytes, 8, 2);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw Error("truncated .npy file '" + what + "': incomplete header");
    header_len = LittleEndian(bytes, 8, 4);
    header_start = 12;
  } else {
    throw Error("unsupported .npy version " + std::to_string(major) + "." +
                std::to_string(static_cast<uint8_t>(bytes[7])) + " in '" + what + "'");
  }
  if (bytes.size() - header_start < header_len)
    throw Error("truncated .npy file '" + what + "': header ends early");
  std::string descr;
  bool fortran = false;
  Shape shape;
  HeaderParser(std::string_view(bytes).substr(header_start, header_len), what)
      .Parse(descr, fortran, shape);
  DType dtype = DTypeFromDescr(descr, what);
  if (fortran)
    throw Error("unsupported .npy file '" + what +
                "': fortran_order=True (save it in C order, e.g. np.ascontiguousarray)");
  const size_t data_start = header_start + header_len;
  const size_t have = bytes.size() - data_start;
  // Check the size before allocating so a corrupt shape cannot request a huge buffer.
  uint64_t want = DTypeSize(dtype);
  for (int64_t d : shape) {
    if (d != 0 && want > (uint64_t{1} << 40) / static_cast<uint64_t>(d))
      throw Error("corrupt .npy file '" + what + "': shape " + ShapeToString(shape) +
                  " is too large");
    want *= static_cast<uint64_t>(d);
  }
  if (have != want)
    throw Error(std::string(have < want ? "truncated" : "corrupt") + " .npy file '" + what +
                "': shape " + ShapeToString(shape) + " of " + std::string(DTypeName(dtype)) +
                " needs " + std::to_string(want) + " data bytes, file has " + std::to_string(have));
  Tensor t(dtype, shape);
  if (want) std::memcpy(t.raw(), bytes.data() + data_start, want);
  if (dtype == DType::kBool) {
    for (uint8_t& b : std::span(static_cast<uint8_t*>(t.raw()), want)) {
      if (b > 1) throw Error("corrupt .npy file '" + what + "': bool value other than 0/1");
    }
  }
  return t;
}

Tensor ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open .npy file '" + path + "': " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read .npy file '" + path + "'");
  return ParseNpy(ss.str(), path);
}

std::string SerializeNpy(const Tensor& t) {
  if (!t.defined()) throw Error("cannot serialize an undefined tensor as .npy");
  std::string dict = "{'descr': '" + DescrFor(t.dtype()) + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    dict += std::to_string(t.shape()[i]);
    if (i + 1 < t.shape().size() || t.shape().size() == 1) dict += ",";
    if (i + 1 < t.shape().size()) dict += " ";
  }
  dict += "), }";
  // Pad with spaces and end with '\n' so that magic + version + length + dict is 64-aligned.
  // Version 1.0 stores the header length in 2 bytes; longer headers (huge ranks) need 2.0.
  auto padded = [&](size_t prefix) { return (prefix + dict.size() + 1 + 63) / 64 * 64; };
  int major = 1;
  size_t prefix = kMagicLen + 2 + 2;
  if (padded(prefix) - prefix > 65535) {
    major = 2;
    prefix = kMagicLen + 2 + 4;
  }
  const size_t total = padded(prefix);
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';
  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(major);
  out += '\0';
  const uint32_t len = static_cast<uint32_t>(dict.size());
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += static_cast<char>((len >> (8 * i)) & 0xFF);
  out += dict;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

void WriteNpy(const std::string& path, const Tensor& t) { WriteFileAtomic(path, SerializeNpy(t)); }

}  // namespace qforge::data
