// Tests of com.microsoft MatMulNBits: the op equals the kernels (Int4Gemm / Int8WeightGemm on
// zero-padded A) bit for bit, is close to A x dequantized(B)^T within the documented activation
// rounding, handles K not a multiple of the block, batch dims, bias, zero points, fp16 and
// non-constant weights, and rejects bad nodes with the node named.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>

#include "qforge/kernels/dynq.h"
#include "qforge/kernels/weight_only.h"
#include "qforge/runtime/session.h"

namespace qforge::runtime {
namespace {

using kernels::MatMulNBitsWeights;

Tensor RandomT(Shape shape, uint32_t seed, float scale) {
  Tensor t(DType::kF32, std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  for (float& v : t.span<float>()) v = d(rng);
  return t;
}

struct Case {
  int bits = 4;
  int64_t N = 10, K = 70, block = 32;
  bool symmetric = true, fp16 = false, bias = false, constant = true;
};

// A MatMulNBits model of one node, its weights made by the kernels' quantizers.
struct Model {
  ir::Graph g;
  std::vector<float> w;    // N x Kp fp32 (zero-padded) before quantization
  std::vector<float> deq;  // N x Kp dequantized
  std::optional<kernels::Int4Weights> w4;
  std::optional<kernels::Int8Weights> w8;
  Tensor bias;
  std::map<std::string, Tensor> feeds;
};

Model Build(const Case& c, const Tensor& a) {
  Model m;
  const int64_t Kp = (c.K + c.block - 1) / c.block * c.block;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.1f);
  m.w.assign(static_cast<size_t>(c.N * Kp), 0.0f);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t k = 0; k < c.K; ++k) m.w[n * Kp + k] = nd(rng);
  m.deq.resize(m.w.size());
  MatMulNBitsWeights nb;
  if (c.bits == 4) {
    m.w4 = kernels::QuantizeInt4Weights(m.w.data(), c.N, Kp, c.block, c.symmetric, c.fp16);
    kernels::DequantizeInt4Weights(*m.w4, m.deq.data());
    nb = kernels::ToMatMulNBits(*m.w4, c.K);
  } else {
    m.w8 = kernels::QuantizeInt8Weights(m.w.data(), c.N, Kp, c.block, c.symmetric, c.fp16);
    kernels::DequantizeInt8Weights(*m.w8, m.deq.data());
    nb = kernels::ToMatMulNBits(*m.w8, c.K);
  }
  ir::Graph& g = m.g;
  g.opset_imports[""] = 17;
  g.opset_imports["com.microsoft"] = 1;
  auto add = [&](const std::string& name, const Tensor& t) {
    if (c.constant) {
      g.initializers[name] = t;
    } else {
      g.inputs.push_back(ir::ValueInfo{name, t.dtype()});
      m.feeds[name] = t;
    }
  };
  g.inputs.push_back(ir::ValueInfo{"A", DType::kF32});
  m.feeds["A"] = a;
  Tensor b(DType::kU8, {c.N, nb.blocks(), c.block * c.bits / 8});
  std::memcpy(b.raw(), nb.b.data(), nb.b.size());
  add("B", b);
  Tensor s(c.fp16 ? DType::kF16 : DType::kF32, {c.N * nb.blocks()});
  if (c.fp16)
    std::memcpy(s.raw(), nb.scales_fp16.data(), nb.scales_fp16.size() * 2);
  else
    std::memcpy(s.raw(), nb.scales.data(), nb.scales.size() * 4);
  add("S", s);
  ir::Node node;
  node.name = "mm";
  node.op_type = "MatMulNBits";
  node.domain = "com.microsoft";
  node.inputs = {"A", "B", "S"};
  node.outputs = {"Y"};
  node.attrs["K"] = c.K;
  node.attrs["N"] = c.N;
  node.attrs["bits"] = int64_t{c.bits};
  node.attrs["block_size"] = c.block;
  if (!nb.zero_points.empty()) {
    Tensor z(DType::kU8, {static_cast<int64_t>(nb.zero_points.size())});
    std::memcpy(z.raw(), nb.zero_points.data(), nb.zero_points.size());
    add("Z", z);
    node.inputs.push_back("Z");
  }
  if (c.bias) {
    m.bias = RandomT({c.N}, 9, 0.5f);
    add("bias", m.bias);
    if (node.inputs.size() == 3) node.inputs.push_back("");
    node.inputs.push_back("");
    node.inputs.push_back("bias");
  }
  g.nodes = {node};
  g.outputs = {ir::ValueInfo{"Y"}};
  return m;
}

void CheckCase(const Case& c) {
  SCOPED_TRACE(testing::Message() << "bits=" << c.bits << " N=" << c.N << " K=" << c.K << " block="
                                  << c.block << " sym=" << c.symmetric << " fp16=" << c.fp16
                                  << " bias=" << c.bias << " constant=" << c.constant);
  const Tensor a = RandomT({2, 3, c.K}, 3, 1.0f);  // batch dims fold into M = 6
  Model m = Build(c, a);
  Session s(m.g);
  const Tensor y = s.Run(m.feeds).at("Y");
  ASSERT_EQ(y.shape(), (Shape{2, 3, c.N}));
  const int64_t M = 6, Kp = (c.K + c.block - 1) / c.block * c.block;
  std::vector<float> xp(static_cast<size_t>(M * Kp), 0.0f);
  for (int64_t r = 0; r < M; ++r)
    std::memcpy(xp.data() + r * Kp, a.data<float>() + r * c.K, c.K * sizeof(float));
  std::vector<float> expect(static_cast<size_t>(M * c.N));
  const float* b = c.bias ? m.bias.data<float>() : nullptr;
  if (c.bits == 4)
    kernels::Int4Gemm(M, xp.data(), Kp, *m.w4, b, expect.data(), c.N, kernels::Isa::kScalar);
  else
    kernels::Int8WeightGemm(M, xp.data(), Kp, *m.w8, b, expect.data(), c.N, kernels::Isa::kScalar);
  EXPECT_EQ(0, std::memcmp(expect.data(), y.data<float>(), expect.size() * 4))
      << "op differs from the reference kernel";
  // Close to fp32 A x dequantized(B)^T: the only extra error is the activation rounding, at
  // most half a step (max|x| / 127 for int4's int8 activations, / 32767 for int8's int16) per
  // element times |w'|, plus float rounding.
  const float qmax = c.bits == 4 ? 127.0f : 32767.0f;
  for (int64_t r = 0; r < M; ++r) {
    float xmax = 0;
    for (int64_t k = 0; k < c.K; ++k)
      xmax = std::max(xmax, std::fabs(a.data<float>()[r * c.K + k]));
    for (int64_t n = 0; n < c.N; ++n) {
      double e = b ? b[n] : 0, wabs = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        e += double(a.data<float>()[r * c.K + k]) * m.deq[n * Kp + k];
        wabs += std::fabs(m.deq[n * Kp + k]);
      }
      EXPECT_NEAR(y.data<float>()[r * c.N + n], e,
                  0.5 * xmax / qmax * wabs + 1e-5 * std::fabs(e) + 1e-5);
    }
  }
}

