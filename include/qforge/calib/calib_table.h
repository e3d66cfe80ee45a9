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
  int64_t count = 0;        // finite values seen
  int64_t nonfinite = 0;    // NaN/Inf values seen (ignored for the range)
  double min = 0, max = 0;  // raw observed extremes
  double mean = 0, std = 0;
};

// A histogram of the finite values of a tensor (histogram observers only; see histogram.h).
// Bin k covers [k * bin_width, (k + 1) * bin_width); counts[i] is bin first_bin + i. Stored so
// that tables from different shards merge exactly. Empty (no counts) when not recorded.
struct Histogram {
  double bin_width = 0;  // a power of two
  int64_t first_bin = 0;
  std::vector<int64_t> counts;
  bool empty() const { return counts.empty(); }
};

struct CalibEntry {
  std::string tensor;    // tensor name in the graph
  std::string observer;  // "minmax", "moving_average", "percentile", "entropy", "mse"
  TensorStats stats;
  double range_min = 0, range_max = 0;   // chosen (clipped) range; range_min <= 0 <= range_max
  std::string proposed_dtype = "uint8";  // "uint8" or "int8"
  bool symmetric = false;
  double scale = 1;
  int32_t zero_point = 0;
  int64_t batches = 0;  // batches observed (weights moving averages when merging)
  Histogram histogram;  // percentile / entropy / mse only
};

struct CalibTable {
  int version = kCalibTableVersion;
  std::string model;    // model file the table was made for (informational)
  std::string method;   // observer used for activations
  std::string data;     // data source description
  int64_t samples = 0;  // calibration samples seen
  uint64_t seed = 0;
  // Observer parameters (used again when merged tables recompute their ranges).
  double percentile = 99.99;  // percentile observer: kept fraction of |values|, in percent
  double momentum = 0.01;     // moving_average: weight of each new batch's min/max
  int bins = 2048;            // histogram observers: bins of the streaming histogram
  std::map<std::string, CalibEntry> entries;  // by tensor name

  const CalibEntry* Find(const std::string& tensor) const;
};

// Reads/writes the JSON form. Load throws qforge::Error naming the file (and field) for an
// unreadable file, invalid JSON, an unknown version or a missing/ill-typed field. Save writes
// atomically (temporary file, then rename).
CalibTable LoadCalibTable(const std::string& path);
void SaveCalibTable(const CalibTable& table, const std::string& path);

// The JSON text SaveCalibTable writes, and its parser (`what` names the source in errors).
std::string CalibTableToJson(const CalibTable& table);
CalibTable ParseCalibTable(const std::string& text, const std::string& what);

// Combines tables made on different shards of the data with the same method and options:
// stats are pooled; minmax ranges are the union (exact); histograms are added exactly and the
// range is chosen again from the sum; moving averages are averaged weighted by batch count.
// Tensors present in only some tables are kept as they are. Throws qforge::Error when methods,
// options or an entry's proposed dtype / symmetry differ.
CalibTable MergeCalibTables(const std::vector<CalibTable>& tables);

}  // namespace qforge::calib
