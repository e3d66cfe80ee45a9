// Shared CLI helpers: model loading, value formatting, tables and the stderr progress bar.
#include "cli/common.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "qforge/onnx/onnx.h"
#include "qforge/onnx/qf_file.h"
#include "qforge/passes/passes.h"
#include "qforge/passes/quantize.h"

namespace qforge::cli {

ir::Graph LoadModelFile(const std::string& path) {
  if (onnx_io::IsQfFile(path)) return onnx_io::LoadQf(path);  // native .qf (already lowered)
  std::vector<std::string> warnings;
  onnx_io::LoadOptions options;
  options.warnings = &warnings;
  ir::Graph g = onnx_io::LoadModel(path, options);
  for (const std::string& w : warnings) fmt::print(stderr, "qforge: warning: {}\n", OneLine(w));
  return g;
}

ir::Graph LoadModelForExecution(const std::string& path, bool optimize) {
  return PrepareForExecution(LoadModelFile(path), optimize);
}

ir::Graph PrepareForExecution(ir::Graph g, bool optimize) {
  // A QDQ model runs on the integer ops; lowering goes first, before activation fusion could
  // hide its DequantizeLinear -> op -> QuantizeLinear patterns.
  if (passes::HasQdq(g)) passes::LowerQdqToInteger(g);
  if (optimize) passes::RunExecutionPipeline(g, /*verify=*/false);
  return g;
}

std::string DimsToString(const ir::ValueInfo& vi) {
  if (!vi.has_shape) return "(unknown rank)";
  std::string s = "[";
  for (size_t i = 0; i < vi.dims.size(); ++i) {
    if (i) s += ", ";
    const ir::Dim& d = vi.dims[i];
    s += d.known() ? std::to_string(d.value) : (d.symbol.empty() ? "?" : d.symbol);
  }
  return s + "]";
}

nlohmann::json DimsToJson(const ir::ValueInfo& vi) {
  if (!vi.has_shape) return nullptr;
  nlohmann::json dims = nlohmann::json::array();
  for (const ir::Dim& d : vi.dims) {
    if (d.known())
      dims.push_back(d.value);
    else if (!d.symbol.empty())
      dims.push_back(d.symbol);
    else
      dims.push_back(nullptr);
  }
  return dims;
}

std::string Db(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.1f}", v);
}

nlohmann::json JsonNumberOrText(double v) {
  if (std::isfinite(v)) return v;
  return std::isnan(v) ? nlohmann::json("nan") : nlohmann::json(v > 0 ? "inf" : "-inf");
}

std::string HumanBytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) v /= 1024.0, ++u;
  return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", v, units[u]);
}

std::string GroupThousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string SanitizeFileName(const std::string& name) {
  std::string out;
  for (char c : name) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    out += ok ? c : '_';
  }
  if (out.empty()) out = "output";
  if (out[0] == '.') out[0] = '_';
  if (out.size() > 200) out.resize(200);
  return out;
}

std::pair<std::string, std::string> SplitNameValue(const std::string& text,
                                                   const std::string& option) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw Error(option + " expects NAME=VALUE, got '" + text + "'");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

Shape ParseShape(const std::string& text) {
  Shape shape;
  if (text.empty() || text == "scalar") return shape;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find_first_of("x,", pos);
    if (end == std::string::npos) end = text.size();
    const std::string part = text.substr(pos, end - pos);
    if (part.empty() || part.size() > 12 ||
        !std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(c); }))
      throw Error("bad shape '" + text + "': expected dimensions like 1x3x224x224");
    shape.push_back(std::stoll(part));
    pos = end + 1;
  }
  return shape;
}

namespace {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid (overlong forms
// and surrogates are accepted as a simplification; they are harmless in a terminal).
size_t Utf8SequenceLength(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xE  ? 3
                     : (c >> 3) == 0x1E ? 4
                                        : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  return len;
}

}  // namespace

std::string OneLine(const std::string& text) {
  std::string out;
  bool space = false;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (std::isspace(c)) {
      space = !out.empty();
      ++i;
      continue;
    }
    if (space) out += ' ';
    space = false;
    const size_t len = Utf8SequenceLength(text, i);
    if (len == 0 || c < 0x20 || c == 0x7F) {
      // Control characters and broken UTF-8 (e.g. names from a corrupt model) are escaped so
      // the message stays one printable line.
      out += fmt::format("\\x{:02x}", c);
      ++i;
    } else {
      out.append(text, i, len);
      i += len;
    }
  }
  return out;
}

Table::Table(std::vector<std::string> header, std::vector<bool> numeric)
    : header_(std::move(header)), numeric_(std::move(numeric)) {
  numeric_.resize(header_.size(), false);
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(header_.size());
  rows_.push_back(std::move(cells));
}

void Table::AddSeparator() { rows_.emplace_back(); }

std::string Table::ToString() const {
  std::vector<size_t> width(header_.size());
  for (size_t c = 0; c < header_.size(); ++c) width[c] = header_[c].size();
  for (const auto& row : rows_)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t c = 0; c < cells.size(); ++c) {
      if (c) s += "  ";
      const size_t pad = width[c] - cells[c].size();
      if (numeric_[c]) s += std::string(pad, ' ');
      s += cells[c];
      if (!numeric_[c] && c + 1 < cells.size()) s += std::string(pad, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s + "\n";
  };
  size_t total = 0;
  for (size_t w : width) total += w + 2;
  const std::string rule = std::string(total > 2 ? total - 2 : 0, '-') + "\n";
  std::string out = line(header_) + rule;
  for (const auto& row : rows_) out += row.empty() ? rule : line(row);
  return out;
}

ProgressBar::ProgressBar(std::string label, int64_t total)
    : label_(std::move(label)),
      total_(std::max<int64_t>(total, 1)),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(int64_t done) {
  if (!enabled_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw(done);
}

void ProgressBar::Draw(int64_t done) {
  constexpr int kWidth = 30;
  const double frac = std::clamp(static_cast<double>(done) / total_, 0.0, 1.0);
  const int filled = static_cast<int>(frac * kWidth);
  const double secs = SecondsSince(start_);
  fmt::print(stderr, "\r{} [{}{}] {}/{} {:5.1f}% {:.1f}s", label_, std::string(filled, '#'),
             std::string(kWidth - filled, '.'), done, total_, 100.0 * frac, secs);
  std::fflush(stderr);
}

void ProgressBar::Finish() {
  if (!enabled_ || finished_) return;
  finished_ = true;
  // Erase the bar so the result that follows starts on a clean line.
  fmt::print(stderr, "\r\033[K");
  std::fflush(stderr);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace qforge::cli
