// fp32 GEMM driver: BLIS-style cache blocking (NC / KC / MC), operand packing, OpenMP
// partitioning of C, and dispatch to the ISA's microkernel (scalar fallback defined here).
#include "qforge/kernels/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "kernels/x86/gemm_ukernel.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

namespace {

using detail::TileEpilogue;

// Portable 4 x 8 microkernel for Isa::kScalar (the compiler may still use SSE2).
constexpr int kScalarMr = 4, kScalarNr = 8;
void SgemmMicroKernel4x8Scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                               int m, int n, const TileEpilogue& ep) {
  float acc[kScalarMr][kScalarNr] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < kScalarMr; ++i)
      for (int j = 0; j < kScalarNr; ++j) acc[i][j] += a[i] * b[j];
    a += kScalarMr;
    b += kScalarNr;
  }
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      float v = ep.alpha * acc[i][j];
      if (ep.beta != 0.0f) v += ep.beta * c[i * ldc + j];
      if (ep.row_bias) v += ep.row_bias[i];
      if (ep.col_bias) v += ep.col_bias[j];
      if (ep.clamp) v = std::min(std::max(v, ep.lo), ep.hi);
      c[i * ldc + j] = v;
    }
  }
}

struct KernelInfo {
  GemmBlocking blocking;
  int64_t nc;
  detail::GemmMicroKernel kernel;
  detail::GemmRowsMicroKernel rows_kernel = nullptr;  // null: Rows operands are packed
};

KernelInfo InfoFor(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return {{detail::kAvx512Mr, detail::kAvx512Nr, 256, 144},
              2048,
              &detail::SgemmMicroKernel8x32__avx512,
              &detail::SgemmRowsMicroKernel8x32__avx512};
    case Isa::kAvx2:
      return {
          {detail::kAvx2Mr, detail::kAvx2Nr, 256, 144}, 2048, &detail::SgemmMicroKernel6x16__avx2};
    case Isa::kScalar:
      break;
  }
  return {{kScalarMr, kScalarNr, 256, 128}, 1024, &SgemmMicroKernel4x8Scalar};
}

// K up to this is "small" for the loop order in SgemmBlock.
constexpr int64_t kSmallK = 64;
// Column strip of the small-K loop order for a Rows B (a multiple of every NR).
constexpr int64_t kSmallKStrip = 512;

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

// 64-byte aligned float buffer that only grows (one per thread for packing).
class ScratchBuffer {
 public:
  float* Get(int64_t count) {
    if (count > size_) {
      const size_t bytes = RoundUp(std::max<int64_t>(count, 16) * sizeof(float), 64);
      float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (p == nullptr) throw std::bad_alloc();
      data_.reset(p);
      size_ = count;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<float, FreeDeleter> data_;
  int64_t size_ = 0;
};

// Packs rows [i0, i0 + m) x cols [k0, k0 + kc) of op(A) into kc x mr (zero rows beyond m).
void PackAPanel(const float* a, int64_t lda, bool trans, int64_t i0, int64_t m, int64_t k0,
                int64_t kc, int mr, float* dst) {
  if (m < mr) std::memset(dst, 0, sizeof(float) * kc * mr);
  if (!trans) {
    // k outer: sequential writes, m sequential read streams (one per row).
    const float* rows[32];
    for (int64_t i = 0; i < m; ++i) rows[i] = a + (i0 + i) * lda + k0;
    if (m == mr) {
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < mr; ++i) dst[k * mr + i] = rows[i][k];
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int64_t i = 0; i < m; ++i) dst[k * mr + i] = rows[i][k];
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = a + (k0 + k) * lda + i0;
      for (int64_t i = 0; i < m; ++i) dst[k * mr + i] = src[i];
    }
  }
}

