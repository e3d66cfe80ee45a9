// Dynamic-quantization runtime ops: qforge::DynamicQLinear, one dynamically quantized Linear
// layer (activations quantized at run time, int8 weights prepacked once, fp32 out), and
// qforge::DynamicQMatMul, a MatMul of two activations both quantized at run time.
//
//   qforge::DynamicQLinear(X fp32 [..., K], Wq int8 [K, N], ws fp32 [N] or [1]
//                          [, bias fp32 [N]]) -> Y fp32 [..., N]
//   attribute per_row (int, default 0):
//     0: X is quantized as ONNX DynamicQuantizeLinear does (one uint8 scale and zero point for
//        the whole tensor, float formulas below), so the op equals the standard graph
//          DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(., Mul(xs, ws)) [-> Add bias]
//        bit for bit (FuseDynamicQLinear replaces that graph by this op; tested).
//     1: every row of X (every token) gets its own uint8 parameters
//        (kernels::DynamicQuantizeRows / numerics::ChooseQuantParams). Not standard ONNX.
//   Y[m,n] = float(acc[m,n]) * (xs[m] * ws[n]) [+ bias[n]]   (kernels::DynamicQGemm)
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "qforge/kernels/dynq.h"
#include "qforge/kernels/elementwise.h"
#include "qforge/kernels/qgemm.h"
#include "qforge/kernels/small_gemm.h"
#include "qforge/numerics/dtypes.h"
#include "qforge/numerics/quant_params.h"
#include "runtime/ops/lambda_op.h"

