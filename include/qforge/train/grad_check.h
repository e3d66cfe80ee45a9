// Finite-difference gradient check of the autograd engine, for op tests (and new ops' authors).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "qforge/ir/graph.h"

namespace qforge::train {

struct GradCheckOptions {
  // Central difference step: h = eps * max(1, |x|). Float forward passes make the numeric
  // derivative noisy by about 1e-7 * |L| / h, so h cannot be tiny.
  double eps = 1e-2;
  // An element passes when |numeric - analytic| <= atol + rtol * max(|numeric|, |analytic|).
  double rtol = 2e-2;
  double atol = 2e-3;
  uint64_t seed = 1;            // for the random output weights
  int64_t max_per_tensor = 48;  // elements checked per tensor (evenly spread), 0 = all
  bool training = true;         // forward mode used (BatchNorm batch statistics, Dropout)
  int threads = 1;              // Autograd threads (tests stay fast on a loaded machine)
};

struct GradCheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  int64_t checked = 0;
  std::string report;  // first failures, "name[i]: numeric .. analytic .."
};

// Loss L = sum over every graph output y of sum_j r_j * y_j with fixed random r in [-1, 1]
// (computed in double). Compares dL/dv from Autograd with central differences for every name
// in `wrt` (initializers or graph inputs, f32). The same forward seed is used for every
// evaluation, so random ops (Dropout) see the same mask.
GradCheckResult CheckGradients(const ir::Graph& g, const std::map<std::string, Tensor>& inputs,
                               const std::set<std::string>& wrt,
                               const GradCheckOptions& options = {});

}  // namespace qforge::train
