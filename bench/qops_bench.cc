// int8 depthwise convolution (MobileNetV2's 3x3 layers: the direct kernel vs the im2col + QGemm
// path; channels-last: the AVX2 per-pixel vs the AVX-512 row kernel), int8 element-wise add /
// mul (AVX2 vs AVX-512), the input QuantizeLinear into channels-last codes and channels-last
// global average pooling, single thread by default.
// Run: build/bench/qf_qops_bench  (QF_BENCH_THREADS=n for n threads, QF_ISA=scalar|avx2 to force
// an instruction set).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <vector>

#include "qforge/kernels/qconv.h"
#include "qforge/kernels/qdwconv.h"
#include "qforge/kernels/qelementwise.h"

namespace {

using qforge::kernels::QConvShape;
using qforge::kernels::QGemmOutput;

int BenchThreads() {
  const char* s = std::getenv("QF_BENCH_THREADS");
  return s ? std::max(1, std::atoi(s)) : 1;
}

QConvShape DwShape(int64_t c, int64_t hw, int64_t stride) {
  QConvShape s;
  s.in_channels = s.out_channels = s.group = c;
  s.in_h = s.in_w = hw;
  s.kernel_h = s.kernel_w = 3;
  s.stride_h = s.stride_w = stride;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
  return s;
}

// Args: channels, input size, stride; direct = the depthwise kernel, else QConv (im2col+QGemm).
void BM_QDepthwise(benchmark::State& state, bool direct) {
  const QConvShape s = DwShape(state.range(0), state.range(1), state.range(2));
  std::mt19937 rng(3);
  std::vector<uint8_t> x(s.in_channels * s.in_h * s.in_w);
  std::vector<int8_t> w(s.out_channels * 9);
  for (auto& v : x) v = static_cast<uint8_t>(rng());
  for (auto& v : w) v = static_cast<int8_t>(rng() % 255 - 127);
  std::vector<int32_t> bias(s.out_channels, 100);
  std::vector<qforge::numerics::FixedMultiplier> mult(
      s.out_channels, qforge::numerics::QuantizeMultiplier(1.0 / 300));
  const auto out =
      QGemmOutput::Quantized(false, bias.data(), mult.data(), s.out_channels, 128, 0, 255);
  std::vector<uint8_t> y(s.out_channels * s.out_h() * s.out_w());
  const int threads = BenchThreads();
  qforge::kernels::PackedQConvWeights packed;
  if (!direct) packed = qforge::kernels::PackedQConvWeights::Pack(s, w.data());
  for (auto _ : state) {
    if (direct) {
      qforge::kernels::QDepthwiseConv(s, {x.data(), false, 128}, w.data(), nullptr, 0, out,
                                      y.data(), threads);
    } else {
      qforge::kernels::QConv({x.data(), false, 128}, packed, out, y.data(), threads);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double macs = double(s.out_channels) * s.out_h() * s.out_w() * 9;
  state.counters["GMACs"] =
      benchmark::Counter(macs / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = threads;
}

// Channels-last depthwise (what the runtime runs inside a ChannelsLastInt8 chain): the per-pixel
// AVX2 kernel vs the AVX-512 VNNI row kernel with prepacked weights, same shapes and data.
void BM_QDepthwiseNhwc(benchmark::State& state, qforge::kernels::Isa isa) {
  if (!qforge::kernels::IsaSupported(isa)) {
    state.SkipWithError("ISA not supported");
    return;
  }
  const QConvShape s = DwShape(state.range(0), state.range(1), state.range(2));
  std::mt19937 rng(3);
  std::vector<uint8_t> x(s.in_channels * s.in_h * s.in_w);
  std::vector<int8_t> w(s.out_channels * 9);
  for (auto& v : x) v = static_cast<uint8_t>(rng());
  for (auto& v : w) v = static_cast<int8_t>(rng() % 255 - 127);
  std::vector<int32_t> bias(s.out_channels, 100);
  std::vector<qforge::numerics::FixedMultiplier> mult(
      s.out_channels, qforge::numerics::QuantizeMultiplier(1.0 / 300));
  const auto out =
      QGemmOutput::Quantized(false, bias.data(), mult.data(), s.out_channels, 128, 0, 255);
  std::vector<uint8_t> y(s.out_channels * s.out_h() * s.out_w());
  const auto packed =
      qforge::kernels::PackedQDepthwiseNhwc::Pack(s.in_channels, 3, 3, w.data(), nullptr, 0);
  for (auto _ : state) {
    qforge::kernels::QDepthwiseConvNhwc(s, {x.data(), false, 128}, packed, out, y.data(),
                                        BenchThreads(), isa);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double macs = double(s.out_channels) * s.out_h() * s.out_w() * 9;
  state.counters["GMACs"] =
      benchmark::Counter(macs / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void DwShapes(benchmark::internal::Benchmark* b) {
  for (const auto& l : std::vector<std::vector<int64_t>>{{32, 112, 1},
                                                         {96, 112, 2},
                                                         {144, 56, 1},
                                                         {144, 56, 2},
                                                         {192, 28, 1},
                                                         {384, 14, 1},
                                                         {576, 14, 2},
                                                         {960, 7, 1}})
    b->Args(l);
  b->ArgNames({"C", "HW", "stride"})->Unit(benchmark::kMicrosecond);
}

// Element-wise add / mul over n uint8 elements (a MobileNetV2 residual add is 56*56*24), with
// the active ISA; the *_avx2 / *_avx512 variants force one.
void BM_QElementwiseIsa(benchmark::State& state, bool add, qforge::kernels::Isa isa) {
  if (!qforge::kernels::IsaSupported(isa)) {
    state.SkipWithError("ISA not supported");
    return;
  }
  const int64_t n = state.range(0);
  std::mt19937 rng(5);
  std::vector<uint8_t> a(n), b(n), c(n);
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  const auto pa = qforge::kernels::QAddParams::Make(0.02f, 128, 0.03f, 120, 0.05f, 128, 0, 255);
  const auto pm = qforge::kernels::QMulParams::Make(0.02f, 128, 0.03f, 120, 0.01f, 128, 0, 255);
  for (auto _ : state) {
    if (add)
      qforge::kernels::QAdd(false, a.data(), 1, b.data(), 1, c.data(), n, pa, isa, 1);
    else
      qforge::kernels::QMul(false, a.data(), 1, b.data(), 1, c.data(), n, pm, isa, 1);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["Gelem"] =
      benchmark::Counter(n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_QElementwise(benchmark::State& state, bool add) {
  const int64_t n = state.range(0);
  std::mt19937 rng(5);
  std::vector<uint8_t> a(n), b(n), c(n);
  for (auto& v : a) v = static_cast<uint8_t>(rng());
  for (auto& v : b) v = static_cast<uint8_t>(rng());
  const auto pa = qforge::kernels::QAddParams::Make(0.02f, 128, 0.03f, 120, 0.05f, 128, 0, 255);
  const auto pm = qforge::kernels::QMulParams::Make(0.02f, 128, 0.03f, 120, 0.01f, 128, 0, 255);
  for (auto _ : state) {
    if (add)
      qforge::kernels::QAdd(false, a.data(), 1, b.data(), 1, c.data(), n, pa);
    else
      qforge::kernels::QMul(false, a.data(), 1, b.data(), 1, c.data(), n, pm);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  state.counters["Gelem"] =
      benchmark::Counter(n / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// The network input's QuantizeLinear into channels-last codes (ImageNet-sized, 3 channels):
// AVX2 (plane by plane, then a strided byte scatter) vs AVX-512 (all channels of 16 pixels at
// a time, interleaved stores). x / s is an IEEE division on both.
void BM_QuantizeToNhwc(benchmark::State& state, qforge::kernels::Isa isa) {
  if (!qforge::kernels::IsaSupported(isa)) {
    state.SkipWithError("ISA not supported");
    return;
  }
  const int64_t channels = state.range(0), pixels = state.range(1) * state.range(1);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2.5f, 2.5f);
  std::vector<float> x(channels * pixels);
  for (auto& v : x) v = u(rng);
  std::vector<uint8_t> y(x.size());
  for (auto _ : state) {
    qforge::kernels::QuantizeToNhwc(x.data(), 1, channels, pixels, {0.0187f, 114}, false, y.data(),
                                    isa, 1);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["Gelem"] =
      benchmark::Counter(x.size() / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// Channels-last global average pooling (MobileNetV2's last 7 x 7 x 1280 feature map).
void BM_QGlobalAveragePoolNhwc(benchmark::State& state) {
  const int64_t hw = 49, channels = 1280;
  std::mt19937 rng(9);
  std::vector<uint8_t> x(hw * channels), y(channels);
  for (auto& v : x) v = static_cast<uint8_t>(rng());
  const qforge::kernels::QPoolParams p{0.05f, 0.03f, 3, 0, 0, 255};
  for (auto _ : state) {
    qforge::kernels::QGlobalAveragePoolNhwc(false, 1, hw, channels, p, x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
}

}  // namespace

BENCHMARK_CAPTURE(BM_QuantizeToNhwc, avx2, qforge::kernels::Isa::kAvx2)
    ->Args({3, 224})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_QuantizeToNhwc, avx512, qforge::kernels::Isa::kAvx512)
    ->Args({3, 224})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_QGlobalAveragePoolNhwc)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_QDepthwise, direct, true)->Apply(DwShapes);
BENCHMARK_CAPTURE(BM_QDepthwise, im2col_qgemm, false)->Apply(DwShapes);
BENCHMARK_CAPTURE(BM_QDepthwiseNhwc, avx2_per_pixel, qforge::kernels::Isa::kAvx2)->Apply(DwShapes);
BENCHMARK_CAPTURE(BM_QDepthwiseNhwc, avx512_rows, qforge::kernels::Isa::kAvx512)->Apply(DwShapes);
BENCHMARK_CAPTURE(BM_QElementwiseIsa, add_avx2, true, qforge::kernels::Isa::kAvx2)
    ->Arg(56 * 56 * 24)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_QElementwiseIsa, add_avx512, true, qforge::kernels::Isa::kAvx512)
    ->Arg(56 * 56 * 24)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_QElementwise, add, true)
    ->Arg(56 * 56 * 24)
    ->Arg(28 * 28 * 32)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_QElementwise, mul, false)
    ->Arg(56 * 56 * 24)
    ->Arg(1 << 20)
    ->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
