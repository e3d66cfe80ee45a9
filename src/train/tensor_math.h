// Small fp32 tensor helpers shared by the backward functions (internal to src/train).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "qforge/tensor/tensor.h"

namespace qforge::train {

// a + b, same shape, f32 (a new tensor).
Tensor AddTensors(const Tensor& a, const Tensor& b);

// Sums g (shape = broadcast result) down to `shape`, undoing numpy broadcasting: leading
// extra dims and dims where shape has 1 are summed (in double). g itself when shapes match.
Tensor SumToShape(const Tensor& g, const Shape& shape);

// Throws Error naming the node unless t is a defined f32 tensor.
void RequireF32(const std::string& who, const Tensor& t, const char* what);

// The gradient of output j, or zeros of output j's shape when none flows.
Tensor GradOrZeros(std::span<const Tensor> grad_outputs, std::span<const Tensor> outputs, size_t j);

// C[M x N] (+)= op(A) op(B), plain row-major float matrices, via kernels::Sgemm.
// accumulate: C += instead of C =.
void MatMulF32(int64_t M, int64_t N, int64_t K, const float* a, bool trans_a, const float* b,
               bool trans_b, float* c, bool accumulate, int threads);

// Normalizes a possibly negative axis against rank; throws Error naming `who` when out of range.
int64_t NormalizeAxis(const std::string& who, int64_t axis, int64_t rank);

}  // namespace qforge::train
