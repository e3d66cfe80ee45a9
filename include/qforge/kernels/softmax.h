// Softmax and LogSoftmax along one axis of X viewed as [outer, axis, inner] (reference + fast).
//
// Both subtract the maximum along the axis first, so large inputs do not overflow:
//   softmax:    y = exp(x - max) / sum(exp(x - max))
//   logsoftmax: y = (x - max) - log(sum(exp(x - max)))
// ONNX's opset < 13 "coerce to 2-D at axis" semantics is the case inner == 1 with
// axis = product of the dims from the axis on; opset >= 13 uses the true axis length and inner.
#pragma once

#include <cstdint>

namespace qforge::kernels {

// Reference: sums in double, one (outer, inner) line at a time.
void SoftmaxRef(int64_t outer, int64_t axis, int64_t inner, const float* x, float* y, bool log);

// Fast path: OpenMP over outer; for inner > 1 the max / exp / sum run as contiguous vector loops
// over inner. Float sums: equal to the reference up to rounding. threads: 0 = OpenMP default.
void SoftmaxF32(int64_t outer, int64_t axis, int64_t inner, const float* x, float* y, bool log,
                int threads);

}  // namespace qforge::kernels
