// Weight-only low-bit quantization: the constant weights of MatMul / Gemm become 8- or 4-bit
// codes per group of k (ONNX Runtime's com.microsoft MatMulNBits), activations stay fp32.
//
// The scheme (docs/quantization.md, weight-only section): W[n,k] ~= s[g,n] * (c[n,k] - z[g,n])
// per group g of `group_size` consecutive k; symmetric (z = 2^(bits-1), codes in
// [-(2^(bits-1)-1), 2^(bits-1)-1] + z) or asymmetric (z per group); scales fp16 or fp32.
// Quantization uses the kernels' quantizers (kernels::QuantizeInt4Weights /
// QuantizeInt8Weights), so the file holds exactly what the runtime computes with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/ir/graph.h"
#include "qforge/numerics/error_stats.h"
#include "qforge/passes/passes.h"
#include "qforge/passes/quantize.h"

namespace qforge::passes {

struct WeightOnlyOptions {
  int bits = 4;             // 4 or 8
  int64_t group_size = 32;  // 32, 64 or 128 (K is padded to a multiple)
  bool symmetric = true;
  bool fp16_scales = true;  // stored as an fp16 initializer + Cast to fp32 (ONNX Runtime wants
                            // scales of A's type); false: fp32 scales directly
  std::vector<std::string> exclude;  // node names kept in fp32 (after the inference pipeline)
};

// One quantized weight, for the report.
struct WeightOnlyLayer {
  std::string node;    // the MatMul / Gemm (its name is kept by the MatMulNBits node)
  std::string tensor;  // the fp32 weight initializer's name
  int64_t N = 0, K = 0, padded_K = 0, groups = 0;
  int64_t fp32_bytes = 0;        // 4 N K
  int64_t quantized_bytes = 0;   // codes + scales + zero points as stored
  numerics::ErrorSummary error;  // dequantized weight vs fp32 (the N x K real weights)
};

struct WeightOnlyResult {
  ir::Graph graph;
  std::vector<PassStat> pipeline;   // the inference pipeline run first
  std::vector<NodeDecision> nodes;  // every MatMul / Gemm of the cleaned graph, in order
  std::vector<WeightOnlyLayer> layers;
  std::vector<std::string> notes;
};

// Quantizes a copy of `graph`: runs RunInferencePipeline, then replaces every MatMul whose B is
// a constant 2-D fp32 matrix and every Gemm (transA = 0) with a constant B and a constant or
// absent C of N (or 1) elements by a com.microsoft MatMulNBits node with the same name and
// output (Gemm's alpha is folded into the weights, beta * C becomes the bias input).
// Everything else is unchanged; each MatMul / Gemm left in fp32 gets a reason.
// Throws Error for bad options (bits, group size, an unknown exclude name).
WeightOnlyResult QuantizeWeightOnly(const ir::Graph& graph, const WeightOnlyOptions& options = {});

}  // namespace qforge::passes
