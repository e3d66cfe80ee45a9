// Reader for the IDX format used by MNIST and its relatives (Fashion-MNIST, KMNIST, EMNIST).
//
// IDX layout: 2 zero bytes, a type code (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32,
// 0x0E f64), the rank, then `rank` big-endian u32 dimensions and the elements, big-endian,
// row-major. Files may be gzip-compressed (detected from the content, not the name).
#pragma once

#include <string>

#include "qforge/tensor/tensor.h"

namespace qforge::data {

// Reads an IDX file (plain or gzip) into a Tensor of the matching dtype and shape, converting
// elements to host byte order. Throws qforge::Error naming `path` when the file is missing,
// unreadable, not IDX (bad magic, unknown type code, rank 0 or > 8), truncated, followed by
// trailing bytes, or a corrupt gzip stream.
Tensor ReadIdx(const std::string& path);

// Serializes a Tensor (u8, i8, i16, i32, f32 or f64; rank 1..8) as an uncompressed IDX file.
// Used to write test fixtures; written atomically (see atomic_file.h).
void WriteIdx(const std::string& path, const Tensor& t);

}  // namespace qforge::data
