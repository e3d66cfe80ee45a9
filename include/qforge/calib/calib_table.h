// Calibration table: the file between `qforge calibrate` and `qforge quantize` (versioned JSON).
//
// One entry per calibrated tensor (graph inputs and node outputs, keyed by tensor name). The
// contract the quantizer relies on is the chosen real range [range_min, range_max] (already
// clipped by the observer); scale/zero_point are the observer's proposal for `proposed_dtype`
// and `symmetric` and are informational: the quantizer recomputes them for its own options.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qforge::calib {

inline constexpr int kCalibTableVersion = 1;

struct TensorStats {
  int64_t count = 0;       // finite values seen
  int64_t nonfinite = 0;   // NaN/Inf values seen (ignored for the range)
  double min = 0, max = 0; // raw observed extremes
  double mean = 0, std = 0;
};

struct CalibEntry {
  std::string tensor;          // tensor name in the graph
  std::string observer;        // "minmax", "moving_average", "percentile", "entropy", "mse"
  TensorStats stats;
  double range_min = 0, range_max = 0;  // chosen (clipped) range; range_min <= 0 <= range_max
  std::string proposed_dtype = "uint8"; // "uint8" or "int8"
  bool symmetric = false;
  double scale = 1;
  int32_t zero_point = 0;
};

struct CalibTable {
  int version = kCalibTableVersion;
  std::string model;          // model file the table was made for (informational)
  std::string method;         // observer used for activations
  std::string data;           // data source description
  int64_t samples = 0;        // calibration samples seen
  uint64_t seed = 0;
  std::map<std::string, CalibEntry> entries;  // by tensor name

  const CalibEntry* Find(const std::string& tensor) const;
};

// Reads/writes the JSON form. Load throws qforge::Error naming the file (and field) for an
// unreadable file, invalid JSON, an unknown version or a missing/ill-typed field. Save writes
// atomically (temporary file, then rename).
CalibTable LoadCalibTable(const std::string& path);
void SaveCalibTable(const CalibTable& table, const std::string& path);

}  // namespace qforge::calib
