// NumPy .npy files: read and write dense tensors (format versions 1.0, 2.0 and 3.0).
//
// Supported element types (descr): f2 f4 f8, i1 i2 i4 i8, u1 u2 u4 u8, b1; little-endian
// ('<', '|', or '=' on this little-endian host). C (row-major) order only: fortran_order=True
// and big-endian data are rejected with a clear error rather than silently transposed/swapped.
#pragma once

#include <string>

#include "qforge/tensor/tensor.h"

namespace qforge::data {

// Reads a .npy file. Throws qforge::Error naming `path` for a missing file, bad magic,
// unsupported version, malformed header, unsupported dtype, Fortran order, or a data section
// whose size does not match the shape (truncated or trailing bytes).
Tensor ReadNpy(const std::string& path);

// Parses .npy bytes already in memory; `what` names the source in error messages.
Tensor ParseNpy(const std::string& bytes, const std::string& what);

// Serializes a tensor as .npy bytes (version 1.0, or 2.0 when the header needs it); the
// header is padded so the data starts at a multiple of 64 bytes, as NumPy does.
// Throws qforge::Error for dtypes .npy cannot hold (bf16, fp8).
std::string SerializeNpy(const Tensor& t);

// Writes SerializeNpy(t) to `path` atomically (temporary file + rename).
void WriteNpy(const std::string& path, const Tensor& t);

}  // namespace qforge::data
