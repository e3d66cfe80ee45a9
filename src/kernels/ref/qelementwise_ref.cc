// Reference int8 add / multiply / global average pooling: plain loops over the contract of
// qforge/kernels/qelementwise.h, the oracles for the AVX2 kernels.
#include "qforge/kernels/qelementwise.h"

namespace qforge::kernels::ref {

namespace {

int32_t Load(bool is_signed, const void* p, int64_t i) {
  return is_signed ? static_cast<const int8_t*>(p)[i] : static_cast<const uint8_t*>(p)[i];
}

void Store(bool is_signed, void* p, int64_t i, int32_t v) {
  if (is_signed)
    static_cast<int8_t*>(p)[i] = static_cast<int8_t>(v);
  else
    static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v);
}

}  // namespace

void QAdd(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step, void* c,
          int64_t n, const QAddParams& p) {
  for (int64_t i = 0; i < n; ++i) {
    // |acc| <= 2 * 255 * 2^21 < 2^31 (qelementwise.h): exact in int32.
    const int32_t acc = (Load(is_signed, a, i * a_step) - p.za) * p.ka +
                        (Load(is_signed, b, i * b_step) - p.zb) * p.kb;
    Store(is_signed, c, i, numerics::Requantize(acc, p.m, p.zc, p.qmin, p.qmax));
  }
}

void QMul(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step, void* c,
          int64_t n, const QMulParams& p) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t acc =
        (Load(is_signed, a, i * a_step) - p.za) * (Load(is_signed, b, i * b_step) - p.zb);
    Store(is_signed, c, i, numerics::Requantize(acc, p.m, p.zc, p.qmin, p.qmax));
  }
}

void QGlobalAveragePool(bool is_signed, int64_t planes, int64_t hw, const QPoolParams& p,
                        const void* x, void* y) {
  const numerics::FixedMultiplier m =
      numerics::QuantizeMultiplier(double(p.x_scale) / (double(p.y_scale) * double(hw)));
  for (int64_t c = 0; c < planes; ++c) {
    int64_t sum = 0;
    for (int64_t i = 0; i < hw; ++i) sum += Load(is_signed, x, c * hw + i) - p.zx;
    Store(is_signed, y, c,
          numerics::Requantize(static_cast<int32_t>(sum), m, p.zy, p.qmin, p.qmax));
  }
}

}  // namespace qforge::kernels::ref
