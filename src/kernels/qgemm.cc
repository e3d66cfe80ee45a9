// int8 GEMM driver: argument checks, B packing per kernel, A staging, zero-point corrections,
// OpenMP partitioning of C into (row block, column panel) tiles, dispatch to the ISA kernel.
#include "qforge/kernels/qgemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include "kernels/qgemm_internal.h"
#include "kernels/ref/qgemm_ref.h"
#include "kernels/x86/qgemm_ukernel.h"
#include "qforge/kernels/gemm.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

namespace {

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

int PanelWidth(QGemmKernel k) {
  switch (k) {
    case QGemmKernel::kAvx512Vnni:
      return detail::kQVnniNr;
    case QGemmKernel::kAvx2:
      return detail::kQAvx2Nr;
    case QGemmKernel::kScalar:
      break;
  }
  return 1;
}

// 64-byte aligned storage of `bytes` (at least 64), zero-filled.
std::shared_ptr<int8_t[]> AllocAligned(int64_t bytes) {
  const size_t n = static_cast<size_t>(RoundUp(std::max<int64_t>(bytes, 64), 64));
  auto* p = static_cast<int8_t*>(::operator new[](n, std::align_val_t{64}));
  std::memset(p, 0, n);
  return std::shared_ptr<int8_t[]>(p,
                                   [](int8_t* q) { ::operator delete[](q, std::align_val_t{64}); });
}

[[noreturn]] void Fail(const std::string& what) { throw Error("QGemm: " + what); }

}  // namespace

const char* QGemmKernelName(QGemmKernel k) {
  switch (k) {
    case QGemmKernel::kScalar:
      return "scalar";
    case QGemmKernel::kAvx2:
      return "avx2";
    case QGemmKernel::kAvx512Vnni:
      return "avx512vnni";
  }
  return "?";
}

bool QGemmKernelSupported(QGemmKernel k) {
  switch (k) {
    case QGemmKernel::kScalar:
      return true;
    case QGemmKernel::kAvx2:
      return IsaSupported(Isa::kAvx2);
    case QGemmKernel::kAvx512Vnni:
      return IsaSupported(Isa::kAvx512) && __builtin_cpu_supports("avx512vnni");
  }
  return false;
}

QGemmKernel QGemmKernelFor(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return QGemmKernel::kScalar;
    case Isa::kAvx2:
      return QGemmKernel::kAvx2;
    case Isa::kAvx512:
      return QGemmKernelSupported(QGemmKernel::kAvx512Vnni) ? QGemmKernel::kAvx512Vnni
                                                            : QGemmKernel::kAvx2;
  }
  return QGemmKernel::kScalar;
}

