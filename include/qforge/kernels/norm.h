// Normalization kernels: BatchNormalization (inference) and LayerNormalization (reference + fast).
#pragma once

#include <cstdint>

namespace qforge::kernels {

// --- BatchNormalization (inference), X viewed as [n, c, s] (s = product of spatial dims) ---

// Reference: y = (x - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + bias[c], computed in double
// per element and rounded once to float.
void BatchNormRef(int64_t n, int64_t c, int64_t s, const float* x, const float* scale,
                  const float* bias, const float* mean, const float* var, float epsilon, float* y);

// Folds the four BN parameter vectors into y = x * a[c] + b[c]:
//   a = scale / sqrt(var + epsilon),  b = bias - mean * a   (computed in double, stored as float).
void BatchNormFold(int64_t c, const float* scale, const float* bias, const float* mean,
                   const float* var, float epsilon, float* a, float* b);

// Fast path: y = x * a[c] + b[c] over [n, c, s], OpenMP over the n*c planes, vectorized over s.
// Matches BatchNormRef up to float rounding (a few ulps). threads: 0 = OpenMP default.
void ChannelScaleShiftF32(int64_t n, int64_t c, int64_t s, const float* x, const float* a,
                          const float* b, float* y, int threads);

// --- LayerNormalization, X viewed as [rows, cols] (cols = product of the normalized dims) ---

// For each row: mean = sum(x) / cols, var = sum((x - mean)^2) / cols (population variance),
// inv_std = 1 / sqrt(var + epsilon), y = (x - mean) * inv_std * scale[j] + bias[j].
// Statistics are accumulated in double. scale has cols entries (already broadcast); bias may be
// null (no bias); mean and inv_std_dev (nullable) receive one value per row.
// Rows are processed in parallel (OpenMP); the result does not depend on the thread count.
void LayerNormRef(int64_t rows, int64_t cols, const float* x, const float* scale, const float* bias,
                  float epsilon, float* y, float* mean, float* inv_std_dev, int threads);

// Fast path (AVX2, else the reference): statistics and normalization in float, rows in
// parallel. Matches LayerNormRef within 1e-5 relative (tested). Same arguments.
void LayerNormF32(int64_t rows, int64_t cols, const float* x, const float* scale, const float* bias,
                  float epsilon, float* y, float* mean, float* inv_std_dev, int threads);

}  // namespace qforge::kernels
