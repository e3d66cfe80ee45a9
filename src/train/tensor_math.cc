// Small fp32 tensor helpers shared by the backward functions.
#include "train/tensor_math.h"

#include <algorithm>

#include "qforge/kernels/gemm.h"

namespace qforge::train {

Tensor AddTensors(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape())
    throw Error("AddTensors: shapes " + ShapeToString(a.shape()) + " and " +
                ShapeToString(b.shape()) + " differ");
  Tensor c = Tensor::Uninitialized(DType::kF32, a.shape());
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* pc = c.data<float>();
  for (int64_t i = 0; i < a.numel(); ++i) pc[i] = pa[i] + pb[i];
  return c;
}

Tensor SumToShape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const Shape& gs = g.shape();
  if (shape.size() > gs.size())
    throw Error("SumToShape: cannot reduce " + ShapeToString(gs) + " to " + ShapeToString(shape));
  // Target shape aligned to g's rank (leading 1s).
  Shape t(gs.size() - shape.size(), 1);
  t.insert(t.end(), shape.begin(), shape.end());
  for (size_t i = 0; i < gs.size(); ++i)
    if (t[i] != gs[i] && t[i] != 1)
      throw Error("SumToShape: cannot reduce " + ShapeToString(gs) + " to " + ShapeToString(shape));
  const std::vector<int64_t> tstr = RowMajorStrides(t);
  std::vector<double> acc(static_cast<size_t>(NumElements(shape)), 0.0);
  const float* pg = g.data<float>();
  const size_t rank = gs.size();
  std::vector<int64_t> idx(rank, 0);
  // The innermost dim is walked in a tight loop; outer indices by odometer.
  const int64_t inner = rank ? gs[rank - 1] : 1;
  const bool inner_bcast = rank && t[rank - 1] == 1;
  const int64_t outer = g.numel() / std::max<int64_t>(inner, 1);
  for (int64_t o = 0; o < outer && inner > 0; ++o) {
    int64_t base = 0;
    for (size_t d = 0; d + 1 < rank; ++d)
      if (t[d] != 1) base += idx[d] * tstr[d];
    const float* row = pg + o * inner;
    if (inner_bcast) {
      double s = 0;
      for (int64_t j = 0; j < inner; ++j) s += row[j];
      acc[base] += s;
    } else {
      for (int64_t j = 0; j < inner; ++j) acc[base + j] += row[j];
    }
    for (size_t d = rank - 1; d-- > 0;) {
      if (++idx[d] < gs[d]) break;
      idx[d] = 0;
    }
  }
  Tensor out(DType::kF32, shape);
  float* po = out.data<float>();
  for (size_t i = 0; i < acc.size(); ++i) po[i] = static_cast<float>(acc[i]);
  return out;
}

void RequireF32(const std::string& who, const Tensor& t, const char* what) {
  if (!t.defined()) throw Error(who + ": missing input " + what);
  if (t.dtype() != DType::kF32)
    throw Error(who + ": input " + what + " has type " + std::string(DTypeName(t.dtype())) +
                "; training supports float32 only");
}

Tensor GradOrZeros(std::span<const Tensor> grad_outputs, std::span<const Tensor> outputs,
                   size_t j) {
  if (j < grad_outputs.size() && grad_outputs[j].defined()) return grad_outputs[j];
  return Tensor(DType::kF32, outputs[j].shape());
}

void MatMulF32(int64_t M, int64_t N, int64_t K, const float* a, bool trans_a, const float* b,
               bool trans_b, float* c, bool accumulate, int threads) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate) std::fill_n(c, M * N, 0.0f);
    return;
  }
  kernels::GemmEpilogue ep;
  ep.beta = accumulate ? 1.0f : 0.0f;
  kernels::Sgemm(M, N, K, kernels::GemmOperand::Plain(a, trans_a ? M : K, trans_a),
                 kernels::GemmOperand::Plain(b, trans_b ? K : N, trans_b), c, N, ep, threads);
}

int64_t NormalizeAxis(const std::string& who, int64_t axis, int64_t rank) {
  const int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= std::max<int64_t>(rank, 1))
    throw Error(who + ": axis " + std::to_string(axis) + " out of range for rank " +
                std::to_string(rank));
  return a;
}

}  // namespace qforge::train
