// The pass pipelines, spelled out in one place.
#include "qforge/passes/passes.h"

namespace qforge::passes {

std::vector<PassStat> RunInferencePipeline(ir::Graph& g, bool verify) {
  struct Step {
    const char* name;
    int (*run)(ir::Graph&);
  };
  static const Step kSteps[] = {
      {"remove-identity", RemoveIdentity},
      {"fold-constants", FoldConstants},
      {"fold-batchnorm", FoldBatchNorm},
  };
  std::vector<PassStat> stats;
  for (const Step& s : kSteps) {
    stats.push_back({s.name, s.run(g)});
    if (verify) ir::VerifyOrThrow(g);
  }
  return stats;
}

}  // namespace qforge::passes
