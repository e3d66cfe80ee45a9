// fp32 GEMM throughput (single thread) at model shapes, per ISA; reports GFLOP/s.
// Shapes are M x N x K: C[M x N] = A[M x K] B[K x N], plain row-major operands (packing
// included), plus the "packed A" variant the Conv op uses (weights prepacked at creation).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "qforge/kernels/gemm.h"

namespace {

using namespace qforge::kernels;

void BM_Sgemm(benchmark::State& state, Isa isa, int64_t m, int64_t n, int64_t k, bool packed_a) {
  if (!IsaSupported(isa)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(m * k), b(k * n), c(m * n);
  for (float& x : a) x = u(rng);
  for (float& x : b) x = u(rng);
  PackedMatrix pa;
  if (packed_a) pa = PackedMatrix::PackA(m, k, a.data(), k, false, isa);
  SetIsa(isa);
  const GemmOperand ao = packed_a ? GemmOperand::Packed(pa) : GemmOperand::Plain(a.data(), k);
  for (auto _ : state) {
    Sgemm(m, n, k, ao, GemmOperand::Plain(b.data(), n), c.data(), n, {}, /*threads=*/1);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * m * n * k / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

struct Shape {
  int64_t m, n, k;
};

int Register() {
  const Shape shapes[] = {{512, 512, 512}, {3136, 64, 576},  {784, 128, 1152}, {196, 256, 2304},
                          {1, 1000, 512},  {64, 4096, 4096}, {64, 3136, 576},  {512, 49, 4608}};
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kScalar}) {
    for (const Shape& s : shapes) {
      const double flops = 2.0 * s.m * s.n * s.k;
      if (isa == Isa::kScalar && flops > 3e8) continue;  // keep the scalar runs short
      for (bool packed : {false, true}) {
        const std::string name = "BM_Sgemm/" + std::string(IsaName(isa)) + "/" +
                                 std::to_string(s.m) + "x" + std::to_string(s.n) + "x" +
                                 std::to_string(s.k) + (packed ? "/packedA" : "");
        benchmark::RegisterBenchmark(name.c_str(), BM_Sgemm, isa, s.m, s.n, s.k, packed)
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  return 0;
}
const int registered = Register();

}  // namespace

BENCHMARK_MAIN();