namespace qforge::runtime {

namespace {

using kernels::PackedQGemmB;
using numerics::QuantParams;

// Largest K for which sums of K products (a - za)(b - zb) of uint8 codes, |.| <= 255^2, stay
// below 2^24 and so are exact in fp32: 258 * 65025 < 2^24 = 16777216.
constexpr int64_t kExactF32K = 258;

// ONNX DynamicQuantizeLinear's parameters, computed exactly as the DynamicQuantizeLinear op
// (qlinear_ops.cc) does, so the fused and unfused graphs agree bit for bit:
//   lo = min(0, min x), hi = max(0, max x), s = (hi - lo) / 255 (float),
//   z = clamp(round_half_even(0 - lo / s), 0, 255); s == 0 (all zeros): z = 0, every code 0.
// NaN is skipped by min / max (and quantizes to z); an infinity throws.
QuantParams TensorParams(const ir::Node& n, const float* x, int64_t count) {
  float lo = 0.0f, hi = 0.0f;
  bool inf = false;
  float vlo, vhi;  // all finite (the usual case): the vectorized min / max, exact
  const bool finite = count > 0 && kernels::FiniteMinMax(x, count, &vlo, &vhi);
  if (finite) {
    lo = std::min(lo, vlo);
    hi = std::max(hi, vhi);
  }
  for (int64_t i = 0; !finite && i < count; ++i) {
    inf |= std::isinf(x[i]);
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (inf) FailNode(n, "input X contains an infinity");
  const float scale = (hi - lo) / 255.0f;
  if (!(scale > 0)) return {scale, 0};
  const int32_t zp =
      static_cast<int32_t>(std::clamp(numerics::RoundHalfEven(0.0f - lo / scale), 0.0f, 255.0f));
  return {scale, zp};
}

class DynamicQLinearOp final : public OpKernel {
 public:
  explicit DynamicQLinearOp(const OpInit& init) : node_(init.node) {
    const ir::Node& n = node_;
    CheckArity(n, 3, 4, 1, 1);
    const int64_t per_row = n.attr_int("per_row", 0);
    if (per_row != 0 && per_row != 1)
      FailNode(n, "attribute per_row must be 0 or 1, got " + std::to_string(per_row));
    per_row_ = per_row == 1;
    if (init.constant(1).defined()) packed_ = Pack(init.constant(1));
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> in) override {
    const ir::Node& n = node_;
    const std::string desc = n.Describe();
    const Tensor& x = Arg(in, 0, desc);
    if (x.dtype() != DType::kF32)
      FailNode(n, "input X must be float32, got " + std::string(DTypeName(x.dtype())));
    if (x.rank() < 1) FailNode(n, "input X must have rank >= 1");
    std::shared_ptr<const PackedQGemmB> pb = packed_;
    if (!pb) pb = Pack(Arg(in, 1, desc));
    const int64_t K = pb->K(), N = pb->N();
    if (x.dim(-1) != K)
      FailNode(n, "X " + ShapeToString(x.shape()) + " and W [" + std::to_string(K) + ", " +
                      std::to_string(N) + "] do not agree on K");
    const Tensor& s = Arg(in, 2, desc);
    if (s.dtype() != DType::kF32 || (s.numel() != N && s.numel() != 1) || s.rank() > 1)
      FailNode(n, "ws must be float32 [" + std::to_string(N) + "] or a scalar, got " +
                      ShapeToString(s.shape()));
    std::vector<float> ws(static_cast<size_t>(N));
    for (int64_t j = 0; j < N; ++j) ws[j] = s.data<float>()[s.numel() == 1 ? 0 : j];
    const float* bias = nullptr;
    if (in.size() > 3 && in[3].defined()) {
      const Tensor& b = in[3];
      if (b.dtype() != DType::kF32 || b.numel() != N || b.rank() != 1)
        FailNode(
            n, "bias must be float32 [" + std::to_string(N) + "], got " + ShapeToString(b.shape()));
      bias = b.data<float>();
    }
    Shape y_shape = x.shape();
    y_shape.back() = N;
    Tensor y = Tensor::Uninitialized(DType::kF32, y_shape);
    const int64_t M = K > 0 ? x.numel() / K : y.numel() / std::max<int64_t>(N, 1);
    if (M == 0 || N == 0) return {y};
    try {
      if (per_row_) {
        kernels::DynamicQuantizedLinear(M, x.data<float>(), K, *pb, ws.data(), bias,
                                        y.data<float>(), N, ctx.threads);
        return {y};
      }
      const QuantParams p = TensorParams(n, x.data<float>(), x.numel());
      // Grow-only per-thread scratch: no allocation (and no page faults) per call once warm.
      thread_local std::vector<uint8_t> q;
      thread_local std::vector<float> scales;
      q.resize(static_cast<size_t>(M * K));
      scales.resize(static_cast<size_t>(N));
      if (p.scale > 0)
        kernels::QuantizeWithParams(x.data<float>(), M * K, p, 0, 255, /*is_signed=*/false,
                                    q.data());
      else
        std::fill(q.begin(), q.end(), uint8_t{0});
      // One zero point for all rows: QGemm's float output stage computes DynamicQGemm's
      // float(acc) * (xs * ws[n]) [+ bias[n]] (same exact acc, same two roundings) in the
      // kernel's epilogue, without a second pass over Y.
      for (int64_t j = 0; j < N; ++j) scales[j] = p.scale * ws[j];
      kernels::QGemmA qa;
      qa.data = q.data();
      qa.ld = K;
      qa.is_signed = false;
      qa.zero_point = p.zero_point;
      kernels::QGemm(M, qa, *pb, kernels::QGemmOutput::Float(nullptr, scales.data(), N, bias),
                     y.data<float>(), N, ctx.threads);
    } catch (const Error& e) {
      FailNode(n, e.what());
    }
    return {y};
  }

 private:
  std::shared_ptr<const PackedQGemmB> Pack(const Tensor& w) const {
    const ir::Node& n = node_;
    if (w.dtype() != DType::kI8 || w.rank() != 2)
      FailNode(n, "W must be int8 [K, N], got " + std::string(DTypeName(w.dtype())) + " " +
                      ShapeToString(w.shape()));
    try {
      return std::make_shared<const PackedQGemmB>(
          PackedQGemmB::Pack(w.dim(0), w.dim(1), w.data<int8_t>(), w.dim(1), /*trans=*/false));
    } catch (const Error& e) {
      FailNode(n, e.what());
    }
  }

  ir::Node node_;
  bool per_row_ = false;
  std::shared_ptr<const PackedQGemmB> packed_;
};

// qforge::DynamicQMatMul(A fp32 [..., M, K], B fp32 [..., K, N]) -> Y fp32 [..., M, N], numpy
// MatMul broadcasting of the batch dims (rank-1 operands as MatMul). Equals the standard graph
//   aq, as, az = DynamicQuantizeLinear(A);  bq, bs, bz = DynamicQuantizeLinear(B)
//   Y = Mul(Cast(MatMulInteger(aq, bq, az, bz), float), Mul(as, bs))
// bit for bit: both sides quantized per tensor as DynamicQuantizeLinear, exact int32 sums,
// Y = float(acc) * (as * bs). Made by FuseDynamicQLinear (attention Q K^T and attention x V).
// Small slices take the fp32-exact fast path when the ISA has AVX2; the integer loops below are
// its reference (run them with the scalar ISA; tested bit for bit).
std::vector<Tensor> RunDynamicQMatMul(const ir::Node& n, int threads, std::span<const Tensor> in) {
  const std::string desc = n.Describe();
  const Tensor& a = Arg(in, 0, desc);
  const Tensor& b = Arg(in, 1, desc);
  if (a.dtype() != DType::kF32 || b.dtype() != DType::kF32) FailNode(n, "inputs must be float32");
  if (a.rank() < 1 || b.rank() < 1) FailNode(n, "inputs must have rank >= 1");
  Shape as = a.shape(), bs = b.shape();
  const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
  if (a_vec) as.insert(as.begin(), 1);
  if (b_vec) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  if (bs[bs.size() - 2] != K)
    FailNode(n, "A " + ShapeToString(a.shape()) + " and B " + ShapeToString(b.shape()) +
                    " do not agree on K");
  if (K > kernels::kMaxQGemmK)
    FailNode(n, "K = " + std::to_string(K) + " exceeds the int8 GEMM limit " +
                    std::to_string(kernels::kMaxQGemmK));
  const Shape a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
  Shape batch;
  try {
    batch = kernels::BroadcastShape(a_batch, b_batch);
  } catch (const Error& e) {
    FailNode(n, e.what());
  }
  Shape y_shape = batch;
  if (!a_vec) y_shape.push_back(M);
  if (!b_vec) y_shape.push_back(N);
  Tensor y = Tensor::Uninitialized(DType::kF32, y_shape);
  if (y.numel() == 0) return {y};

  const QuantParams pa = TensorParams(n, a.data<float>(), a.numel());
  const QuantParams pb = TensorParams(n, b.data<float>(), b.numel());
  // Output batch index -> A's and B's batch index (broadcast dims of size 1 contribute 0).
  const auto index_of = [&](int64_t flat, const Shape& s) {
    int64_t idx = 0, stride = 1;
    for (size_t d = 0; d < batch.size(); ++d) {
      const size_t bd = batch.size() - 1 - d;
      const int64_t coord = flat % batch[bd];
      flat /= batch[bd];
      if (d < s.size()) {
        const int64_t sd = s[s.size() - 1 - d];
        idx += (sd == 1 ? 0 : coord) * stride;
        stride *= sd;
      }
    }
    return idx;
  };
  int64_t total = 1;
  for (int64_t d : batch) total *= d;
  const float scale = pa.scale * pb.scale;
  if (kernels::SmallMatMulApplies(M, N, K) && K <= kExactF32K) {
    // Fast path (attention over a few dozen tokens): both sides quantized and centered,
    // (q - z) as floats, then the fp32 small-GEMM kernel per slice. Every product and partial
    // sum is an integer below 2^24 (K <= kExactF32K), so the fp32 sums ARE the int32 sums and
    // Y = acc * (as * bs) is the reference's value bit for bit (tested against it).
    thread_local std::vector<float> ca, cb;
    ca.resize(static_cast<size_t>(a.numel()));
    cb.resize(static_cast<size_t>(b.numel()));
    const auto centered = [](const Tensor& t, QuantParams p, std::vector<float>& out) {
      if (p.scale > 0)
        kernels::QuantizeCentered(t.data<float>(), t.numel(), p, 0, 255, out.data());
      else
        std::fill(out.begin(), out.end(), 0.0f);  // all zero: every code is z = 0
    };
    centered(a, pa, ca);
    centered(b, pb, cb);
    float* yd = y.data<float>();
    for (int64_t t = 0; t < total; ++t)
      kernels::SmallMatMulF32(M, N, K, ca.data() + index_of(t, a_batch) * M * K, K,
                              cb.data() + index_of(t, b_batch) * K * N, N, yd + t * M * N, N);
    for (int64_t i = 0, e = y.numel(); i < e; ++i) yd[i] = yd[i] * scale;
    return {y};
  }
  std::vector<uint8_t> qa(static_cast<size_t>(a.numel()), 0);
  if (pa.scale > 0) numerics::QuantizeRun(a.data<float>(), a.numel(), pa, 0, 255, qa.data());
  std::vector<uint8_t> ub(static_cast<size_t>(b.numel()), 0);
  if (pb.scale > 0) numerics::QuantizeRun(b.data<float>(), b.numel(), pb, 0, 255, ub.data());
  // The integer path: the reference for the fast path above, and the path for larger slices.
  // Small slices: packing B per slice would cost more than the product, so a direct loop
  // computes the same exact int32 sums and the same float epilogue float(acc) * (as * bs) as
  // DynamicQGemm (one rounding each): bit-identical.
  const bool direct = M * N * K <= 64 * 64 * 64;
  std::vector<int16_t> bdiff;  // b - zb in [-255, 255]
  std::vector<int8_t> qb;      // B's codes as int8 (XOR 0x80) for the packed path
  const std::vector<int32_t> zb = {pb.zero_point - 128};
  if (direct) {
    bdiff.resize(ub.size());
    for (size_t i = 0; i < ub.size(); ++i)
      bdiff[i] = static_cast<int16_t>(int32_t{ub[i]} - pb.zero_point);
  } else {
    // B's uint8 codes as int8 with zero point zb - 128: every (b - zb) is unchanged.
    qb.resize(ub.size());
    for (size_t i = 0; i < ub.size(); ++i) qb[i] = static_cast<int8_t>(ub[i] ^ 0x80);
  }
  const std::vector<QuantParams> rows(direct ? 0 : static_cast<size_t>(M), pa);
  const std::vector<float> cols(direct ? 0 : static_cast<size_t>(N), pb.scale);
  std::vector<int32_t> acc(static_cast<size_t>(N));
  try {
    for (int64_t t = 0; t < total; ++t) {
      const uint8_t* at = qa.data() + index_of(t, a_batch) * M * K;
      float* yt = y.data<float>() + t * M * N;
      if (direct) {
        const int16_t* bt = bdiff.data() + index_of(t, b_batch) * K * N;
        for (int64_t m = 0; m < M; ++m) {
          std::fill(acc.begin(), acc.end(), 0);
          for (int64_t k = 0; k < K; ++k) {
            const int32_t av = int32_t{at[m * K + k]} - pa.zero_point;
            const int16_t* brow = bt + k * N;
            for (int64_t j = 0; j < N; ++j) acc[j] += av * brow[j];
          }
          for (int64_t j = 0; j < N; ++j) yt[m * N + j] = static_cast<float>(acc[j]) * scale;
        }
        continue;
      }
      const PackedQGemmB packed = PackedQGemmB::Pack(K, N, qb.data() + index_of(t, b_batch) * K * N,
                                                     N, /*trans=*/false, zb);
      kernels::DynamicQGemm(M, at, K, /*a_signed=*/false, rows.data(), packed, cols.data(), nullptr,
                            yt, N, threads);
    }
  } catch (const Error& e) {
    FailNode(n, e.what());
  }
  return {y};
}

}  // namespace

std::unique_ptr<OpKernel> MakeDynamicQLinear(const OpInit& init) {
  return std::make_unique<DynamicQLinearOp>(init);
}

std::unique_ptr<OpKernel> MakeDynamicQMatMul(const OpInit& init) {
  const ir::Node n = init.node;
  CheckArity(n, 2, 2, 1, 1);
  return MakeLambdaOp([n](const OpContext& ctx, std::span<const Tensor> in) {
    return RunDynamicQMatMul(n, ctx.threads, in);
  });
}

}  // namespace qforge::runtime
