// Dynamic int8 Linear (row-wise quantize + int8 GEMM + per-row/per-column dequantize) vs the fp32
// GEMM, and the int4 / int8 weight-only GEMV and GEMM vs fp32, at 4096 x 4096 (single thread
// default).
// bytes/s counts the weight bytes read per call (the memory-bound part at batch 1);
// BM_ReadBandwidth measures this machine's streaming read rate for comparison. Run:
// build/bench/qf_dynq_bench  (QF_BENCH_THREADS=n for n threads)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

#include "qforge/kernels/dynq.h"
#include "qforge/kernels/gemm.h"
#include "qforge/kernels/qgemm.h"
#include "qforge/kernels/weight_only.h"

namespace {

namespace k = qforge::kernels;

int BenchThreads() {
  const char* s = std::getenv("QF_BENCH_THREADS");
  return s ? std::max(1, std::atoi(s)) : 1;
}

std::vector<float> Random(int64_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(rng);
  return v;
}

void SetCounters(benchmark::State& state, int64_t M, int64_t N, int64_t K, double weight_bytes) {
  state.counters["GFLOPS"] =
      benchmark::Counter(2.0 * M * N * K / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_GBps"] =
      benchmark::Counter(weight_bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// y = x W^T + b in fp32 with W prepacked (as the runtime's Gemm/MatMul does).
void BM_Fp32Linear(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const std::vector<float> x = Random(M * K, 1.0f, 1), w = Random(N * K, 0.02f, 2),
                           b = Random(N, 0.1f, 3);
  const k::PackedMatrix pw = k::PackedMatrix::PackB(K, N, w.data(), K, /*trans=*/true);
  std::vector<float> y(M * N);
  k::GemmEpilogue ep;
  ep.col_bias = b.data();
  const int threads = BenchThreads();
  for (auto _ : state) {
    k::Sgemm(M, N, K, k::GemmOperand::Plain(x.data(), K), k::GemmOperand::Packed(pw), y.data(), N,
             ep, threads);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  SetCounters(state, M, N, K, 4.0 * N * K);
}

// The same layer dynamically quantized: uint8 per-row activations x int8 per-column weights.
void BM_DynamicInt8Linear(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const std::vector<float> x = Random(M * K, 1.0f, 1), b = Random(N, 0.1f, 3);
  std::mt19937 rng(4);
  std::vector<int8_t> w(N * K);  // N x K (transB), symmetric [-127, 127]
  for (auto& v : w) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  std::vector<float> ws(N, 0.02f / 127);
  const k::PackedQGemmB pw = k::PackedQGemmB::Pack(K, N, w.data(), K, /*trans=*/true);
  std::vector<float> y(M * N);
  const int threads = BenchThreads();
  for (auto _ : state) {
    k::DynamicQuantizedLinear(M, x.data(), K, pw, ws.data(), b.data(), y.data(), N, threads);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  SetCounters(state, M, N, K, 1.0 * N * K);
}

// int4 weight-only GEMM (x quantized to int8 per row, 4-bit weights unpacked in registers).
// range(3): group size; range(4): 1 = fp16 scales; range(5): 1 = the AVX-512 VNNI kernel on
// prepacked weights (where the CPU has it), 0 = the AVX2 kernel.
void BM_Int4Gemm(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2), gs = state.range(3);
  const std::vector<float> x = Random(M * K, 1.0f, 1), w = Random(N * K, 0.02f, 2),
                           b = Random(N, 0.1f, 3);
  k::Int4Weights q = k::QuantizeInt4Weights(w.data(), N, K, gs, true, state.range(4) == 1);
  const k::Isa isa = state.range(5) == 1 ? k::Isa::kAvx512 : k::Isa::kAvx2;
  if (state.range(5) == 1) {
    if (!k::IsaSupported(k::Isa::kAvx512)) return state.SkipWithError("no AVX-512");
    k::PrepackInt4Weights(q, isa);
    if (q.vnni.empty()) return state.SkipWithError("no AVX-512 VNNI");
  }
  std::vector<float> y(M * N);
  for (auto _ : state) {
    k::Int4Gemm(M, x.data(), K, q, b.data(), y.data(), N, isa);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  SetCounters(state, M, N, K, static_cast<double>(q.bytes()));
}

// The int4 GEMV from memory rather than cache: 8 copies of the weights (8 x 9.4 MB at 4096 x
// 4096, g32, fp16 scales), used in turn, so each call reads weights that the previous seven
// calls evicted from L2 / L3 (the fp32 weights, 64 MiB, never fit). VNNI kernel where
// available, else AVX2.
void BM_Int4GemvFromMemory(benchmark::State& state) {
  const int64_t N = state.range(0), K = state.range(1), copies = 8;
  const std::vector<float> x = Random(K, 1.0f, 1), b = Random(N, 0.1f, 3);
  std::vector<k::Int4Weights> qs;
  for (int64_t c = 0; c < copies; ++c) {
    const std::vector<float> w = Random(N * K, 0.02f, static_cast<uint32_t>(10 + c));
    qs.push_back(k::QuantizeInt4Weights(w.data(), N, K, 32, true, true));
    k::PrepackInt4Weights(qs.back());
  }
  std::vector<float> y(N);
  int64_t i = 0;
  for (auto _ : state) {
    k::Int4Gemm(1, x.data(), K, qs[i++ % copies], b.data(), y.data(), N);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  SetCounters(state, 1, N, K, static_cast<double>(qs[0].bytes()));
}

// 8-bit weight-only GEMM (x quantized to int16 per row, 8-bit codes widened in registers).
// range(3): group size (fp16 scales, symmetric).
void BM_Int8WeightGemm(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2), gs = state.range(3);
  const std::vector<float> x = Random(M * K, 1.0f, 1), w = Random(N * K, 0.02f, 2),
                           b = Random(N, 0.1f, 3);
  const k::Int8Weights q = k::QuantizeInt8Weights(w.data(), N, K, gs, true, true);
  std::vector<float> y(M * N);
  for (auto _ : state) {
    k::Int8WeightGemm(M, x.data(), K, q, b.data(), y.data(), N);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  SetCounters(state, M, N, K, static_cast<double>(q.bytes()));
}

// Streaming read of 256 MiB (far beyond the caches): the bandwidth a memory-bound GEMV can reach.
void BM_ReadBandwidth(benchmark::State& state) {
  // Integer sums (associative, so the compiler vectorizes them): the loop is bound by memory,
  // not by the latency of float additions.
  const int64_t n = int64_t{32} << 20;  // 64-bit words
  std::vector<uint64_t> v(static_cast<size_t>(n), 1);
  for (auto _ : state) {
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = 0; i < n; i += 4) {
      s0 += v[i];
      s1 += v[i + 1];
      s2 += v[i + 2];
      s3 += v[i + 3];
    }
    benchmark::DoNotOptimize(s0 + s1 + s2 + s3);
  }
  state.counters["GBps"] =
      benchmark::Counter(8.0 * n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_Fp32Linear)
    ->Args({1, 4096, 4096})
    ->Args({64, 4096, 4096})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_DynamicInt8Linear)
    ->Args({1, 4096, 4096})
    ->Args({64, 4096, 4096})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Int4Gemm)
    ->Args({1, 4096, 4096, 32, 1, 1})
    ->Args({1, 4096, 4096, 32, 1, 0})
    ->Args({1, 4096, 4096, 32, 0, 1})
    ->Args({1, 4096, 4096, 128, 1, 1})
    ->Args({64, 4096, 4096, 32, 1, 1})
    ->Args({64, 4096, 4096, 32, 1, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Int4GemvFromMemory)->Args({4096, 4096})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Int8WeightGemm)
    ->Args({1, 4096, 4096, 32})
    ->Args({1, 4096, 4096, 128})
    ->Args({64, 4096, 4096, 32})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