PackedQGemmB PackedQGemmB::Pack(int64_t K, int64_t N, const int8_t* b, int64_t ldb, bool trans,
                                const std::vector<int32_t>& zero_points, QGemmKernel kernel) {
  if (K < 0 || N < 0) Fail("negative K or N");
  if (K > kMaxQGemmK) {
    Fail("K = " + std::to_string(K) + " exceeds " + std::to_string(kMaxQGemmK) +
         " (int32 accumulators could overflow)");
  }
  if (K * N > 0 && b == nullptr) Fail("null B");
  if (ldb < (trans ? K : N)) Fail("ldb " + std::to_string(ldb) + " is too small");
  if (!zero_points.empty() && zero_points.size() != 1 &&
      static_cast<int64_t>(zero_points.size()) != N) {
    Fail("B has " + std::to_string(zero_points.size()) +
         " zero points; expected 0, 1 or N = " + std::to_string(N));
  }
  for (int32_t z : zero_points) {
    if (z < -128 || z > 127) Fail("B zero point " + std::to_string(z) + " outside [-128, 127]");
  }
  if (!QGemmKernelSupported(kernel)) {
    Fail(std::string("kernel ") + QGemmKernelName(kernel) + " is not supported by this CPU");
  }
  auto at = [&](int64_t k, int64_t n) -> int8_t { return trans ? b[n * ldb + k] : b[k * ldb + n]; };

  PackedQGemmB p;
  p.kernel_ = kernel;
  p.K_ = K;
  p.N_ = N;
  p.zb_.assign(N, 0);
  for (int64_t n = 0; n < N; ++n) {
    p.zb_[n] = zero_points.empty() ? 0 : zero_points[zero_points.size() == 1 ? 0 : n];
    p.has_zb_ = p.has_zb_ || p.zb_[n] != 0;
  }
  p.col_sums_.assign(N, 0);
  for (int64_t n = 0; n < N; ++n) {
    int32_t s = 0;  // |s| <= 128 * 2^15
    for (int64_t k = 0; k < K; ++k) s += at(k, n);
    p.col_sums_[n] = s;
  }
  const int64_t kpad = RoundUp(K, 4);
  const int nr = PanelWidth(kernel);
  const int64_t npad = RoundUp(N, nr);
  switch (kernel) {
    case QGemmKernel::kScalar: {  // plain row-major K x N
      p.data_ = AllocAligned(K * N);
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) p.data_[k * N + n] = at(k, n);
      break;
    }
    case QGemmKernel::kAvx512Vnni: {  // [panel][quad][32 columns][4 k] int8
      p.data_ = AllocAligned(kpad * npad);
      int8_t* d = p.data_.get();
      for (int64_t n = 0; n < N; ++n) {
        const int64_t panel = n / nr, j = n % nr;
        for (int64_t k = 0; k < K; ++k) {
          d[panel * kpad * nr + ((k / 4) * nr + j) * 4 + k % 4] = at(k, n);
        }
      }
      break;
    }
    case QGemmKernel::kAvx2: {  // [panel][quad][8 columns][4 k] int16
      p.data_ = AllocAligned(kpad * npad * 2);
      auto* d = reinterpret_cast<int16_t*>(p.data_.get());
      for (int64_t n = 0; n < N; ++n) {
        const int64_t panel = n / nr, j = n % nr;
        for (int64_t k = 0; k < K; ++k) {
          d[panel * kpad * nr + ((k / 4) * nr + j) * 4 + k % 4] = at(k, n);
        }
      }
      break;
    }
  }
  return p;
}

void ValidateQGemm(int64_t M, int64_t N, int64_t K, const QGemmA& a, const QGemmOutput& out,
                   int64_t ldc) {
  if (M < 0 || N < 0 || K < 0) Fail("negative size");
  if (K > kMaxQGemmK) {
    Fail("K = " + std::to_string(K) + " exceeds " + std::to_string(kMaxQGemmK));
  }
  if (M * K > 0 && a.data == nullptr) Fail("null A");
  if (M > 0 && a.ld < K) Fail("lda " + std::to_string(a.ld) + " < K " + std::to_string(K));
  if (ldc < N) Fail("ldc " + std::to_string(ldc) + " < N " + std::to_string(N));
  const int32_t zlo = a.is_signed ? -128 : 0, zhi = a.is_signed ? 127 : 255;
  if (a.zero_point < zlo || a.zero_point > zhi) {
    Fail("A zero point " + std::to_string(a.zero_point) + " outside [" + std::to_string(zlo) +
         ", " + std::to_string(zhi) + "]");
  }
  switch (out.kind) {
    case QGemmOutputKind::kInt32:
      break;
    case QGemmOutputKind::kUint8:
    case QGemmOutputKind::kInt8: {
      if (out.multipliers == nullptr || (out.num_multipliers != 1 && out.num_multipliers != N)) {
        Fail("quantized output needs 1 or N = " + std::to_string(N) + " multipliers, got " +
             std::to_string(out.multipliers ? out.num_multipliers : 0));
      }
      for (int64_t i = 0; i < out.num_multipliers; ++i) {
        if (!out.multipliers[i].valid()) Fail("invalid fixed-point multiplier");
      }
      const bool s = out.kind == QGemmOutputKind::kInt8;
      const int32_t lo = s ? -128 : 0, hi = s ? 127 : 255;
      if (out.qmin > out.qmax || out.qmin < lo || out.qmax > hi) {
        Fail("clamp range [" + std::to_string(out.qmin) + ", " + std::to_string(out.qmax) +
             "] is empty or outside the output type");
      }
      break;
    }
    case QGemmOutputKind::kFloat:
      if (out.scales == nullptr || (out.num_scales != 1 && out.num_scales != N)) {
        Fail("float output needs 1 or N = " + std::to_string(N) + " scales");
      }
      break;
  }
}

