// Measures this machine's fp32 FMA peak per core: independent FMA chains on AVX2 ymm and
// AVX-512 zmm registers, so GEMM throughput can be quoted as a fraction of peak.
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include "qforge/kernels/isa.h"

namespace {

using qforge::kernels::Isa;
using qforge::kernels::IsaSupported;

constexpr int kChains = 12;          // > FMA latency (4) x FMA ports (2): the ports never starve
constexpr int64_t kSteps = 1 << 14;  // FMAs per chain per benchmark iteration

__attribute__((target("avx2,fma"), noinline)) float FmaChainsYmm(float seed) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(seed + c);
  const __m256 mul = _mm256_set1_ps(0.999999f), add = _mm256_set1_ps(1e-7f);
  for (int64_t s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], mul, add);
  }
  __m256 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm256_add_ps(sum, acc[c]);
  return _mm256_cvtss_f32(sum);
}

__attribute__((target("avx512f"), noinline)) float FmaChainsZmm(float seed) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(seed + c);
  const __m512 mul = _mm512_set1_ps(0.999999f), add = _mm512_set1_ps(1e-7f);
  for (int64_t s = 0; s < kSteps; ++s) {
#pragma GCC unroll 12
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], mul, add);
  }
  __m512 sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = _mm512_add_ps(sum, acc[c]);
  return _mm512_reduce_add_ps(sum);
}

template <int kLanes>
void BM_FmaPeak(benchmark::State& state) {
  const Isa need = kLanes == 8 ? Isa::kAvx2 : Isa::kAvx512;
  if (!IsaSupported(need)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  float seed = 1.0f;
  for (auto _ : state) {
    seed = kLanes == 8 ? FmaChainsYmm(seed) : FmaChainsZmm(seed);
    benchmark::DoNotOptimize(seed);
  }
  // 2 flops (multiply + add) per lane per FMA.
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * kLanes * kChains * kSteps / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_FmaPeak<8>)->Name("BM_FmaPeak/avx2_ymm");
BENCHMARK(BM_FmaPeak<16>)->Name("BM_FmaPeak/avx512_zmm");

}  // namespace

BENCHMARK_MAIN();
