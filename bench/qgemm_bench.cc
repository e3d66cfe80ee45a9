// int8 GEMM (uint8 activations x int8 per-channel weights, requantized to uint8) at model shapes,
// single thread by default, as GOPS and as % of this machine's measured int8 peak per core.
// Run: build/bench/qf_qgemm_bench  (QF_BENCH_THREADS=n for n threads, QF_BENCH_INT32=1 for
// int32 outputs).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "int8_peak.h"
#include "qforge/kernels/qconv.h"
#include "qforge/kernels/qgemm.h"

namespace {

using qforge::bench::Int8Idiom;
using qforge::kernels::QGemmKernel;

int BenchThreads() {
  const char* s = std::getenv("QF_BENCH_THREADS");
  return s ? std::max(1, std::atoi(s)) : 1;
}

// Peaks per core, measured once: the AVX2 vpmaddubsw idiom (the reference) and the
// hardware's best (VNNI zmm when present).
double IdiomPeak() {
  static const double p = qforge::bench::MeasureInt8PeakGops(Int8Idiom::kAvx2Maddubs);
  return p;
}
double VnniPeak() {
  static const double p = qforge::bench::MeasureInt8PeakGops(Int8Idiom::kVnniZmm);
  return p;
}

void BM_QGemm(benchmark::State& state, QGemmKernel kernel) {
  if (!qforge::kernels::QGemmKernelSupported(kernel)) {
    state.SkipWithError("kernel not supported on this CPU");
    return;
  }
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  std::mt19937 rng(7);
  std::vector<uint8_t> a(M * K);
  std::vector<int8_t> b(K * N);
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  for (auto& v : b) v = static_cast<int8_t>(rng() % 255) - 127;
  std::vector<int32_t> bias(N);
  for (auto& v : bias) v = static_cast<int32_t>(rng() % 20001) - 10000;
  std::vector<qforge::numerics::FixedMultiplier> mult(
      N, qforge::numerics::QuantizeMultiplier(1.0 / (1 << 14)));
  const auto packed = qforge::kernels::PackedQGemmB::Pack(K, N, b.data(), N, false, {}, kernel);
  // QF_BENCH_INT32=1: int32 accumulators out (MatMulInteger), else requantized uint8.
  const bool int32_out = std::getenv("QF_BENCH_INT32") != nullptr;
  const auto out = int32_out ? qforge::kernels::QGemmOutput::Int32(bias.data())
                             : qforge::kernels::QGemmOutput::Quantized(false, bias.data(),
                                                                       mult.data(), N, 128, 0, 255);
  std::vector<int32_t> c(M * N);
  const int threads = BenchThreads();
  for (auto _ : state) {
    qforge::kernels::QGemm(M, {a.data(), K, false, 128}, packed, out, c.data(), N, threads);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  const double ops = 2.0 * M * N * K;
  state.counters["GOPS"] =
      benchmark::Counter(ops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  // Rate counters of ops / peak: GOPS as a percentage of each per-core peak (x threads).
  const double idiom = IdiomPeak() * threads, vnni = VnniPeak() * threads;
  if (idiom > 0) {
    state.counters["pct_of_idiom_peak"] = benchmark::Counter(
        100.0 * ops / 1e9 / idiom, benchmark::Counter::kIsIterationInvariantRate);
  }
  if (vnni > 0) {
    state.counters["pct_of_vnni_peak"] =
        benchmark::Counter(100.0 * ops / 1e9 / vnni, benchmark::Counter::kIsIterationInvariantRate);
  }
  state.counters["threads"] = threads;
}

void Shapes(benchmark::internal::Benchmark* b) {
  b->Args({512, 512, 512})
      ->Args({3136, 64, 576})
      ->Args({784, 128, 1152})
      ->Args({196, 256, 2304})
      ->Args({1, 1000, 512})
      ->Args({64, 4096, 4096})
      // MobileNetV2's pointwise layers at 112x112 and 56x56 (small K: the epilogue dominates).
      ->Args({12544, 96, 16})
      ->Args({12544, 16, 32})
      ->Args({3136, 24, 144})
      ->ArgNames({"M", "N", "K"})
      ->Unit(benchmark::kMicrosecond);
  // One thread: rates from the thread's CPU time (robust on a shared machine); several threads:
  // wall time (CPU time would count only the calling thread).
  if (BenchThreads() > 1) b->UseRealTime();
}

// The VNNI peak in the same process and with the same CPU-time clock as the GEMMs above, so a
// loaded machine slows both alike: % of peak = GEMM GOPS / this GOPS (medians of repetitions).
void BM_VnniPeak(benchmark::State& state) {
  if (!qforge::bench::Int8IdiomSupported(Int8Idiom::kVnniZmm)) {
    state.SkipWithError("VNNI not supported on this CPU");
    return;
  }
  constexpr int64_t kSteps = 1 << 14;
  int32_t sink = 0;
  for (auto _ : state) {
    sink += qforge::bench::RunInt8Idiom(Int8Idiom::kVnniZmm, kSteps);
    benchmark::DoNotOptimize(sink);
  }
  const double ops = 2.0 * kSteps * qforge::bench::Int8IdiomMacsPerStep(Int8Idiom::kVnniZmm);
  state.counters["GOPS"] =
      benchmark::Counter(ops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_VnniPeak)->Unit(benchmark::kMicrosecond);

BENCHMARK_CAPTURE(BM_QGemm, avx512vnni, QGemmKernel::kAvx512Vnni)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_QGemm, avx2, QGemmKernel::kAvx2)->Apply(Shapes);

// Random operands of a conv benchmark: uint8 activations, int8 weights in [-127, 127], bias 100
// and the same requantization multiplier for every output channel.
struct QConvOperands {
  std::vector<uint8_t> x;
  std::vector<int8_t> w;
  std::vector<int32_t> bias;
  std::vector<qforge::numerics::FixedMultiplier> mult;
};
QConvOperands RandomQConvOperands(const qforge::kernels::QConvShape& s, unsigned seed,
                                  double multiplier) {
  std::mt19937 rng(seed);
  QConvOperands o;
  o.x.resize(s.batch * s.in_channels * s.in_h * s.in_w);
  o.w.resize(s.out_channels * s.reduction());
  for (auto& v : o.x) v = static_cast<uint8_t>(rng());
  for (auto& v : o.w) v = static_cast<int8_t>(rng() % 255) - 127;
  o.bias.assign(s.out_channels, 100);
  o.mult.assign(s.out_channels, qforge::numerics::QuantizeMultiplier(multiplier));
  return o;
}

// The GOPS counter of a conv benchmark (2 ops per multiply-accumulate).
double SetConvGops(benchmark::State& state, const qforge::kernels::QConvShape& s) {
  const double ops = 2.0 * s.batch * s.out_h() * s.out_w() * s.out_channels * s.reduction();
  state.counters["GOPS"] =
      benchmark::Counter(ops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  return ops;
}

// int8 3x3 convolution (stride 1, pad 1, uint8 in/out, per-channel weights), one image, the
// whole layer: NCHW (QConv: input transpose, im2col or tap pointers, QGemm, output transpose)
// or NHWC (QConvNhwc, what the runtime's channels-last chains run).
void BM_QConv3x3(benchmark::State& state, QGemmKernel kernel, bool nhwc) {
  if (!qforge::kernels::QGemmKernelSupported(kernel)) {
    state.SkipWithError("kernel not supported on this CPU");
    return;
  }
  qforge::kernels::QConvShape s;
  s.in_channels = s.out_channels = state.range(0);
  s.in_h = s.in_w = state.range(1);
  s.batch = state.range(2);  // 32: the activations (6.4 MB at 56x56x64) do not stay in cache
  s.kernel_h = s.kernel_w = 3;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
  const auto [x, w, bias, mult] = RandomQConvOperands(s, 8, 1.0 / (1 << 14));
  const auto isa =
      kernel == QGemmKernel::kAvx2 ? qforge::kernels::Isa::kAvx2 : qforge::kernels::Isa::kAvx512;
  const auto packed = qforge::kernels::PackedQConvWeights::Pack(s, w.data(), {}, isa);
  const auto out = qforge::kernels::QGemmOutput::Quantized(false, bias.data(), mult.data(),
                                                           s.out_channels, 128, 0, 255);
  std::vector<uint8_t> y(s.batch * s.out_channels * s.out_h() * s.out_w());
  const int threads = BenchThreads();
  for (auto _ : state) {
    if (nhwc) {
      qforge::kernels::QConvNhwc({x.data(), false, 128}, packed, out, y.data(), threads);
    } else {
      qforge::kernels::QConv({x.data(), false, 128}, packed, out, y.data(), threads);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double ops = SetConvGops(state, s);
  const double idiom = IdiomPeak() * threads, vnni = VnniPeak() * threads;
  if (idiom > 0) {
    state.counters["pct_of_idiom_peak"] = benchmark::Counter(
        100.0 * ops / 1e9 / idiom, benchmark::Counter::kIsIterationInvariantRate);
  }
  if (vnni > 0) {
    state.counters["pct_of_vnni_peak"] =
        benchmark::Counter(100.0 * ops / 1e9 / vnni, benchmark::Counter::kIsIterationInvariantRate);
  }
}

void ConvShapes(benchmark::internal::Benchmark* b) {
  // ResNet-18 stages: GEMMs 3136x64x576, 784x128x1152, 196x256x2304, 49x512x4608.
  // Batch 1 (the input and output stay in L2 between iterations) and batch 32 (streamed from
  // memory, as in a batch-32 network).
  for (int64_t n : {1, 32}) {
    b->Args({64, 56, n})->Args({128, 28, n})->Args({256, 14, n})->Args({512, 7, n});
  }
  b->ArgNames({"C", "HW", "N"});
  b->Unit(benchmark::kMicrosecond);
  if (BenchThreads() > 1) b->UseRealTime();
}

BENCHMARK_CAPTURE(BM_QConv3x3, avx512vnni, QGemmKernel::kAvx512Vnni, false)->Apply(ConvShapes);
BENCHMARK_CAPTURE(BM_QConv3x3, avx512vnni_nhwc, QGemmKernel::kAvx512Vnni, true)->Apply(ConvShapes);
BENCHMARK_CAPTURE(BM_QConv3x3, avx2, QGemmKernel::kAvx2, false)->Apply(ConvShapes);
BENCHMARK_CAPTURE(BM_QConv3x3, avx2_nhwc, QGemmKernel::kAvx2, true)->Apply(ConvShapes);

// The stems (group 1, 1-3 input channels), one image, NHWC (the runtime's layout), uint8 in /
// out: row runs of a zero-point-padded input copy read in place (the default with VNNI) vs
// im2col rows (WithoutRowRuns), side by side. GOPS counts the real K = C kH kW.
void BM_QConvStem(benchmark::State& state, bool row_runs) {
  if (!qforge::kernels::QGemmKernelSupported(QGemmKernel::kAvx512Vnni)) {
    state.SkipWithError("VNNI not supported on this CPU");
    return;
  }
  qforge::kernels::QConvShape s;
  s.in_channels = state.range(0);
  s.in_h = s.in_w = state.range(1);
  s.out_channels = state.range(2);
  s.kernel_h = s.kernel_w = state.range(3);
  s.stride_h = s.stride_w = state.range(4);
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = state.range(3) / 2;
  s.batch = state.range(5);
  const auto [x, w, bias, mult] = RandomQConvOperands(s, 9, 1.0 / (1 << 12));
  auto packed = qforge::kernels::PackedQConvWeights::Pack(s, w.data(), {});
  if (!row_runs) packed = packed.WithoutRowRuns();
  const auto out = qforge::kernels::QGemmOutput::Quantized(false, bias.data(), mult.data(),
                                                           s.out_channels, 0, 0, 255);
  std::vector<uint8_t> y(s.batch * s.out_channels * s.out_h() * s.out_w());
  for (auto _ : state) {
    qforge::kernels::QConvNhwc({x.data(), false, 114}, packed, out, y.data(), 1);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  SetConvGops(state, s);
}

void StemShapes(benchmark::internal::Benchmark* b) {
  // ResNet-18 conv1 (7x7/2, 3 -> 64), MobileNetV2's first conv (3x3/2, 3 -> 32), the
  // Fashion-MNIST CNN's conv1 (3x3, 1 -> 16, batch 32).
  b->Args({3, 224, 64, 7, 2, 1})->Args({3, 224, 32, 3, 2, 1})->Args({1, 28, 16, 3, 1, 32});
  b->ArgNames({"C", "HW", "M", "k", "s", "N"})->Unit(benchmark::kMicrosecond);
}

BENCHMARK_CAPTURE(BM_QConvStem, row_runs, true)->Apply(StemShapes);
BENCHMARK_CAPTURE(BM_QConvStem, im2col, false)->Apply(StemShapes);

}  // namespace

BENCHMARK_MAIN();
