// Graph rewrites, one pass a file under src/passes/; the pipelines are spelled out in pipeline.cc.
//
// Every pass takes a valid graph and leaves a valid graph (ir::Verify passes) that computes the
// same function up to floating-point reassociation. Each returns the number of rewrites made.
#pragma once

#include <string>
#include <vector>

#include "qforge/ir/graph.h"

namespace qforge::passes {

// Removes Identity nodes and inference-mode Dropout (without mask output in use).
int RemoveIdentity(ir::Graph& g);

// Evaluates nodes whose inputs are all constants and replaces their outputs by initializers.
// QuantizeLinear/DequantizeLinear are kept (they carry the quantized form of weights), and
// results larger than 64 MiB are not materialized.
int FoldConstants(ir::Graph& g);

// Folds an inference BatchNormalization into the Conv, ConvTranspose or Gemm that feeds it,
// when that producer has no other reader and BN's parameters are constants:
//   s = gamma / sqrt(var + eps);  W' = W * s (per output channel);  b' = (b - mean) * s + beta.
int FoldBatchNorm(ir::Graph& g);

// Fuses a Relu or Clip (constant bounds) that is the only reader of a Conv's or Gemm's output
// (or of a FusedConv / FusedGemm without activation yet) into a qforge::FusedConv / FusedGemm
// node (activation applied in the kernel's epilogue).
// The result uses qforge-domain ops: run it, do not export it.
int FuseActivation(ir::Graph& g);

// Fuses an Add of two same-shaped values into the Conv producing one of them (read only by the
// Add): qforge::FusedConv with a 4th input Z, y = conv(x) + b + Z. Needs both shapes known
// from shape inference (no broadcasting). For execution only, like FuseActivation.
int FuseResidualAdd(ir::Graph& g);

// Fuses DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul (by xs * ws) [-> Add bias], the
// standard dynamic Linear layer (passes/quantize_dynamic.h), into one qforge::DynamicQLinear
// that prepacks the int8 weight, and the dynamic MatMul of two activations into one
// qforge::DynamicQMatMul; both bit-exact with the unfused graph. For execution only.
int FuseDynamicQLinear(ir::Graph& g);

// Runs chains of integer ops (QLinearConv, QLinearAdd/Mul, QLinearConcat on channels, QLinear
// average pools) channels-last: qforge::QLinearConv / pools with channels_last = 1, one
// Transpose where a chain starts and one where an NCHW reader needs its value. Bit-exact with
// the NCHW graph. For execution only (channels_last_int8.cc).
int ChannelsLastInt8(ir::Graph& g);

// Fuses PyTorch's exported exact GELU (Div by sqrt 2, Erf, Add 1, Mul by x, Mul by 0.5) into
// one ONNX Gelu node (fuse_gelu.cc). For execution only (Gelu is opset 20).
int FuseGelu(ir::Graph& g);

// Fuses MatMul(A, constant W [K, N]) + Add(constant bias [N]) [+ exact Gelu] into one
// qforge::FusedMatMul (bias in the GEMM epilogue, GELU applied in cache). Run after FuseGelu.
// For execution only (fuse_matmul_bias.cc).
int FuseMatMulBias(ir::Graph& g);

struct PassStat {
  std::string pass;
  int rewrites = 0;
};

// The inference clean-up pipeline: RemoveIdentity, FoldConstants, FoldBatchNorm.
// When `verify` is set, ir::VerifyOrThrow runs after every pass.
std::vector<PassStat> RunInferencePipeline(ir::Graph& g, bool verify = true);

// What a Session for fp32 inference runs: the inference pipeline, then FuseDynamicQLinear,
// FuseResidualAdd, FuseActivation, ChannelsLastInt8, FuseGelu and FuseMatMulBias (the order of
// kExecutionSteps in pipeline.cc). The result may contain qforge-domain ops:
// for execution only.
std::vector<PassStat> RunExecutionPipeline(ir::Graph& g, bool verify = true);

}  // namespace qforge::passes