// Packs rows [k0, k0 + kc) x cols [j0, j0 + n) of op(B) into kc x nr (zero columns beyond n).
void PackBPanel(const float* b, int64_t ldb, bool trans, int64_t k0, int64_t kc, int64_t j0,
                int64_t n, int nr, float* dst) {
  if (n < nr) std::memset(dst, 0, sizeof(float) * kc * nr);
  if (!trans) {
    for (int64_t k = 0; k < kc; ++k) std::memcpy(dst + k * nr, b + (k0 + k) * ldb + j0, n * 4);
  } else {
    for (int64_t j = 0; j < n; ++j) {
      const float* src = b + (j0 + j) * ldb + k0;
      for (int64_t k = 0; k < kc; ++k) dst[k * nr + j] = src[k];
    }
  }
}

void PackBFromOperand(const GemmOperand& b, int64_t k0, int64_t kc, int64_t j0, int64_t n, int nr,
                      float* dst) {
  if (b.source != nullptr) {
    b.source->pack(b.source->ctx, k0, kc, j0, n, nr, dst);
  } else if (b.row_offsets != nullptr) {
    for (int64_t k = 0; k < kc; ++k) {
      float* out = dst + k * nr;
      std::memcpy(out, b.data + b.row_offsets[k0 + k] + j0, sizeof(float) * n);
      for (int q = static_cast<int>(n); q < nr; ++q) out[q] = 0.0f;
    }
  } else
    PackBPanel(b.data, b.ld, b.trans, k0, kc, j0, n, nr, dst);
}

// SgemmBlock for a Rows B on an ISA with a rows microkernel: B is never packed; the tiles read
// its rows in place (from L1 / L2: a tile's rows are short shifted runs of the same input rows).
void SgemmBlockRows(const KernelInfo& info, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                    int64_t K, const GemmOperand& a, const GemmOperand& b, float* c, int64_t ldc,
                    const GemmEpilogue& epi) {
  const int mr = info.blocking.mr, nr = info.blocking.nr;
  const int64_t KC = info.blocking.kc, MC = info.blocking.mc;
  thread_local ScratchBuffer a_buf;
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = std::min(KC, K - pc);
    const bool first = pc == 0, last = pc + kc == K;
    TileEpilogue ep;
    ep.alpha = epi.alpha;
    ep.beta = first ? epi.beta : 1.0f;
    ep.clamp = last && epi.activation.enabled();
    ep.lo = epi.activation.lo;
    ep.hi = epi.activation.hi;
    const int64_t* offsets = b.row_offsets + pc;
    for (int64_t ic = m0; ic < m1; ic += MC) {
      const int64_t mc = std::min(MC, m1 - ic);
      const int64_t m_panels = (mc + mr - 1) / mr;
      float* apack = nullptr;
      if (a.packed == nullptr) {
        apack = a_buf.Get(m_panels * mr * kc);
        for (int64_t p = 0; p < m_panels; ++p) {
          const int64_t i0 = ic + p * mr;
          PackAPanel(a.data, a.ld, a.trans, i0, std::min<int64_t>(mr, m1 - i0), pc, kc, mr,
                     apack + p * mr * kc);
        }
      }
      auto tile = [&](int64_t ip, int64_t j0) {
        const int n = static_cast<int>(std::min<int64_t>(nr, n1 - j0));
        ep.col_bias = last && epi.col_bias ? epi.col_bias + j0 : nullptr;
        const int64_t i0 = ic + ip * mr;
        const int m = static_cast<int>(std::min<int64_t>(mr, m1 - i0));
        const float* ap = a.packed ? a.packed->panel(pc, i0 / mr) : apack + ip * mr * kc;
        ep.row_bias = last && epi.row_bias ? epi.row_bias + i0 : nullptr;
        info.rows_kernel(kc, ap, b.data + j0, offsets, c + i0 * ldc + j0, ldc, m, n, ep);
      };
      if (K <= kSmallK) {
        // Small K: a tile is mostly its C store; walk C row panel by row panel within strips
        // of kSmallKStrip columns (the strip's B rows stay in L1 / L2 across the A panels).
        for (int64_t js = n0; js < n1; js += kSmallKStrip)
          for (int64_t ip = 0; ip < m_panels; ++ip)
            for (int64_t j0 = js; j0 < std::min(n1, js + kSmallKStrip); j0 += nr) tile(ip, j0);
      } else {
        // B panel (kc rows of one NR-column strip) in L1 across the A panels of the M block.
        for (int64_t j0 = n0; j0 < n1; j0 += nr)
          for (int64_t ip = 0; ip < m_panels; ++ip) tile(ip, j0);
      }
    }
  }
}