namespace {

int64_t OutputElementSize(QGemmOutputKind k) {
  return k == QGemmOutputKind::kUint8 || k == QGemmOutputKind::kInt8 ? 1 : 4;
}

// Scalar kernel: the reference on row blocks of the plain K x N copy of B.
void QGemmScalar(int64_t M, const QGemmA& a, const PackedQGemmB& b, const QGemmOutput& out, void* c,
                 int64_t ldc, int threads) {
  const int64_t rows = std::max<int64_t>(1, (M + threads - 1) / threads);
  const int64_t blocks = (M + rows - 1) / rows;
  const int64_t esize = OutputElementSize(out.kind);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t m0 = blk * rows, m1 = std::min(M, m0 + rows);
    QGemmA sub = a;
    sub.data = static_cast<const uint8_t*>(a.data) + m0 * a.ld;
    ref::QGemm(m1 - m0, b.N(), b.K(), sub, b.data(), b.N(),
               b.has_zero_points() ? b.zero_points() : nullptr, out,
               static_cast<uint8_t*>(c) + m0 * ldc * esize, ldc);
  }
}

}  // namespace

namespace {

// Grow-only per-thread column tables (no allocation per call once warm). A QGemm call only
// reads them while its calling thread is inside it.
template <typename T>
std::vector<T>& Table(int slot, int64_t n, T fill) {
  thread_local std::vector<T> tables[4];
  std::vector<T>& v = tables[slot];
  v.assign(static_cast<size_t>(n), fill);
  return v;
}

// QGemm on plain rows (gather == nullptr) or on a gathered A (VNNI kernel only: `a` then only
// carries the zero point, unsigned); the arguments are validated.
void Run(int64_t M, const QGemmA& a, const QGemmGatherA* gather, const PackedQGemmB& b,
         const QGemmOutput& out, void* c, int64_t ldc, int threads) {
  const int64_t N = b.N(), K = b.K();
  int t = omp_in_parallel() ? 1 : ResolveThreads(threads);
  // At least ~4M multiply-accumulates (~10 us) per thread: below that, waking and joining
  // threads costs more than it saves (and far more on an oversubscribed machine).
  constexpr int64_t kMinMacsPerThread = int64_t{1} << 22;
  t = static_cast<int>(std::min<int64_t>(
      t, std::max<int64_t>(1, M * N * std::max<int64_t>(K, 1) / kMinMacsPerThread)));
  if (b.kernel() == QGemmKernel::kScalar) {
    QGemmScalar(M, a, b, out, c, ldc, t);
    return;
  }
  const bool vnni = b.kernel() == QGemmKernel::kAvx512Vnni;
  const int nr = PanelWidth(b.kernel());
  const int mr = vnni ? detail::kQVnniMr : detail::kQAvx2Mr;
  const int64_t kpad = RoundUp(K, 4), npad = RoundUp(N, nr);

  // Per-column terms, in uint32 so that they wrap (see qgemm_ukernel.h).
  const uint32_t za = static_cast<uint32_t>(a.zero_point + (a.is_signed ? 128 : 0));
  std::vector<int32_t>& col_offset = Table<int32_t>(0, npad, 0);
  int32_t* col_zb = nullptr;
  int32_t *mantissa = nullptr, *rshift = nullptr;
  float *scale = nullptr, *float_bias = nullptr;
  bool requant_hi = false;
  for (int64_t n = 0; n < N; ++n) {
    uint32_t v = out.bias ? static_cast<uint32_t>(out.bias[n]) : 0u;
    v -= za * static_cast<uint32_t>(b.col_sums()[n]);
    v += static_cast<uint32_t>(K) * za * static_cast<uint32_t>(b.zero_points()[n]);
    col_offset[n] = static_cast<int32_t>(v);
  }
  if (b.has_zero_points()) {
    col_zb = Table<int32_t>(1, npad, 0).data();
    std::copy(b.zero_points(), b.zero_points() + N, col_zb);
  }
  if (out.kind == QGemmOutputKind::kUint8 || out.kind == QGemmOutputKind::kInt8) {
    // A zero mantissa gives 0 with any rounding shift n >= 1; those columns (and the padding)
    // take n = 33, so that they never keep the 32-bit path (n >= 33 everywhere) from being used.
    mantissa = Table<int32_t>(2, npad, 0).data();
    rshift = Table<int32_t>(3, npad, 33).data();
    requant_hi = true;
    for (int64_t n = 0; n < N; ++n) {
      const numerics::FixedMultiplier& m = out.multipliers[out.num_multipliers == 1 ? 0 : n];
      mantissa[n] = m.mantissa;
      rshift[n] = m.mantissa == 0 ? 33 : 31 - m.shift;
      requant_hi = requant_hi && rshift[n] >= 33;
    }
  } else if (out.kind == QGemmOutputKind::kFloat) {
    scale = Table<float>(0, npad, 0.0f).data();
    for (int64_t n = 0; n < N; ++n) scale[n] = out.scales[out.num_scales == 1 ? 0 : n];
    if (out.float_bias) {
      float_bias = Table<float>(1, npad, 0.0f).data();
      std::copy(out.float_bias, out.float_bias + N, float_bias);
    }
  }

  // Stage A' (uint8 for VNNI, int16 for AVX2), unless A can be read as it is.
  std::shared_ptr<int8_t[]> staged;
  const void* a_data = a.data;
  int64_t lda = a.ld;
  if (gather == nullptr && (!vnni || a.is_signed || K % 4 != 0)) {
    staged = AllocAligned(M * kpad * (vnni ? 1 : 2));
    const int64_t rows = std::max<int64_t>(1, (M + t - 1) / t);
#pragma omp parallel for num_threads(t) schedule(static) if (t > 1)
    for (int64_t m0 = 0; m0 < M; m0 += rows) {
      if (vnni) {
        detail::QGemmStageA__avx512vnni(a, K, kpad, m0, std::min(M, m0 + rows),
                                        reinterpret_cast<uint8_t*>(staged.get()));
      } else {
        detail::QGemmStageA__avx2(a, K, kpad, m0, std::min(M, m0 + rows),
                                  reinterpret_cast<int16_t*>(staged.get()));
      }
    }
    a_data = staged.get();
    lda = kpad;
  }
  std::vector<int32_t> row_sums;
  if (b.has_zero_points()) {  // sum_k A'[m,k] <= 255 * 2^15
    row_sums.assign(M, 0);
    for (int64_t m = 0; m < M; ++m) {
      int32_t s = 0;
      if (gather) {
        for (int64_t g = 0; g < gather->segments; ++g) {
          const uint8_t* r = gather->ptrs[m * gather->segments + g];
          for (int64_t k = 0; k < gather->seg_len; ++k) s += r[k];
        }
      } else if (vnni) {
        const auto* r = static_cast<const uint8_t*>(a_data) + m * lda;
        for (int64_t k = 0; k < K; ++k) s += r[k];
      } else {
        const auto* r = static_cast<const int16_t*>(a_data) + m * lda;
        for (int64_t k = 0; k < K; ++k) s += r[k];
      }
      row_sums[m] = s;
    }
  }

  detail::QGemmCall call;
  call.M = M;
  call.N = N;
  call.Kpad = kpad;
  call.a = a_data;
  call.lda = lda;
  call.b = b.data();
  if (gather) {
    call.a_ptrs = gather->ptrs;
    call.segments = gather->segments;
  }
  call.col_offset = col_offset.data();
  call.col_zb = col_zb;
  call.row_sums = row_sums.empty() ? nullptr : row_sums.data();
  call.kind = out.kind;
  call.mantissa = mantissa;
  call.rshift = rshift;
  call.requant_hi = requant_hi;
  call.zero_point = out.zero_point;
  call.qmin = out.qmin;
  call.qmax = out.qmax;
  call.scale = scale;
  call.float_bias = float_bias;
  call.c = c;
  call.ldc = ldc;

  // Tiles: row blocks whose A' slice (mc x Kpad) stays in L2 (~256 KiB), times column panels.
  // Within a tile the kernel walks the block's rows against one B panel (K x NR, L1/L2).
  // (A gathered A's rows are runs of an input that neighbouring rows share: counted as copies.)
  const int64_t a_row_bytes = kpad * (vnni ? 1 : 2);
  int64_t mc = std::max<int64_t>(mr, (int64_t{256} << 10) / std::max<int64_t>(a_row_bytes, 1));
  mc = std::max<int64_t>(mr, mc / mr * mr);
  const int64_t row_blocks = (M + mc - 1) / mc;
  const int64_t panels = npad / nr;
  const int64_t tiles = row_blocks * panels;
  auto run = vnni ? &detail::QGemmPanel__avx512vnni : &detail::QGemmPanel__avx2;
  if (t == 1 || tiles == 1) {  // no OpenMP region at all: it costs ~5% of a 1 x 1000 x 512 GEMV
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t rb = tile / panels, p = tile % panels;
      run(call, rb * mc, std::min(M, (rb + 1) * mc), p);
    }
    return;
  }
#pragma omp parallel for num_threads(t) schedule(static)
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int64_t rb = tile / panels, p = tile % panels;
    run(call, rb * mc, std::min(M, (rb + 1) * mc), p);
  }
}

