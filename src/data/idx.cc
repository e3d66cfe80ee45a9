// IDX (MNIST family) reader and writer; gzip handled transparently by zlib.
#include "qforge/data/idx.h"

#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <string>

#include "qforge/data/atomic_file.h"

namespace qforge::data {
namespace {

struct IdxType {
  uint8_t code;
  DType dtype;
};
constexpr IdxType kIdxTypes[] = {{0x08, DType::kU8},  {0x09, DType::kI8},  {0x0B, DType::kI16},
                                 {0x0C, DType::kI32}, {0x0D, DType::kF32}, {0x0E, DType::kF64}};
constexpr int kMaxRank = 8;
// Refuse absurd sizes from a corrupt header before allocating: 8 GiB is far beyond any IDX set.
constexpr uint64_t kMaxBytes = uint64_t{8} << 30;

// RAII wrapper over a zlib gzFile.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    errno = 0;
    f_ = gzopen(path.c_str(), "rb");
    if (!f_) {
      throw Error("cannot open IDX file '" + path +
                  "': " + (errno ? std::strerror(errno) : "out of memory"));
    }
    gzbuffer(f_, 1 << 16);
  }
  ~GzReader() {
    if (f_) gzclose(f_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; returns how many were read. Throws on a decompression/read error.
  size_t Read(void* dst, size_t n) {
    size_t total = 0;
    auto* out = static_cast<uint8_t*>(dst);
    while (total < n) {
      // gzread takes an unsigned and returns an int, so read in chunks below INT_MAX.
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - total, size_t{1} << 30));
      int got = gzread(f_, out + total, chunk);
      if (got < 0) {
        int errnum = 0;
        const char* msg = gzerror(f_, &errnum);
        throw Error("corrupt IDX file '" + path_ +
                    "': " + (errnum == Z_ERRNO ? std::strerror(errno) : msg));
      }
      if (got == 0) break;
      total += static_cast<size_t>(got);
    }
    // zlib reports a truncated gzip stream as an error only once it reaches the end; surface it.
    if (total < n) {
      int errnum = 0;
      const char* msg = gzerror(f_, &errnum);
      if (errnum != Z_OK && errnum != Z_STREAM_END)
        throw Error("corrupt IDX file '" + path_ + "': " + msg);
    }
    return total;
  }

 private:
  std::string path_;
  gzFile f_ = nullptr;
};

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Reverses the bytes of every element (IDX is big-endian, the host little-endian).
void SwapElements(uint8_t* data, size_t count, size_t elem_size) {
  if (elem_size == 1) return;
  for (size_t i = 0; i < count; ++i) {
    uint8_t* e = data + i * elem_size;
    for (size_t a = 0, b = elem_size - 1; a < b; ++a, --b) std::swap(e[a], e[b]);
  }
}

}  // namespace

Tensor ReadIdx(const std::string& path) {
  GzReader in(path);
  uint8_t magic[4];
  if (in.Read(magic, 4) != 4)
    throw Error("truncated IDX file '" + path + "': shorter than the 4-byte header");
  if (magic[0] != 0 || magic[1] != 0)
    throw Error("not an IDX file '" + path + "': bad magic bytes");
  DType dtype = DType::kUndefined;
  for (const IdxType& t : kIdxTypes)
    if (t.code == magic[2]) dtype = t.dtype;
  if (dtype == DType::kUndefined)
    throw Error("not an IDX file '" + path + "': unknown element type code " +
                std::to_string(magic[2]));
  const int rank = magic[3];
  if (rank < 1 || rank > kMaxRank)
    throw Error("not an IDX file '" + path + "': rank " + std::to_string(rank) + " outside 1.." +
                std::to_string(kMaxRank));
  uint8_t dim_bytes[4 * kMaxRank];
  if (in.Read(dim_bytes, 4 * rank) != static_cast<size_t>(4 * rank))
    throw Error("truncated IDX file '" + path + "': header ends inside the dimensions");
  Shape shape;
  uint64_t bytes = DTypeSize(dtype);
  for (int i = 0; i < rank; ++i) {
    uint32_t d = BigEndian32(dim_bytes + 4 * i);
    shape.push_back(d);
    // Checked before multiplying so the product cannot overflow (d < 2^32, bytes <= 2^33).
    if (d != 0 && bytes > kMaxBytes / d)
      throw Error("corrupt IDX file '" + path + "': dimensions " + ShapeToString(shape) +
                  "... exceed 8 GiB");
    bytes *= d;
  }
  Tensor t(dtype, shape);
  size_t got = in.Read(t.raw(), bytes);
  if (got != bytes)
    throw Error("truncated IDX file '" + path + "': expected " + std::to_string(bytes) +
                " data bytes for shape " + ShapeToString(shape) + ", found " + std::to_string(got));
  uint8_t extra;
  if (in.Read(&extra, 1) != 0)
    throw Error("corrupt IDX file '" + path + "': trailing bytes after the " +
                std::to_string(bytes) + " data bytes of shape " + ShapeToString(shape));
  SwapElements(static_cast<uint8_t*>(t.raw()), static_cast<size_t>(t.numel()), DTypeSize(dtype));
  return t;
}

void WriteIdx(const std::string& path, const Tensor& t) {
  uint8_t code = 0;
  for (const IdxType& it : kIdxTypes)
    if (it.dtype == t.dtype()) code = it.code;
  if (code == 0)
    throw Error("cannot write '" + path + "' as IDX: dtype " + std::string(DTypeName(t.dtype())) +
                " has no IDX type code");
  if (t.rank() < 1 || t.rank() > kMaxRank)
    throw Error("cannot write '" + path + "' as IDX: rank " + std::to_string(t.rank()));
  std::string header = {0, 0, static_cast<char>(code), static_cast<char>(t.rank())};
  for (int64_t d : t.shape()) {
    if (d > std::numeric_limits<uint32_t>::max())
      throw Error("cannot write '" + path + "' as IDX: dimension too large");
    for (int s = 24; s >= 0; s -= 8) header.push_back(static_cast<char>((d >> s) & 0xFF));
  }
  std::string data(static_cast<const char*>(t.raw()), t.nbytes());
  SwapElements(reinterpret_cast<uint8_t*>(data.data()), static_cast<size_t>(t.numel()),
               DTypeSize(t.dtype()));
  WriteFileAtomic(path, {header, data});
}

}  // namespace qforge::data