TEST(MatMulNBits, EqualsKernelsAndIsCloseToDequantizedMatMul) {
  for (int bits : {4, 8})
    for (int64_t block : {32, 64, 128})
      for (int v = 0; v < 4; ++v) {
        Case c;
        c.bits = bits;
        c.block = block;
        c.K = v % 2 ? block * 2 : block * 2 + 5;  // whole blocks, or a padded last block
        c.N = 5 + v * 3;
        c.symmetric = v < 2;
        c.fp16 = v % 2;
        c.bias = v >= 1;
        c.constant = v != 3;
        CheckCase(c);
      }
}

std::string RunError(ir::Graph g, const std::map<std::string, Tensor>& feeds) {
  try {
    Session s(std::move(g));
    s.Run(feeds);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(MatMulNBits, RejectsBadNodes) {
  Case c;
  const Tensor a = RandomT({2, c.K}, 3, 1.0f);
  Model m = Build(c, a);
  auto with = [&](auto edit) {
    ir::Graph g = m.g;
    edit(g);
    return RunError(g, m.feeds);
  };
  EXPECT_NE(with([](ir::Graph& g) { g.nodes[0].attrs["bits"] = int64_t{3}; }).find("'mm'"),
            std::string::npos);
  EXPECT_NE(
      with([](ir::Graph& g) { g.nodes[0].attrs["block_size"] = int64_t{16}; }).find("block_size"),
      std::string::npos);
  EXPECT_NE(with([](ir::Graph& g) { g.nodes[0].attrs["N"] = int64_t{11}; }).find("input B"),
            std::string::npos);
  EXPECT_NE(with([](ir::Graph& g) {
              g.nodes[0].inputs = {"A", "B", "S", "", "B"};
            }).find("g_idx"),
            std::string::npos);
  std::map<std::string, Tensor> bad = m.feeds;
  bad["A"] = RandomT({2, c.K + 1}, 3, 1.0f);
  EXPECT_NE(RunError(m.g, bad).find("last dimension"), std::string::npos);
  bad["A"] = RandomT({2, c.K}, 3, 1.0f);
  bad["A"].data<float>()[3] = NAN;
  EXPECT_NE(RunError(m.g, bad).find("'mm'"), std::string::npos);
}

}  // namespace
}  // namespace qforge::runtime
