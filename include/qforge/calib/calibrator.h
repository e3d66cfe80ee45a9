// Calibrator: runs a Session over calibration batches and observes every float tensor (graph
// inputs and node outputs) with one Observer each, then produces the calibration table.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "qforge/calib/calib_table.h"
#include "qforge/calib/observer.h"
#include "qforge/runtime/session.h"

namespace qforge::calib {

class Calibrator {
 public:
  // The session's graph is calibrated exactly as it is (tensor names of the loaded model).
  Calibrator(runtime::Session& session, ObserverConfig config);

  // Runs one batch (every graph input given) and observes its f32 graph inputs and f32 node
  // outputs; tensors of other dtypes are skipped. Returns the graph outputs.
  std::map<std::string, Tensor> Run(const std::map<std::string, Tensor>& inputs,
                                    int64_t batch_samples);

  // The table so far: one entry per observed tensor; method/options/samples filled in (the
  // caller sets model, data and seed).
  CalibTable Table() const;

  // Observed tensors in graph order (inputs, then node outputs in execution order).
  const std::vector<std::string>& tensor_order() const { return order_; }

 private:
  void ObserveTensor(const std::string& name, const Tensor& t);

  runtime::Session& session_;
  ObserverConfig config_;
  std::map<std::string, Observer> observers_;
  std::vector<std::string> order_;
  int64_t samples_ = 0;
};

}  // namespace qforge::calib
