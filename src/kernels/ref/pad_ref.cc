// Pad reference kernel: per-axis source-index maps, then one element copy per output element.
#include <cstring>
#include <string>

#include "qforge/kernels/pad.h"

namespace qforge::kernels {

namespace {

// Maps i (may be outside [0, n)) into [0, n) for the non-constant modes; n >= 1.
int64_t MapOutside(int64_t i, int64_t n, PadMode mode) {
  switch (mode) {
    case PadMode::kEdge:
      return i < 0 ? 0 : n - 1;
    case PadMode::kWrap:
      return ((i % n) + n) % n;
    case PadMode::kReflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      int64_t m = ((i % period) + period) % period;
      return m < n ? m : period - m;
    }
    case PadMode::kConstant:
      break;
  }
  return -1;
}

}  // namespace

Tensor PadRef(const Tensor& x, const std::vector<int64_t>& pads_begin,
              const std::vector<int64_t>& pads_end, PadMode mode, const void* value) {
  const int64_t rank = x.rank();
  if (static_cast<int64_t>(pads_begin.size()) != rank ||
      static_cast<int64_t>(pads_end.size()) != rank)
    throw Error("Pad: expected " + std::to_string(rank) + " pads per side, got " +
                std::to_string(pads_begin.size()) + " and " + std::to_string(pads_end.size()));
  // |pad| <= 2^40 keeps every size computation below far from int64 overflow.
  constexpr int64_t kMaxPad = int64_t{1} << 40;
  Shape out_shape(rank);
  for (int64_t a = 0; a < rank; ++a) {
    if (pads_begin[a] < -kMaxPad || pads_begin[a] > kMaxPad || pads_end[a] < -kMaxPad ||
        pads_end[a] > kMaxPad)
      throw Error("Pad: pad of axis " + std::to_string(a) + " is out of range");
    out_shape[a] = x.shape()[a] + pads_begin[a] + pads_end[a];
    if (out_shape[a] < 0)
      throw Error("Pad: pads " + std::to_string(pads_begin[a]) + ", " +
                  std::to_string(pads_end[a]) + " make axis " + std::to_string(a) + " of size " +
                  std::to_string(x.shape()[a]) + " negative");
  }
  // Allocating first also rejects outputs too large to hold (and bounds every axis length
  // for the maps below when the output is not empty).
  Tensor y(x.dtype(), out_shape);
  if (y.numel() == 0) return y;
  // src[a][o]: the input index read for output index o along axis a, or -1 for the constant.
  std::vector<std::vector<int64_t>> src(rank);
  for (int64_t a = 0; a < rank; ++a) {
    const int64_t in = x.shape()[a];
    const int64_t out = out_shape[a];
    // Negative pads crop first; positive pads then fill around the cropped range.
    const int64_t crop_begin = pads_begin[a] < 0 ? -pads_begin[a] : 0;
    const int64_t crop_end = pads_end[a] < 0 ? -pads_end[a] : 0;
    const int64_t kept = in - crop_begin - crop_end;
    const int64_t fill_begin = pads_begin[a] > 0 ? pads_begin[a] : 0;
    const bool fills = out > kept;
    if (mode != PadMode::kConstant && fills && kept <= 0)
      throw Error("Pad: cannot fill axis " + std::to_string(a) +
                  " in a non-constant mode: it has no elements left after cropping");
    src[a].resize(out);
    for (int64_t o = 0; o < out; ++o) {
      int64_t i = o - fill_begin;  // index into the cropped range
      if (i < 0 || i >= kept) i = mode == PadMode::kConstant ? -1 : MapOutside(i, kept, mode);
      src[a][o] = i < 0 ? -1 : i + crop_begin;
    }
  }
  const size_t elem = DTypeSize(x.dtype());
  const int64_t total = y.numel();
  const std::vector<int64_t> in_strides = RowMajorStrides(x.shape());
  const auto* xd = static_cast<const uint8_t*>(x.raw());
  auto* yd = static_cast<uint8_t*>(y.raw());
  std::vector<int64_t> idx(rank, 0);  // output multi-index
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t offset = 0;
    bool constant = false;
    for (int64_t a = 0; a < rank; ++a) {
      const int64_t s = src[a][idx[a]];
      if (s < 0) constant = true;
      offset += s * in_strides[a];
    }
    uint8_t* dst = yd + flat * elem;
    if (!constant)
      std::memcpy(dst, xd + offset * elem, elem);
    else if (value)
      std::memcpy(dst, value, elem);  // else stays zero (fresh tensors are zeroed)
    for (int64_t a = rank - 1; a >= 0; --a) {
      if (++idx[a] < out_shape[a]) break;
      idx[a] = 0;
    }
  }
  return y;
}

}  // namespace qforge::kernels
