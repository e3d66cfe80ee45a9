// Pooling kernels over [N, C, D1..Dn]: MaxPool, AveragePool, GlobalAveragePool (reference + fast).
//
// The window geometry (output size, pads) is resolved by the caller (ONNX auto_pad / ceil_mode
// rules live in the runtime op); the kernels only walk it. Output position o along spatial axis
// i reads the input taps  o * strides[i] - pads_begin[i] + k * dilations[i],  k < kernel[i];
// taps outside [0, in[i]) are padding: ignored by MaxPool; by AveragePool counted in the divisor
// only when count_include_pad is set and the tap lies inside the padded extent
// [-pads_begin[i], in[i] + pads_end[i]) (taps past that extent, which ceil_mode can create, never
// count — PyTorch's rule).
#pragma once

#include <cstdint>
#include <vector>

namespace qforge::kernels {

struct PoolGeometry {
  int64_t batch = 1;     // N
  int64_t channels = 1;  // C
  // One entry per spatial dimension (n = in.size(); all vectors have the same length).
  std::vector<int64_t> in;   // D1..Dn
  std::vector<int64_t> out;  // O1..On
  std::vector<int64_t> kernel;
  std::vector<int64_t> strides;
  std::vector<int64_t> dilations;
  std::vector<int64_t> pads_begin;
  std::vector<int64_t> pads_end;
};

// Throws qforge::Error if the vectors disagree in length or hold non-positive kernel, stride or
// dilation, or negative pads / sizes.
void CheckPoolGeometry(const PoolGeometry& g);

// --- Reference kernels (plain loops over named indices; the oracle for tests) ---

// Max over each window; a window with no valid tap gives the lowest value of T and index -1.
// indices (nullable) receives, per output, the flat index of the max in X (including the N and C
// offsets): row-major over the spatial dims when storage_order == 0, column-major when 1.
// Ties keep the first tap in window order. T: float, uint8_t, int8_t.
template <typename T>
void MaxPoolRef(const PoolGeometry& g, const T* x, T* y, int64_t* indices, int storage_order);

// Mean over each window (sum of valid taps / divisor, see the file comment); divisor 0 gives 0.
void AveragePoolRef(const PoolGeometry& g, bool count_include_pad, const float* x, float* y);

// y[p] = mean of x[p * plane_size .. (p + 1) * plane_size), accumulated in double.
void GlobalAveragePoolRef(int64_t planes, int64_t plane_size, const float* x, float* y);

// --- Fast paths (OpenMP over N*C planes, vectorizable inner loops). threads: 0 = OpenMP default.
// Each output row is made in two passes: the window's input rows are combined into a padded row
// buffer (contiguous), then the kernel_w taps of that buffer are combined per output column.

// 2-D only (g.in.size() == 2), fp32, no indices. Same result as MaxPoolRef for NaN-free input
// (max is exact; which NaN propagates may differ).
void MaxPool2dF32(const PoolGeometry& g, const float* x, float* y, int threads);
// The same for 8-bit tensors (uint8_t, int8_t): max is exact, so equal to MaxPoolRef<T>.
template <typename T>
void MaxPool2d(const PoolGeometry& g, const T* x, T* y, int threads);
// 2-D only. Sums in a different order than the reference (float), so equal up to rounding.
void AveragePool2dF32(const PoolGeometry& g, bool count_include_pad, const float* x, float* y,
                      int threads);
// Float accumulation in 8 interleaved partial sums; equal to the reference up to rounding.
void GlobalAveragePoolF32(int64_t planes, int64_t plane_size, const float* x, float* y,
                          int threads);

}  // namespace qforge::kernels
