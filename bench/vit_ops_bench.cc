// The fp32 element-wise work of a small vision transformer (fmnist_vit at batch 64: 1024 tokens
// of width 64, MLP width 128, 4 heads of 16), fast path beside its reference in one process:
// Erf / Gelu (vectorized polynomial vs std::erf), last-axis Softmax, LayerNormalization, and
// the per-head 16x16x16 product (direct kernel vs packed Sgemm); and the dynamic-int8 pieces:
// per-tensor quantization (numerics::QuantizeRun vs QuantizeWithParams) and one dynamically
// quantized attention product (int16 loops vs centered codes on the fp32-exact small kernel).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "qforge/kernels/dynq.h"
#include "qforge/kernels/elementwise.h"
#include "qforge/kernels/gemm.h"
#include "qforge/kernels/norm.h"
#include "qforge/kernels/small_gemm.h"
#include "qforge/kernels/softmax.h"
#include "qforge/numerics/quant_params.h"

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

// Per-tensor uint8 quantization of one 1024 x 64 activation (a DynamicQLinear input):
// 0 = numerics::QuantizeRun (baseline x86-64), 1 = QuantizeWithParams (AVX2). Same codes.
void BM_QuantizeTensor(benchmark::State& st) {
  const std::vector<float> x = Random(1024 * 64, -3, 5);
  const qforge::numerics::QuantParams p{8.0f / 255.0f, 96};
  std::vector<uint8_t> q(x.size());
  for (auto _ : st) {
    if (st.range(0) == 0)
      qforge::numerics::QuantizeRun(x.data(), static_cast<int64_t>(x.size()), p, 0, 255, q.data());
    else
      qk::QuantizeWithParams(x.data(), static_cast<int64_t>(x.size()), p, 0, 255, false, q.data());
    benchmark::DoNotOptimize(q.data());
  }
  st.SetItemsProcessed(st.iterations() * static_cast<int64_t>(x.size()));
}
BENCHMARK(BM_QuantizeTensor)->Arg(0)->Arg(1);

// One DynamicQMatMul of attention at batch 64 (256 heads of 16x16x16, both sides quantized per
// tensor with given parameters, y = acc * (sa * sb)): 0 = uint8 codes and int16 (b - zb) with
// int32 loops (the op's integer path), 1 = centered codes as floats on SmallMatMulF32 (the
// op's fast path; exact, so the same y).
void BM_AttentionQMatMul(benchmark::State& st) {
  const int64_t heads = 256, n = 16, size = heads * n * n;
  const std::vector<float> a = Random(size, -2, 3), b = Random(size, -1, 1);
  const qforge::numerics::QuantParams pa{5.0f / 255.0f, 102}, pb{2.0f / 255.0f, 128};
  const float scale = pa.scale * pb.scale;
  std::vector<uint8_t> qa(size), qb(size);
  std::vector<int16_t> bd(size);
  std::vector<float> ca(size), cb(size), c(size);
  std::vector<int32_t> acc(n);
  for (auto _ : st) {
    if (st.range(0) == 0) {
      qforge::numerics::QuantizeRun(a.data(), size, pa, 0, 255, qa.data());
      qforge::numerics::QuantizeRun(b.data(), size, pb, 0, 255, qb.data());
      for (int64_t i = 0; i < size; ++i) bd[i] = static_cast<int16_t>(qb[i] - pb.zero_point);
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t m = 0; m < n; ++m) {
          std::fill(acc.begin(), acc.end(), 0);
          for (int64_t k = 0; k < n; ++k) {
            const int32_t av = int32_t{qa[(h * n + m) * n + k]} - pa.zero_point;
            const int16_t* brow = bd.data() + (h * n + k) * n;
            for (int64_t j = 0; j < n; ++j) acc[j] += av * brow[j];
          }
          for (int64_t j = 0; j < n; ++j) c[(h * n + m) * n + j] = float(acc[j]) * scale;
        }
    } else {
      qk::QuantizeCentered(a.data(), size, pa, 0, 255, ca.data());
      qk::QuantizeCentered(b.data(), size, pb, 0, 255, cb.data());
      for (int64_t h = 0; h < heads; ++h)
        qk::SmallMatMulF32(n, n, n, ca.data() + h * n * n, n, cb.data() + h * n * n, n,
                           c.data() + h * n * n, n);
      for (int64_t i = 0; i < size; ++i) c[i] = c[i] * scale;
    }
    benchmark::DoNotOptimize(c.data());
  }
  st.SetItemsProcessed(st.iterations() * heads * n * n * n * 2);
}
BENCHMARK(BM_AttentionQMatMul)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
