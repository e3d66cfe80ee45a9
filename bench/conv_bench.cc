// fp32 convolution throughput (single thread; batch 1, some batch 8) at ResNet-18 and
// MobileNetV2 layer shapes, per ISA; reports GFLOP/s (2 flops per multiply-add).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "qforge/kernels/conv.h"

namespace {

using namespace qforge::kernels;

struct Layer {
  const char* name;
  int64_t c, m, group, size, k, stride, pad;
};

void BM_Conv(benchmark::State& state, Isa isa, Layer l, int64_t batch) {
  if (!IsaSupported(isa)) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  ConvGeometry g;
  g.batch = batch;
  g.in_channels = l.c;
  g.out_channels = l.m;
  g.group = l.group;
  g.in_size = {l.size, l.size};
  g.kernel = {l.k, l.k};
  g.strides = {l.stride, l.stride};
  g.dilations = {1, 1};
  g.pads_begin = {l.pad, l.pad};
  g.pads_end = {l.pad, l.pad};
  const int64_t out = ConvOutputSize(l.size, l.k, l.stride, 1, l.pad, l.pad);
  g.out_size = {out, out};
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(batch * l.c * l.size * l.size), w(l.m * (l.c / l.group) * l.k * l.k), b(l.m),
      y(batch * l.m * out * out);
  for (float& v : x) v = u(rng);
  for (float& v : w) v = u(rng);
  for (float& v : b) v = u(rng);
  const ConvF32 conv(l.m, l.c, l.group, g.kernel, w.data(), b.data(), isa);
  for (auto _ : state) {
    conv.Run(g, x.data(), y.data(), Activation::Relu(), /*threads=*/1);
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * batch * l.m * out * out * (l.c / l.group) * l.k * l.k;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

int Register() {
  const Layer layers[] = {
      {"resnet18_conv1_7x7s2", 3, 64, 1, 224, 7, 2, 3},
      {"resnet18_layer1_3x3", 64, 64, 1, 56, 3, 1, 1},
      {"resnet18_layer2_3x3s2", 64, 128, 1, 56, 3, 2, 1},
      {"resnet18_layer2_3x3", 128, 128, 1, 28, 3, 1, 1},
      {"resnet18_layer2_down_1x1s2", 64, 128, 1, 56, 1, 2, 0},
      {"resnet18_layer3_3x3", 256, 256, 1, 14, 3, 1, 1},
      {"resnet18_layer4_3x3", 512, 512, 1, 7, 3, 1, 1},
      {"mobilenetv2_dw_3x3s2_c96_112", 96, 96, 96, 112, 3, 2, 1},
      {"mobilenetv2_dw_3x3_c144_56", 144, 144, 144, 56, 3, 1, 1},
      {"mobilenetv2_pw_1x1_144to24_56", 144, 24, 1, 56, 1, 1, 0},
      {"mobilenetv2_pw_1x1_16to96_112", 16, 96, 1, 112, 1, 1, 0},
      {"mobilenetv2_conv1_3x3s2", 3, 32, 1, 224, 3, 2, 1},
  };
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kScalar})
    for (const Layer& l : layers) {
      if (isa == Isa::kScalar && l.group == 1 && l.k > 1) continue;  // slow; GEMM bench covers
      const std::string name = "BM_Conv/" + std::string(IsaName(isa)) + "/" + l.name;
      benchmark::RegisterBenchmark(name.c_str(), BM_Conv, isa, l, 1)->Unit(benchmark::kMillisecond);
    }
  // Batch 8 (AVX-512): 7x7 planes run as one GEMM over the batch, larger ones per image.
  const Layer batched[] = {
      {"resnet18_conv1_7x7s2", 3, 64, 1, 224, 7, 2, 3},
      {"resnet18_layer2_3x3", 128, 128, 1, 28, 3, 1, 1},
      {"resnet18_layer3_3x3", 256, 256, 1, 14, 3, 1, 1},
      {"resnet18_layer4_3x3", 512, 512, 1, 7, 3, 1, 1},
      {"mobilenetv2_pw_1x1_16to96_112", 16, 96, 1, 112, 1, 1, 0},
      {"mobilenetv2_pw_1x1_64to384_14", 64, 384, 1, 14, 1, 1, 0},
      {"mobilenetv2_pw_1x1_384to64_14", 384, 64, 1, 14, 1, 1, 0},
      {"mobilenetv2_pw_1x1_320to1280_7", 320, 1280, 1, 7, 1, 1, 0},
  };
  for (const Layer& l : batched) {
    const std::string name = "BM_Conv/avx512/batch8/" + std::string(l.name);
    benchmark::RegisterBenchmark(name.c_str(), BM_Conv, Isa::kAvx512, l, 8)
        ->Unit(benchmark::kMillisecond);
  }
  return 0;
}
const int registered = Register();

}  // namespace

BENCHMARK_MAIN();