// Computes the block rows [m0, m1) x cols [n0, n1) of C on the calling thread.
// m0 is a multiple of MR and n0 of NR (so prepacked panels line up).
void SgemmBlock(const KernelInfo& info, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K,
                const GemmOperand& a, const GemmOperand& b, float* c, int64_t ldc,
                const GemmEpilogue& epi) {
  if (b.row_offsets != nullptr && info.rows_kernel != nullptr) {
    SgemmBlockRows(info, m0, m1, n0, n1, K, a, b, c, ldc, epi);
    return;
  }
  const int mr = info.blocking.mr, nr = info.blocking.nr;
  const int64_t KC = info.blocking.kc, MC = info.blocking.mc, NC = info.nc;
  thread_local ScratchBuffer a_buf, b_buf;

  for (int64_t jc = n0; jc < n1; jc += NC) {
    const int64_t nc = std::min(NC, n1 - jc);
    const int64_t n_panels = (nc + nr - 1) / nr;
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const bool first = pc == 0, last = pc + kc == K;
      TileEpilogue ep;
      ep.alpha = epi.alpha;
      ep.beta = first ? epi.beta : 1.0f;
      ep.clamp = last && epi.activation.enabled();
      ep.lo = epi.activation.lo;
      ep.hi = epi.activation.hi;

      // Small K (pointwise convs with few input channels): a tile is mostly its C store, so
      // walk C row panel by row panel (ip outer, B block from L2) and keep the store streams
      // few and sequential, instead of touching every row of C for each 32-column panel.
      const bool small_k = K <= kSmallK;
      if (b.packed == nullptr && m1 - m0 <= MC && !small_k) {
        // One M block: pack each B panel right before the microkernels use it, so it is still
        // in L1 (packing the whole NC block first would push it out to L3 when M is small).
        const int64_t m_panels = (m1 - m0 + mr - 1) / mr;
        float* apack = nullptr;
        if (a.packed == nullptr) {
          apack = a_buf.Get(m_panels * mr * kc);
          for (int64_t p = 0; p < m_panels; ++p) {
            const int64_t i0 = m0 + p * mr;
            PackAPanel(a.data, a.ld, a.trans, i0, std::min<int64_t>(mr, m1 - i0), pc, kc, mr,
                       apack + p * mr * kc);
          }
        }
        float* bp = b_buf.Get(nr * kc);
        for (int64_t jp = 0; jp < n_panels; ++jp) {
          const int64_t j0 = jc + jp * nr;
          const int n = static_cast<int>(std::min<int64_t>(nr, n1 - j0));
          PackBFromOperand(b, pc, kc, j0, n, nr, bp);
          ep.col_bias = last && epi.col_bias ? epi.col_bias + j0 : nullptr;
          for (int64_t ip = 0; ip < m_panels; ++ip) {
            const int64_t i0 = m0 + ip * mr;
            const int m = static_cast<int>(std::min<int64_t>(mr, m1 - i0));
            const float* ap = a.packed ? a.packed->panel(pc, i0 / mr) : apack + ip * mr * kc;
            ep.row_bias = last && epi.row_bias ? epi.row_bias + i0 : nullptr;
            info.kernel(kc, ap, bp, c + i0 * ldc + j0, ldc, m, n, ep);
          }
        }
        continue;
      }
      float* bpack = nullptr;
      if (b.packed == nullptr) {
        bpack = b_buf.Get(n_panels * nr * kc);
        for (int64_t p = 0; p < n_panels; ++p) {
          const int64_t j0 = jc + p * nr;
          PackBFromOperand(b, pc, kc, j0, std::min<int64_t>(nr, n1 - j0), nr, bpack + p * nr * kc);
        }
      }
      for (int64_t ic = m0; ic < m1; ic += MC) {
        const int64_t mc = std::min(MC, m1 - ic);
        const int64_t m_panels = (mc + mr - 1) / mr;
        float* apack = nullptr;
        if (a.packed == nullptr) {
          apack = a_buf.Get(m_panels * mr * kc);
          for (int64_t p = 0; p < m_panels; ++p) {
            const int64_t i0 = ic + p * mr;
            PackAPanel(a.data, a.ld, a.trans, i0, std::min<int64_t>(mr, m1 - i0), pc, kc, mr,
                       apack + p * mr * kc);
          }
        }
        auto tile = [&](int64_t ip, int64_t jp) {
          const int64_t j0 = jc + jp * nr;
          const int n = static_cast<int>(std::min<int64_t>(nr, n1 - j0));
          const float* bp = b.packed ? b.packed->panel(pc, j0 / nr) : bpack + jp * nr * kc;
          ep.col_bias = last && epi.col_bias ? epi.col_bias + j0 : nullptr;
          const int64_t i0 = ic + ip * mr;
          const int m = static_cast<int>(std::min<int64_t>(mr, m1 - i0));
          const float* ap = a.packed ? a.packed->panel(pc, i0 / mr) : apack + ip * mr * kc;
          ep.row_bias = last && epi.row_bias ? epi.row_bias + i0 : nullptr;
          info.kernel(kc, ap, bp, c + i0 * ldc + j0, ldc, m, n, ep);
        };
        if (small_k) {
          for (int64_t ip = 0; ip < m_panels; ++ip)
            for (int64_t jp = 0; jp < n_panels; ++jp) tile(ip, jp);
        } else {
          // B panel in L1 across the A panels of the M block (A block in L2).
          for (int64_t jp = 0; jp < n_panels; ++jp)
            for (int64_t ip = 0; ip < m_panels; ++ip) tile(ip, jp);
        }
      }
    }
  }
}

}  // namespace

