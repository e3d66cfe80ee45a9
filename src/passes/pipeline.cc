// The pass pipelines, spelled out in one place.
#include <span>

#include "qforge/passes/passes.h"

namespace qforge::passes {

namespace {

struct Step {
  const char* name;
  int (*run)(ir::Graph&);
};

std::vector<PassStat> RunSteps(ir::Graph& g, std::span<const Step> steps, bool verify) {
  std::vector<PassStat> stats;
  for (const Step& s : steps) {
    stats.push_back({s.name, s.run(g)});
    if (verify) ir::VerifyOrThrow(g);
  }
  return stats;
}

// Graph clean-up that keeps the graph standard ONNX (exportable, quantizable).
constexpr Step kInferenceSteps[] = {
    {"remove-identity", RemoveIdentity},
    {"fold-constants", FoldConstants},
    {"fold-batchnorm", FoldBatchNorm},
};

// Rewrites into qforge's fused execution ops.
constexpr Step kExecutionSteps[] = {
    {"fuse-dynamic-qlinear", FuseDynamicQLinear},
    {"fuse-residual-add", FuseResidualAdd},
    {"fuse-activation", FuseActivation},
    {"channels-last-int8", ChannelsLastInt8},
    {"fuse-gelu", FuseGelu},
    {"fuse-matmul-bias", FuseMatMulBias},
};

}  // namespace

std::vector<PassStat> RunInferencePipeline(ir::Graph& g, bool verify) {
  return RunSteps(g, kInferenceSteps, verify);
}

std::vector<PassStat> RunExecutionPipeline(ir::Graph& g, bool verify) {
  std::vector<PassStat> stats = RunInferencePipeline(g, verify);
  for (PassStat& s : RunSteps(g, kExecutionSteps, verify)) stats.push_back(s);
  return stats;
}

}  // namespace qforge::passes
