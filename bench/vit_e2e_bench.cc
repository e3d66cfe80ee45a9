// End-to-end fmnist_vit (or QF_VIT_MODEL) at batch 64 on one thread through runtime::Session:
// the same path `qforge bench` takes, without building the CLI. Compare with ONNX Runtime via
// tools/ort/bench.js run beside it.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>

#include "qforge/onnx/onnx.h"
#include "qforge/runtime/session.h"

namespace {

void BM_VitBatch64(benchmark::State& st) {
  const char* env = std::getenv("QF_VIT_MODEL");
  const std::string path = env ? env : "models/fmnist_vit.onnx";
  qforge::runtime::SessionOptions opt;
  opt.threads = 1;
  qforge::runtime::Session s(qforge::onnx_io::LoadModel(path), opt);
  qforge::Tensor x(qforge::DType::kF32, {64, 1, 28, 28});
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(0, 1);
  for (float& v : x.span<float>()) v = d(rng);
  for (auto _ : st) benchmark::DoNotOptimize(s.Run({{"input", x}}));
}
BENCHMARK(BM_VitBatch64)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
