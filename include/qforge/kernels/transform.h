// Data-movement kernels: Cast, Transpose, Concat, Split, Slice, Gather.
//
// These take fully resolved parameters (normalized axes, concrete sizes); the ONNX-level
// attribute/input handling (negative axes, clamping, defaults) lives in runtime/ops. Every
// kernel still checks its parameters and throws qforge::Error on anything inconsistent.
// Except Cast, all are dtype-agnostic (they move bytes), so they work for every storable dtype.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

// Converts x to dtype `to` (any storable dtype to any storable dtype).
// - float -> integer: truncates toward zero; NaN -> 0; out-of-range saturates.
// - integer -> integer: wraps modulo 2^bits (like C++/numpy astype).
// - anything -> bool: x != 0 (NaN -> true); bool -> number: 0 / 1.
// - -> f16 / bf16 / fp8: round to nearest even via qforge::numerics; f16/bf16 overflow to Inf;
//   fp8 overflow saturates to max finite when `saturate` (ONNX Cast-19 default), else Inf/NaN.
// - f64 -> f16/bf16/fp8 goes through f32 (a double rounding only on exact f32 ties).
// Same dtype returns x itself (shared storage).
Tensor Cast(const Tensor& x, DType to, bool saturate = true);

// out.shape[i] = x.shape[perm[i]]. perm must be a permutation of 0..rank-1.
Tensor Transpose(const Tensor& x, std::span<const int64_t> perm);
Tensor TransposeRef(const Tensor& x, std::span<const int64_t> perm);

// Concatenates along axis (0 <= axis < rank). All inputs share dtype, rank and other dims.
Tensor Concat(std::span<const Tensor> xs, int64_t axis);

// Splits along axis into pieces of the given sizes (must sum to x.shape[axis]).
std::vector<Tensor> Split(const Tensor& x, int64_t axis, std::span<const int64_t> sizes);

// out[i0..] = x[starts[0] + i0 * steps[0], ...] for out_shape (all full rank). Every index
// touched must be in range (checked); steps may be negative, never zero.
Tensor Slice(const Tensor& x, std::span<const int64_t> starts, std::span<const int64_t> steps,
             const Shape& out_shape);
Tensor SliceRef(const Tensor& x, std::span<const int64_t> starts, std::span<const int64_t> steps,
                const Shape& out_shape);

// ONNX Gather: out shape = data.shape[:axis] + indices.shape + data.shape[axis+1:]. indices are
// i32 or i64; negative values count from the end; out of range throws Error.
Tensor Gather(const Tensor& data, const Tensor& indices, int64_t axis);

}  // namespace qforge::kernels
