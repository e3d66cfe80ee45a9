// Tests of qforge::DynamicQMatMul and qforge::DynamicQLinear (per tensor): the ops equal a plain
// reference of the standard ONNX graph (DynamicQuantizeLinear on each side, exact integer
// products, float(acc) * (s_a * s_b)) bit for bit, on attention shapes (the fp32-exact small
// fast path) and on larger slices (the packed int8 path), with broadcasting, and the fast path
// equals the scalar ISA's integer loops bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "qforge/kernels/isa.h"
#include "qforge/numerics/quant_params.h"
#include "qforge/runtime/session.h"

namespace qforge::runtime {
namespace {

Tensor RandomT(Shape shape, uint32_t seed, float scale, float offset = 0.0f) {
  Tensor t(DType::kF32, std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(offset, scale);
  for (float& v : t.span<float>()) v = d(rng);
  return t;
}

ir::ValueInfo Input(const std::string& name) {
  ir::ValueInfo vi;
  vi.name = name;
  vi.dtype = DType::kF32;
  return vi;
}

// DynamicQuantizeLinear of the whole tensor (ONNX's formulas), codes as int32.
std::vector<int32_t> Dql(const Tensor& t, numerics::QuantParams* p) {
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float v = t.data<float>()[i];
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const float s = (hi - lo) / 255.0f;
  std::vector<int32_t> q(static_cast<size_t>(t.numel()), 0);
  if (!(s > 0)) {
    *p = {s, 0};
    return q;
  }
  const int32_t z =
      static_cast<int32_t>(std::clamp(numerics::RoundHalfEven(0.0f - lo / s), 0.0f, 255.0f));
  *p = {s, z};
  for (int64_t i = 0; i < t.numel(); ++i)
    q[i] = numerics::QuantizeValue(t.data<float>()[i], *p, 0, 255);
  return q;
}

// The standard graph's result for A [..., M, K] x B [..., K, N] with equal batch dims, or B
// without batch dims (broadcast).
std::vector<float> Reference(const Tensor& a, const Tensor& b) {
  numerics::QuantParams pa, pb;
  const std::vector<int32_t> qa = Dql(a, &pa), qb = Dql(b, &pb);
  const int64_t M = a.dim(-2), K = a.dim(-1), N = b.dim(-1);
  const int64_t T = a.numel() / (M * K), TB = b.numel() / (K * N);
  std::vector<float> y(static_cast<size_t>(T * M * N));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int64_t acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += int64_t{qa[(t * M + m) * K + k] - pa.zero_point} *
                 (qb[((TB == 1 ? 0 : t) * K + k) * N + n] - pb.zero_point);
        y[(t * M + m) * N + n] = static_cast<float>(acc) * (pa.scale * pb.scale);
      }
  return y;
}

Tensor RunOp(const Tensor& a, const Tensor& b) {
  ir::Graph g;
  g.opset_imports[""] = 17;
  g.opset_imports["qforge"] = 1;
  g.inputs = {Input("A"), Input("B")};
  ir::Node node;
  node.name = "attn_mm";
  node.op_type = "DynamicQMatMul";
  node.domain = "qforge";
  node.inputs = {"A", "B"};
  node.outputs = {"Y"};
  g.nodes = {node};
  g.outputs = {Input("Y")};
  Session s(std::move(g));
  return s.Run({{"A", a}, {"B", b}}).at("Y");
}

bool SameBits(const Tensor& y, const std::vector<float>& ref) {
  return static_cast<size_t>(y.numel()) == ref.size() &&
         std::memcmp(y.data<float>(), ref.data(), ref.size() * sizeof(float)) == 0;
}

struct MatMulCase {
  Shape a, b;
};

TEST(DynamicQMatMul, EqualsStandardGraphBitForBit) {
  const MatMulCase cases[] = {
      {{64, 4, 16, 16}, {64, 4, 16, 16}},  // ViT attention scores / attention x V
      {{3, 2, 17, 9}, {3, 2, 9, 13}},      // odd tiles
      {{2, 5, 33}, {33, 7}},               // broadcast B
      {{2, 70, 40}, {2, 40, 66}},          // beyond the small kernel: the packed int8 path
      {{1, 4, 258}, {1, 258, 5}},          // the largest K of the fp32-exact path
      {{1, 3, 259}, {1, 259, 4}},          // one more: the integer loops
  };
  uint32_t seed = 1;
  for (const MatMulCase& c : cases) {
    const Tensor a = RandomT(c.a, seed++, 1.5f, 0.3f), b = RandomT(c.b, seed++, 0.7f, -0.1f);
    SCOPED_TRACE(ShapeToString(c.a) + " x " + ShapeToString(c.b));
    EXPECT_TRUE(SameBits(RunOp(a, b), Reference(a, b)));
  }
}

TEST(DynamicQMatMul, FastPathEqualsScalarIntegerLoops) {
  const Tensor a = RandomT({8, 4, 16, 16}, 11, 2.0f), b = RandomT({8, 4, 16, 16}, 12, 0.5f, 0.2f);
  const kernels::Isa isa = kernels::ActiveIsa();
  kernels::SetIsa(kernels::Isa::kScalar);
  const Tensor slow = RunOp(a, b);
  kernels::SetIsa(isa);
  const Tensor fast = RunOp(a, b);
  ASSERT_EQ(slow.numel(), fast.numel());
  EXPECT_EQ(0, std::memcmp(slow.data<float>(), fast.data<float>(), slow.numel() * sizeof(float)));
}

TEST(DynamicQMatMul, AllZeroOperandGivesZeros) {
  const Tensor a = RandomT({2, 4, 16, 16}, 3, 1.0f);
  Tensor b(DType::kF32, {2, 4, 16, 16});
  std::fill(b.span<float>().begin(), b.span<float>().end(), 0.0f);
  const Tensor y = RunOp(a, b);
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y.data<float>()[i], 0.0f);
}

TEST(DynamicQMatMul, RejectsMismatchedK) {
  const Tensor a = RandomT({2, 4, 5}, 1, 1.0f), b = RandomT({2, 6, 3}, 2, 1.0f);
  try {
    RunOp(a, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("attn_mm"), std::string::npos) << e.what();
  }
}

// qforge::DynamicQLinear per tensor (the fused DynamicQuantizeLinear -> MatMulInteger graph):
// X quantized as DynamicQuantizeLinear, int8 weights, Y = float(acc) * (xs * ws[n]) + bias[n].
TEST(DynamicQLinear, PerTensorEqualsStandardGraphBitForBit) {
  for (const bool with_bias : {false, true}) {
    const int64_t K = 64, N = 37;
    const Tensor x = RandomT({3, 17, K}, 21, 1.2f, 0.4f);
    std::mt19937 rng(22);
    std::uniform_int_distribution<int> code(-127, 127);
    Tensor w(DType::kI8, {K, N});
    for (int8_t& v : w.span<int8_t>()) v = static_cast<int8_t>(code(rng));
    const Tensor ws = RandomT({N}, 23, 0.01f, 0.05f);
    const Tensor bias = RandomT({N}, 24, 0.3f);
    ir::Graph g;
    g.opset_imports[""] = 17;
    g.opset_imports["qforge"] = 1;
    g.inputs = {Input("X")};
    g.initializers["W"] = w;
    g.initializers["S"] = ws;
    ir::Node node;
    node.name = "fc";
    node.op_type = "DynamicQLinear";
    node.domain = "qforge";
    node.inputs = {"X", "W", "S"};
    if (with_bias) {
      g.initializers["B"] = bias;
      node.inputs.push_back("B");
    }
    node.outputs = {"Y"};
    g.nodes = {node};
    g.outputs = {Input("Y")};
    Session s(std::move(g));
    const Tensor y = s.Run({{"X", x}}).at("Y");

    numerics::QuantParams px;
    const std::vector<int32_t> qx = Dql(x, &px);
    const int64_t M = x.numel() / K;
    std::vector<float> ref(static_cast<size_t>(M * N));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        int64_t acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += int64_t{qx[m * K + k] - px.zero_point} * w.data<int8_t>()[k * N + n];
        float v = static_cast<float>(acc) * (px.scale * ws.data<float>()[n]);
        if (with_bias) v = v + bias.data<float>()[n];
        ref[m * N + n] = v;
      }
    EXPECT_TRUE(SameBits(y, ref)) << "bias=" << with_bias;
  }
}

}  // namespace
}  // namespace qforge::runtime