int ResolveThreads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

GemmBlocking GemmBlockingFor(Isa isa) { return InfoFor(isa).blocking; }

PackedMatrix PackedMatrix::PackA(int64_t M, int64_t K, const float* a, int64_t lda, bool trans,
                                 Isa isa) {
  const GemmBlocking blk = GemmBlockingFor(isa);
  PackedMatrix p;
  p.role_ = Role::kA;
  p.isa_ = isa;
  p.rows_ = M;
  p.cols_ = K;
  p.width_ = blk.mr;
  p.kc_ = blk.kc;
  p.padded_ = RoundUp(std::max<int64_t>(M, 1), blk.mr);
  const int64_t total = p.padded_ * std::max<int64_t>(K, 1);
  float* raw = static_cast<float*>(std::aligned_alloc(64, RoundUp(total * 4, 64)));
  if (raw == nullptr) throw std::bad_alloc();
  p.data_ = std::shared_ptr<float[]>(raw, [](float* q) { std::free(q); });
  for (int64_t pc = 0; pc < K; pc += p.kc_) {
    const int64_t kc = std::min(p.kc_, K - pc);
    for (int64_t i0 = 0; i0 < p.padded_; i0 += blk.mr)
      PackAPanel(a, lda, trans, i0, std::clamp<int64_t>(M - i0, 0, blk.mr), pc, kc, blk.mr,
                 raw + pc * p.padded_ + i0 * kc);
  }
  return p;
}

PackedMatrix PackedMatrix::PackB(int64_t K, int64_t N, const float* b, int64_t ldb, bool trans,
                                 Isa isa) {
  const GemmBlocking blk = GemmBlockingFor(isa);
  PackedMatrix p;
  p.role_ = Role::kB;
  p.isa_ = isa;
  p.rows_ = K;
  p.cols_ = N;
  p.width_ = blk.nr;
  p.kc_ = blk.kc;
  p.padded_ = RoundUp(std::max<int64_t>(N, 1), blk.nr);
  const int64_t total = p.padded_ * std::max<int64_t>(K, 1);
  float* raw = static_cast<float*>(std::aligned_alloc(64, RoundUp(total * 4, 64)));
  if (raw == nullptr) throw std::bad_alloc();
  p.data_ = std::shared_ptr<float[]>(raw, [](float* q) { std::free(q); });
  for (int64_t pc = 0; pc < K; pc += p.kc_) {
    const int64_t kc = std::min(p.kc_, K - pc);
    for (int64_t j0 = 0; j0 < p.padded_; j0 += blk.nr)
      PackBPanel(b, ldb, trans, pc, kc, j0, std::clamp<int64_t>(N - j0, 0, blk.nr), blk.nr,
                 raw + pc * p.padded_ + j0 * kc);
  }
  return p;
}

