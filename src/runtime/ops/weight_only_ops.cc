// Runtime op com.microsoft MatMulNBits: Y = A x dequant(B)^T [+ bias], weights 4- or 8-bit per
// block of k (ONNX Runtime's contrib-op layout, kernels::MatMulNBitsWeights), activations fp32.
//
// Inputs: A (fp32 [..., K]), B (uint8 [N][n_blocks][blob]), scales (fp32 [N * n_blocks], or
// fp16: a qforge extension; ONNX Runtime wants A's type), zero_points (optional, uint8 packed),
// g_idx (not supported), bias (optional, fp32 [N]). Attributes K, N, bits (default 4),
// block_size (32, 64 or 128 here); accuracy_level is ignored.
// Constant weights are converted once, at op creation, to the kernels' layouts (Int4Weights /
// Int8Weights, never expanded to fp32); non-constant ones are converted at every run.
// Numerics are the kernels' (dynq.h Int4Gemm: activations int8 per row; weight_only.h
// Int8WeightGemm: activations int16 per row); ONNX Runtime's results differ by that activation
// rounding (docs/quantization.md, weight-only section).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "qforge/kernels/dynq.h"
#include "qforge/kernels/gemm.h"
#include "qforge/kernels/weight_only.h"
#include "runtime/op_kernel.h"

namespace qforge::runtime {

namespace {

using kernels::Int4Weights;
using kernels::Int8Weights;
using kernels::MatMulNBitsWeights;

struct Packed {
  std::optional<Int4Weights> w4;
  std::optional<Int8Weights> w8;
};

class MatMulNBitsOp final : public OpKernel {
 public:
  explicit MatMulNBitsOp(const OpInit& init) : node_(init.node) {
    const ir::Node& n = node_;
    K_ = n.attr_int("K");
    N_ = n.attr_int("N");
    bits_ = n.attr_int("bits", 4);
    block_ = n.attr_int("block_size");
    if (bits_ != 4 && bits_ != 8)
      throw Error(n.Describe() + ": bits=" + std::to_string(bits_) + " is not supported (4 or 8)");
    if (block_ != 32 && block_ != 64 && block_ != 128)
      throw Error(n.Describe() + ": block_size=" + std::to_string(block_) +
                  " is not supported (32, 64 or 128)");
    if (K_ <= 0 || N_ <= 0)
      throw Error(n.Describe() + ": K and N must be positive, got K=" + std::to_string(K_) +
                  " N=" + std::to_string(N_));
    if (n.num_inputs() < 3)
      throw Error(n.Describe() + ": needs inputs A, B and scales, got " +
                  std::to_string(n.num_inputs()));
    if (n.has_input(4)) throw Error(n.Describe() + ": input g_idx is not supported");
    const bool has_zp = n.has_input(3);
    if (init.constant(1).defined() && init.constant(2).defined() &&
        (!has_zp || init.constant(3).defined()))
      packed_ = Pack(init.constant(1), init.constant(2), has_zp ? init.constant(3) : Tensor());
    if (n.has_input(5) && init.constant(5).defined()) bias_ = CheckBias(init.constant(5));
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> inputs) override {
    const Tensor& a = inputs[0];
    if (!a.defined()) throw Error(node_.Describe() + ": missing input A");
    if (a.dtype() != DType::kF32)
      throw Error(node_.Describe() + ": input A has type " + std::string(DTypeName(a.dtype())) +
                  "; only float32 is supported");
    if (a.rank() < 1 || a.shape().back() != K_)
      throw Error(node_.Describe() + ": input A has shape " + ShapeToString(a.shape()) +
                  ", its last dimension must be K=" + std::to_string(K_));
    std::optional<Packed> local;
    if (!packed_) local = Pack(inputs[1], inputs[2], node_.has_input(3) ? inputs[3] : Tensor());
    const Packed& p = packed_ ? *packed_ : *local;
    Tensor bias = bias_;
    if (!bias.defined() && node_.has_input(5)) bias = CheckBias(inputs[5]);

    Shape out_shape = a.shape();
    out_shape.back() = N_;
    Tensor y = Tensor::Uninitialized(DType::kF32, out_shape);
    const int64_t M = a.numel() / K_;
    if (M == 0) return {y};
    const int64_t Kp = p.w4 ? p.w4->K : p.w8->K;  // K padded to whole blocks
    // A padded with zero columns when K is not a multiple of the block size.
    const float* x = a.data<float>();
    std::vector<float> xpad;
    if (Kp != K_) {
      xpad.assign(static_cast<size_t>(M * Kp), 0.0f);
      for (int64_t m = 0; m < M; ++m)
        std::memcpy(xpad.data() + m * Kp, x + m * K_, static_cast<size_t>(K_) * sizeof(float));
      x = xpad.data();
    }
    const float* b = bias.defined() ? bias.data<float>() : nullptr;
    float* out = y.data<float>();
    // Rows split across threads (each call quantizes its rows itself); small M runs on one.
    const int64_t rows_per_chunk = 16;
    const int64_t chunks = (M + rows_per_chunk - 1) / rows_per_chunk;
    const int nt =
        static_cast<int>(std::min<int64_t>(kernels::ResolveThreads(ctx.threads), chunks));
    std::string error;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t c = 0; c < chunks; ++c) {
      const int64_t m0 = c * rows_per_chunk, mc = std::min(rows_per_chunk, M - m0);
      try {
        if (p.w4)
          kernels::Int4Gemm(mc, x + m0 * Kp, Kp, *p.w4, b, out + m0 * N_, N_);
        else
          kernels::Int8WeightGemm(mc, x + m0 * Kp, Kp, *p.w8, b, out + m0 * N_, N_);
      } catch (const Error& e) {
#pragma omp critical
        if (error.empty()) error = e.what();
      }
    }
    if (!error.empty()) throw Error(node_.Describe() + ": " + error);
    return {y};
  }

