// Pad (ONNX semantics) for any storable dtype: constant, reflect, edge and wrap modes.
//
// pads_begin / pads_end have one entry per axis and may be negative: a negative pad first
// crops that many elements from that side, then the positive pads are filled relative to the
// cropped data (ONNX reference semantics). Output dim = in + pads_begin + pads_end.
//   constant  fill with *value
//   edge      repeat the border element
//   reflect   mirror without repeating the border (numpy 'reflect'); a length-1 axis repeats it
//   wrap      periodic continuation
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

// value: one element of x's dtype (only read in kConstant mode; nullptr means zero).
// Throws Error when an output dim would be negative, or a non-constant mode must fill from an
// axis cropped to length 0.
Tensor PadRef(const Tensor& x, const std::vector<int64_t>& pads_begin,
              const std::vector<int64_t>& pads_end, PadMode mode, const void* value);

}  // namespace qforge::kernels