const float* PackedMatrix::panel(int64_t k0, int64_t p) const {
  const int64_t K = role_ == Role::kA ? cols_ : rows_;
  const int64_t kc = std::min(kc_, K - k0);
  return data_.get() + k0 * padded_ + p * width_ * kc;
}

void Sgemm(int64_t M, int64_t N, int64_t K, const GemmOperand& a, const GemmOperand& b, float* c,
           int64_t ldc, const GemmEpilogue& epi, int threads) {
  if (M <= 0 || N <= 0) return;
  if (a.row_offsets != nullptr || a.source != nullptr)
    throw Error("Sgemm: row-offset and panel-source operands are for B only");
  Isa isa = ActiveIsa();
  if (a.packed != nullptr) {
    if (a.packed->role() != PackedMatrix::Role::kA || a.packed->rows() != M ||
        a.packed->cols() != K)
      throw Error("Sgemm: packed A does not match M x K = " + std::to_string(M) + " x " +
                  std::to_string(K));
    isa = a.packed->isa();
  }
  if (b.packed != nullptr) {
    if (b.packed->role() != PackedMatrix::Role::kB || b.packed->rows() != K ||
        b.packed->cols() != N)
      throw Error("Sgemm: packed B does not match K x N = " + std::to_string(K) + " x " +
                  std::to_string(N));
    if (a.packed != nullptr && a.packed->isa() != b.packed->isa())
      throw Error("Sgemm: A and B were packed for different ISAs");
    isa = b.packed->isa();
  }

  if (K == 0) {
    // No products: C = act(beta * C + bias).
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        float v = epi.beta != 0.0f ? epi.beta * c[i * ldc + j] : 0.0f;
        if (epi.row_bias) v += epi.row_bias[i];
        if (epi.col_bias) v += epi.col_bias[j];
        if (epi.activation.enabled())
          v = std::min(std::max(v, epi.activation.lo), epi.activation.hi);
        c[i * ldc + j] = v;
      }
    return;
  }

  const KernelInfo info = InfoFor(isa);
  const int mr = info.blocking.mr, nr = info.blocking.nr;
  const int64_t m_tiles = (M + mr - 1) / mr, n_tiles = (N + nr - 1) / nr;
  // Small problems are not worth waking threads for.
  const double flops = 2.0 * M * N * K;
  int t = ResolveThreads(threads);
  if (flops < 2e6) t = 1;
  if (t <= 1 || omp_in_parallel()) {
    SgemmBlock(info, 0, M, 0, N, K, a, b, c, ldc, epi);
    return;
  }
  // Split C into t stripes along N (preferred: each thread packs only its own B columns) or
  // along M when N has too few tiles to share.
  const bool split_n = n_tiles >= 2 * t || n_tiles >= m_tiles;
  const int64_t tiles = split_n ? n_tiles : m_tiles;
  t = static_cast<int>(std::min<int64_t>(t, tiles));
#pragma omp parallel for num_threads(t) schedule(static)
  for (int part = 0; part < t; ++part) {
    const int64_t lo = tiles * part / t, hi = tiles * (part + 1) / t;
    if (lo == hi) continue;
    if (split_n)
      SgemmBlock(info, 0, M, lo * nr, std::min(N, hi * nr), K, a, b, c, ldc, epi);
    else
      SgemmBlock(info, lo * mr, std::min(M, hi * mr), 0, N, K, a, b, c, ldc, epi);
  }
}

}  // namespace qforge::kernels
