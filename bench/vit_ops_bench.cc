// The fp32 element-wise work of a small vision transformer (fmnist_vit at batch 64: 1024 tokens
// of width 64, MLP width 128, 4 heads of 16), fast path beside its reference in one process:
// Erf / Gelu (vectorized polynomial vs std::erf), last-axis Softmax, LayerNormalization, and
// the per-head 16x16x16 product (direct kernel vs packed Sgemm).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "qforge/kernels/elementwise.h"
#include "qforge/kernels/gemm.h"
#include "qforge/kernels/norm.h"
#include "qforge/kernels/small_gemm.h"
#include "qforge/kernels/softmax.h"

namespace qk = qforge::kernels;

namespace {

std::vector<float> Random(size_t n, float lo, float hi) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Gelu over 1024 x 128: arg 0 = scalar std::erf loop (the reference), 1 = vectorized.
void BM_Gelu(benchmark::State& st) {
  const std::vector<float> x = Random(1024 * 128, -4, 4);
  std::vector<float> y(x.size());
  qforge::Tensor xt = qforge::Tensor::FromVector<float>({1024, 128}, x);
  for (auto _ : st) {
    if (st.range(0) == 0) {
      qforge::Tensor r = qk::UnaryRef(qk::UnaryOp::kGelu, {}, xt);
      benchmark::DoNotOptimize(r.raw());
    } else {
      qk::UnaryF32(qk::UnaryOp::kGelu, {}, x.data(), y.data(), static_cast<int64_t>(x.size()));
      benchmark::DoNotOptimize(y.data());
    }
  }
  st.SetItemsProcessed(st.iterations() * static_cast<int64_t>(x.size()));
}
BENCHMARK(BM_Gelu)->Arg(0)->Arg(1);

// Softmax over 64 x 4 x 16 rows of 16: 0 = reference (double sums), 1 = fast.
void BM_Softmax(benchmark::State& st) {
  const std::vector<float> x = Random(4096 * 16, -8, 8);
  std::vector<float> y(x.size());
  for (auto _ : st) {
    if (st.range(0) == 0)
      qk::SoftmaxRef(4096, 16, 1, x.data(), y.data(), false);
    else
      qk::SoftmaxF32(4096, 16, 1, x.data(), y.data(), false, 1);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * static_cast<int64_t>(x.size()));
}
BENCHMARK(BM_Softmax)->Arg(0)->Arg(1);

// LayerNorm over 1024 rows of 64: 0 = reference (double statistics), 1 = fast.
void BM_LayerNorm(benchmark::State& st) {
  const std::vector<float> x = Random(1024 * 64, -3, 3), s = Random(64, 0.5, 1.5),
                           b = Random(64, -1, 1);
  std::vector<float> y(x.size());
  for (auto _ : st) {
    if (st.range(0) == 0)
      qk::LayerNormRef(1024, 64, x.data(), s.data(), b.data(), 1e-5f, y.data(), nullptr, nullptr,
                       1);
    else
      qk::LayerNormF32(1024, 64, x.data(), s.data(), b.data(), 1e-5f, y.data(), nullptr, nullptr,
                       1);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetItemsProcessed(st.iterations() * static_cast<int64_t>(x.size()));
}
BENCHMARK(BM_LayerNorm)->Arg(0)->Arg(1);

// 256 heads of 16x16x16 (one attention MatMul at batch 64): 0 = Sgemm per head, 1 = direct.
void BM_AttentionMatMul(benchmark::State& st) {
  const int64_t heads = 256, n = 16;
  const std::vector<float> a = Random(heads * n * n, -1, 1), b = Random(heads * n * n, -1, 1);
  std::vector<float> c(heads * n * n);
  for (auto _ : st) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* ah = a.data() + h * n * n;
      const float* bh = b.data() + h * n * n;
      float* ch = c.data() + h * n * n;
      if (st.range(0) == 0)
        qk::Sgemm(n, n, n, qk::GemmOperand::Plain(ah, n), qk::GemmOperand::Plain(bh, n), ch, n, {},
                  1);
      else
        qk::SmallMatMulF32(n, n, n, ah, n, bh, n, ch, n);
    }
    benchmark::DoNotOptimize(c.data());
  }
  st.SetItemsProcessed(st.iterations() * heads * n * n * n * 2);
}
BENCHMARK(BM_AttentionMatMul)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