 private:
  Packed Pack(const Tensor& b, const Tensor& scales, const Tensor& zp) const {
    const std::string what = node_.Describe();
    if (!b.defined() || !scales.defined()) throw Error(what + ": missing input B or scales");
    if (b.dtype() != DType::kU8)
      throw Error(what + ": input B has type " + std::string(DTypeName(b.dtype())) +
                  ", expected uint8");
    MatMulNBitsWeights m;
    m.N = N_;
    m.K = K_;
    m.bits = bits_;
    m.block_size = block_;
    const int64_t nb = m.blocks();
    if (b.numel() != N_ * nb * block_ * bits_ / 8)
      throw Error(what + ": input B has shape " + ShapeToString(b.shape()) + ", expected [" +
                  std::to_string(N_) + ", " + std::to_string(nb) + ", " +
                  std::to_string(block_ * bits_ / 8) + "]");
    m.b.assign(b.data<uint8_t>(), b.data<uint8_t>() + b.numel());
    if (scales.dtype() == DType::kF32)
      m.scales.assign(scales.data<float>(), scales.data<float>() + scales.numel());
    else if (scales.dtype() == DType::kF16) {
      const auto* h = static_cast<const uint16_t*>(scales.raw());  // IEEE half bits
      m.scales_fp16.assign(h, h + scales.numel());
    } else
      throw Error(what + ": scales have type " + std::string(DTypeName(scales.dtype())) +
                  ", expected float32 (or float16)");
    if (zp.defined()) {
      if (zp.dtype() != DType::kU8)
        throw Error(what + ": zero_points of type " + std::string(DTypeName(zp.dtype())) +
                    " are not supported (packed uint8 only)");
      m.zero_points.assign(zp.data<uint8_t>(), zp.data<uint8_t>() + zp.numel());
    }
    Packed p;
    if (bits_ == 4) {
      p.w4 = kernels::Int4FromMatMulNBits(m, what);
      kernels::PrepackInt4Weights(*p.w4);  // the VNNI layout, where the CPU has it
    } else
      p.w8 = kernels::Int8FromMatMulNBits(m, what);
    return p;
  }

  Tensor CheckBias(const Tensor& t) const {
    if (t.dtype() != DType::kF32 || t.numel() != N_)
      throw Error(node_.Describe() + ": bias must be float32 with N=" + std::to_string(N_) +
                  " elements, got " + std::string(DTypeName(t.dtype())) + " " +
                  ShapeToString(t.shape()));
    return t;
  }

  ir::Node node_;
  int64_t K_ = 0, N_ = 0, bits_ = 4, block_ = 32;
  std::optional<Packed> packed_;
  Tensor bias_;
};

}  // namespace

std::unique_ptr<OpKernel> MakeMatMulNBits(const OpInit& init) {
  return std::make_unique<MatMulNBitsOp>(init);
}

}  // namespace qforge::runtime
