// Reference quantized GEMM (see qgemm_ref.h): the slow, obviously correct version.
#include "kernels/ref/qgemm_ref.h"

#include "qforge/numerics/requantize.h"

namespace qforge::kernels::ref {

void QGemm(int64_t M, int64_t N, int64_t K, const QGemmA& a, const int8_t* b, int64_t ldb,
           const int32_t* zb, const QGemmOutput& out, void* c, int64_t ldc) {
  ValidateQGemm(M, N, K, a, out, ldc);
  const auto* a_u8 = static_cast<const uint8_t*>(a.data);
  const auto* a_s8 = static_cast<const int8_t*>(a.data);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      const int64_t b_zero = zb ? zb[n] : 0;
      int64_t sum = 0;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t a_value = a.is_signed ? a_s8[m * a.ld + k] : a_u8[m * a.ld + k];
        const int64_t b_value = b[k * ldb + n];
        sum += (a_value - a.zero_point) * (b_value - b_zero);
      }
      if (out.bias) sum += out.bias[n];
      // |sum before bias| < 2^31 (K <= kMaxQGemmK); the bias addition wraps like int32 hardware.
      const auto acc = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(sum)));
      switch (out.kind) {
        case QGemmOutputKind::kInt32:
          static_cast<int32_t*>(c)[m * ldc + n] = acc;
          break;
        case QGemmOutputKind::kUint8:
        case QGemmOutputKind::kInt8: {
          const numerics::FixedMultiplier mult = out.multipliers[out.num_multipliers == 1 ? 0 : n];
          const int32_t q = numerics::Requantize(acc, mult, out.zero_point, out.qmin, out.qmax);
          if (out.kind == QGemmOutputKind::kUint8) {
            static_cast<uint8_t*>(c)[m * ldc + n] = static_cast<uint8_t>(q);
          } else {
            static_cast<int8_t*>(c)[m * ldc + n] = static_cast<int8_t>(q);
          }
          break;
        }
        case QGemmOutputKind::kFloat: {
          const float scale = out.scales[out.num_scales == 1 ? 0 : n];
          float y = static_cast<float>(acc) * scale;
          if (out.float_bias) y += out.float_bias[n];
          static_cast<float*>(c)[m * ldc + n] = y;
          break;
        }
      }
    }
  }
}

}  // namespace qforge::kernels::ref
