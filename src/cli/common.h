// Helpers shared by the qforge subcommands: model loading, tables, progress bar, formatting.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qforge/ir/graph.h"
#include "qforge/tensor/tensor.h"

namespace qforge::cli {

// Loads an ONNX model (checked, shapes inferred) or a native .qf file (recognized by its magic).
// Import warnings go to stderr as "qforge: warning: ..." lines. Throws qforge::Error naming the
// file on any problem.
ir::Graph LoadModelFile(const std::string& path);
// LoadModelFile, then passes::LowerQdqToInteger for a QDQ model, then the execution pipeline
// (BN folding, constant folding, activation fusion: passes::RunExecutionPipeline) unless
// `optimize` is false. For commands that run the model.
ir::Graph LoadModelForExecution(const std::string& path, bool optimize = true);
// The steps LoadModelForExecution applies after loading, for a graph already in memory.
ir::Graph PrepareForExecution(ir::Graph g, bool optimize = true);

// "[batch, 1, 28, 28]": known dims as numbers, symbolic dims by name, unknown as "?".
std::string DimsToString(const ir::ValueInfo& vi);
// The same as JSON: numbers, symbol strings, null for unknown; null when the rank is unknown.
nlohmann::json DimsToJson(const ir::ValueInfo& vi);

// "1.61 MiB", "512 B".
// A dB figure for tables: one decimal, "inf" / "-inf" for exact results.
std::string Db(double v);
// A number for JSON output: finite values as numbers, NaN / Inf as "nan" / "inf" / "-inf".
nlohmann::json JsonNumberOrText(double v);
std::string HumanBytes(int64_t bytes);
// "1,234,567".
std::string GroupThousands(int64_t n);

// A file name made from a tensor name: characters other than [A-Za-z0-9._-] become '_', a
// leading '.' becomes '_' (no hidden files, no ".."), empty becomes "output", length <= 200.
std::string SanitizeFileName(const std::string& name);

// Splits "name=value" at the first '='; throws Error mentioning `option` when malformed.
std::pair<std::string, std::string> SplitNameValue(const std::string& text,
                                                   const std::string& option);
// Parses "1x3x224x224" (also "1,3,224,224"; "" or "scalar" is a rank-0 shape).
Shape ParseShape(const std::string& text);

// Makes an error message one printable line: newlines and runs of whitespace become one space;
// control characters and invalid UTF-8 bytes become \xNN.
std::string OneLine(const std::string& text);

// A plain-text table with auto-sized columns. Columns are left-aligned unless marked numeric.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> numeric = {});
  void AddRow(std::vector<std::string> cells);
  // A horizontal rule before the next row (e.g. before a summary block).
  void AddSeparator();
  std::string ToString() const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> numeric_;
  std::vector<std::vector<std::string>> rows_;  // an empty row is a separator
};

// A progress bar on stderr for long loops. It draws only when stderr is a terminal (it redraws
// one line with '\r', at most ~10 times a second) and prints nothing otherwise, so CI logs and
// redirected output stay clean. Finish() (or the destructor) clears the line.
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total);
  ~ProgressBar();
  void Update(int64_t done);
  void Finish();

 private:
  void Draw(int64_t done);

  std::string label_;
  int64_t total_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// Seconds since `start` on the steady clock.
double SecondsSince(std::chrono::steady_clock::time_point start);

}  // namespace qforge::cli
