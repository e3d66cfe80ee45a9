// `qforge quantize --method weight-only`.
#include "cli/quantize_options.h"
#include "qforge/tensor/tensor.h"

namespace qforge::cli {

int RunQuantizeWeightOnly(const QuantizeCliOptions& o) {
  throw Error("--method " + o.method + " is being built (issue 4) and is not available yet");
}

}  // namespace qforge::cli