// validate = false: the caller already ran ValidateQGemm on these operands (detail::*Validated).
void QGemmImpl(bool validate, int64_t M, const QGemmA& a, const PackedQGemmB& b,
               const QGemmOutput& out, void* c, int64_t ldc, int threads) {
  if (b.empty()) Fail("B is not packed");
  if (validate) ValidateQGemm(M, b.N(), b.K(), a, out, ldc);
  if (M == 0 || b.N() == 0) return;
  if (c == nullptr) Fail("null C");
  if (!QGemmKernelSupported(b.kernel())) {
    Fail(std::string("kernel ") + QGemmKernelName(b.kernel()) + " is not supported by this CPU");
  }
  Run(M, a, nullptr, b, out, c, ldc, threads);
}

void QGemmGatherImpl(bool validate, int64_t M, const QGemmGatherA& a, const PackedQGemmB& b,
                     const QGemmOutput& out, void* c, int64_t ldc, int threads) {
  if (b.empty()) Fail("B is not packed");
  if (a.segments < 0 || a.seg_len < 0 || a.seg_len % 4 != 0) {
    Fail("gathered A: run length " + std::to_string(a.seg_len) + " is not a multiple of 4");
  }
  if (a.segments * a.seg_len != b.K()) {
    Fail("gathered A: " + std::to_string(a.segments) + " runs of " + std::to_string(a.seg_len) +
         " codes do not make K = " + std::to_string(b.K()));
  }
  const QGemmA plain{a.ptrs, b.K(), false, a.zero_point};
  if (validate) ValidateQGemm(M, b.N(), b.K(), plain, out, ldc);
  if (M == 0 || b.N() == 0) return;
  if (c == nullptr) Fail("null C");
  if (!QGemmKernelSupported(b.kernel())) {
    Fail(std::string("kernel ") + QGemmKernelName(b.kernel()) + " is not supported by this CPU");
  }
  if (b.kernel() == QGemmKernel::kAvx512Vnni && b.K() > 0) {
    Run(M, plain, &a, b, out, c, ldc, threads);
    return;
  }
  // Other kernels: the rows written out, then the plain GEMM.
  const int64_t K = b.K();
  std::vector<uint8_t> rows(static_cast<size_t>(M * K));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t s = 0; s < a.segments; ++s)
      std::memcpy(rows.data() + m * K + s * a.seg_len, a.ptrs[m * a.segments + s],
                  static_cast<size_t>(a.seg_len));
  Run(M, {rows.data(), K, false, a.zero_point}, nullptr, b, out, c, ldc, threads);
}

}  // namespace

void QGemm(int64_t M, const QGemmA& a, const PackedQGemmB& b, const QGemmOutput& out, void* c,
           int64_t ldc, int threads) {
  QGemmImpl(true, M, a, b, out, c, ldc, threads);
}

void QGemmGather(int64_t M, const QGemmGatherA& a, const PackedQGemmB& b, const QGemmOutput& out,
                 void* c, int64_t ldc, int threads) {
  QGemmGatherImpl(true, M, a, b, out, c, ldc, threads);
}

namespace detail {

void QGemmValidated(int64_t M, const QGemmA& a, const PackedQGemmB& b, const QGemmOutput& out,
                    void* c, int64_t ldc, int threads) {
  QGemmImpl(false, M, a, b, out, c, ldc, threads);
}

void QGemmGatherValidated(int64_t M, const QGemmGatherA& a, const PackedQGemmB& b,
                          const QGemmOutput& out, void* c, int64_t ldc, int threads) {
  QGemmGatherImpl(false, M, a, b, out, c, ldc, threads);
}

}  // namespace detail
}  // namespace qforge::kernels
