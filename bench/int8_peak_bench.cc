// Measures this machine's int8 multiply-accumulate peak per core (see int8_peak.h): the AVX2
// vpmaddubsw/vpmaddwd idiom, exact int16 vpmaddwd, AVX-512 VNNI zmm and AVX-VNNI ymm vpdpbusd.
// Run single-threaded: build/bench/qf_int8_peak_bench
#include <benchmark/benchmark.h>

#include "int8_peak.h"

namespace {

using qforge::bench::Int8Idiom;

void BM_Int8Peak(benchmark::State& state, Int8Idiom idiom) {
  if (!qforge::bench::Int8IdiomSupported(idiom)) {
    state.SkipWithError("idiom not supported on this CPU");
    return;
  }
  constexpr int64_t kSteps = 1 << 14;
  int32_t sink = 0;
  for (auto _ : state) {
    sink += qforge::bench::RunInt8Idiom(idiom, kSteps);
    benchmark::DoNotOptimize(sink);
  }
  const double macs = static_cast<double>(kSteps) * qforge::bench::Int8IdiomMacsPerStep(idiom);
  state.counters["GOPS"] =
      benchmark::Counter(2.0 * macs / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GMAC/s"] =
      benchmark::Counter(macs / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK_CAPTURE(BM_Int8Peak, avx2_vpmaddubsw_vpmaddwd, Int8Idiom::kAvx2Maddubs);
BENCHMARK_CAPTURE(BM_Int8Peak, avx2_vpmaddwd_int16, Int8Idiom::kAvx2Madd16);
BENCHMARK_CAPTURE(BM_Int8Peak, avx512vnni_vpdpbusd_zmm, Int8Idiom::kVnniZmm);
BENCHMARK_CAPTURE(BM_Int8Peak, avxvnni_vpdpbusd_ymm, Int8Idiom::kVnniYmm);

}  // namespace

BENCHMARK_MAIN();
