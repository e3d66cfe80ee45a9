// Calibration table: JSON reading/writing (versioned) and merging tables from data shards.
#include "qforge/calib/calib_table.h"

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "qforge/calib/histogram.h"
#include "qforge/calib/observer.h"
#include "qforge/data/atomic_file.h"
#include "qforge/tensor/tensor.h"

namespace qforge::calib {
namespace {

using nlohmann::json;
constexpr const char* kFormat = "qforge-calibration-table";

// The integer formats a table may propose.
numerics::IntFormat ParseDtype(const std::string& name, const std::string& where) {
  for (numerics::IntFormat f : {numerics::kUInt8, numerics::kInt8, numerics::kUInt16,
                                numerics::kInt16, numerics::kUInt4, numerics::kInt4})
    if (f.name() == name) return f;
  throw Error(where + ": unknown dtype '" + name + "' (uint8, int8, uint16, int16, uint4, int4)");
}

// Typed field access that names the file and the field on any problem.
class Reader {
 public:
  explicit Reader(std::string what) : what_(std::move(what)) {}

  const json& Get(const json& obj, const std::string& key, const std::string& path) const {
    if (!obj.is_object()) Fail(path, "is not an object");
    auto it = obj.find(key);
    if (it == obj.end()) Fail(Join(path, key), "is missing");
    return *it;
  }
  double Number(const json& obj, const std::string& key, const std::string& path) const {
    const json& v = Get(obj, key, path);
    if (!v.is_number()) Fail(Join(path, key), "is not a number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) Fail(Join(path, key), "is not finite");
    return d;
  }
  int64_t Int(const json& obj, const std::string& key, const std::string& path) const {
    const json& v = Get(obj, key, path);
    if (!v.is_number_integer()) Fail(Join(path, key), "is not an integer");
    return v.get<int64_t>();
  }
  std::string String(const json& obj, const std::string& key, const std::string& path) const {
    const json& v = Get(obj, key, path);
    if (!v.is_string()) Fail(Join(path, key), "is not a string");
    return v.get<std::string>();
  }
  bool Bool(const json& obj, const std::string& key, const std::string& path) const {
    const json& v = Get(obj, key, path);
    if (!v.is_boolean()) Fail(Join(path, key), "is not true/false");
    return v.get<bool>();
  }
  [[noreturn]] void Fail(const std::string& field, const std::string& why) const {
    throw Error("calibration table " + what_ + ": field '" + field + "' " + why);
  }
  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  const std::string& what() const { return what_; }

 private:
  std::string what_;
};

// Written with ordered_json: keys stay in the order below (format and version first).
nlohmann::ordered_json EntryToJson(const CalibEntry& e, std::vector<std::string>& counts) {
  nlohmann::ordered_json j = {{"tensor", e.tensor},
                              {"observer", e.observer},
                              {"range", {e.range_min, e.range_max}},
                              {"proposed",
                               {{"dtype", e.proposed_dtype},
                                {"symmetric", e.symmetric},
                                {"scale", e.scale},
                                {"zero_point", e.zero_point}}},
                              {"stats",
                               {{"count", e.stats.count},
                                {"nonfinite", e.stats.nonfinite},
                                {"min", e.stats.min},
                                {"max", e.stats.max},
                                {"mean", e.stats.mean},
                                {"std", e.stats.std}}},
                              {"batches", e.batches}};
  if (!e.histogram.empty()) {
    // The counts go on one line (the placeholder is replaced after pretty-printing).
    counts.push_back(json(e.histogram.counts).dump());
    j["histogram"] = {{"bin_width", e.histogram.bin_width},
                      {"first_bin", e.histogram.first_bin},
                      {"counts", "@@counts" + std::to_string(counts.size() - 1) + "@@"}};
  }
  return j;
}

CalibEntry EntryFromJson(const json& j, const std::string& path, const Reader& r) {
  CalibEntry e;
  e.tensor = r.String(j, "tensor", path);
  e.observer = r.String(j, "observer", path);
  try {
    ParseMethod(e.observer);
  } catch (const Error&) {
    r.Fail(path + ".observer", "is not a calibration method");
  }
  const json& range = r.Get(j, "range", path);
  if (!range.is_array() || range.size() != 2 || !range[0].is_number() || !range[1].is_number())
    r.Fail(path + ".range", "is not [min, max]");
  e.range_min = range[0].get<double>();
  e.range_max = range[1].get<double>();
  if (!(std::isfinite(e.range_min) && std::isfinite(e.range_max) && e.range_min <= 0 &&
        e.range_max >= 0))
    r.Fail(path + ".range", "must be finite with min <= 0 <= max");
  const std::string pp = path + ".proposed";
  const json& p = r.Get(j, "proposed", path);
  e.proposed_dtype = r.String(p, "dtype", pp);
  const numerics::IntFormat fmt = ParseDtype(e.proposed_dtype, r.what() + " " + pp + ".dtype");
  e.symmetric = r.Bool(p, "symmetric", pp);
  e.scale = r.Number(p, "scale", pp);
  if (!(e.scale > 0)) r.Fail(pp + ".scale", "must be > 0");
  const int64_t zp = r.Int(p, "zero_point", pp);
  if (zp < fmt.qmin() || zp > fmt.qmax()) r.Fail(pp + ".zero_point", "is outside the dtype");
  e.zero_point = static_cast<int32_t>(zp);
  const std::string sp = path + ".stats";
  const json& s = r.Get(j, "stats", path);
  e.stats.count = r.Int(s, "count", sp);
  e.stats.nonfinite = r.Int(s, "nonfinite", sp);
  e.stats.min = r.Number(s, "min", sp);
  e.stats.max = r.Number(s, "max", sp);
  e.stats.mean = r.Number(s, "mean", sp);
  e.stats.std = r.Number(s, "std", sp);
  if (e.stats.count < 0 || e.stats.nonfinite < 0 || e.stats.min > e.stats.max || e.stats.std < 0)
    r.Fail(sp, "is inconsistent (negative count, min > max or negative std)");
  e.batches = r.Int(j, "batches", path);
  if (e.batches < 0) r.Fail(path + ".batches", "is negative");
  if (j.contains("histogram")) {
    const std::string hp = path + ".histogram";
    const json& h = j["histogram"];
    e.histogram.bin_width = r.Number(h, "bin_width", hp);
    e.histogram.first_bin = r.Int(h, "first_bin", hp);
    const json& c = r.Get(h, "counts", hp);
    if (!c.is_array() || c.empty()) r.Fail(hp + ".counts", "is not a non-empty array");
    for (const json& v : c) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0)
        r.Fail(hp + ".counts", "holds a value that is not a count");
      e.histogram.counts.push_back(v.get<int64_t>());
    }
  }
  return e;
}

ObserverConfig ConfigFor(const CalibTable& t, const CalibEntry& e) {
  ObserverConfig c;
  c.method = ParseMethod(e.observer);
  c.percentile = t.percentile;
  c.momentum = t.momentum;
  c.bins = t.bins;
  c.dtype = ParseDtype(e.proposed_dtype, "tensor '" + e.tensor + "'");
  c.symmetric = e.symmetric;
  return c;
}

}  // namespace

const CalibEntry* CalibTable::Find(const std::string& tensor) const {
  auto it = entries.find(tensor);
  return it == entries.end() ? nullptr : &it->second;
}

std::string CalibTableToJson(const CalibTable& t) {
  std::vector<std::string> counts;
  nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
  for (const auto& [name, e] : t.entries) tensors.push_back(EntryToJson(e, counts));
  nlohmann::ordered_json j = {
      {"format", kFormat},
      {"version", t.version},
      {"model", t.model},
      {"method", t.method},
      {"data", t.data},
      {"samples", t.samples},
      {"seed", t.seed},
      {"options", {{"percentile", t.percentile}, {"momentum", t.momentum}, {"bins", t.bins}}},
      {"tensors", tensors}};
  std::string text = j.dump(2);
  for (size_t i = 0; i < counts.size(); ++i) {
    const std::string key = "\"@@counts" + std::to_string(i) + "@@\"";
    const size_t at = text.find(key);
    text.replace(at, key.size(), counts[i]);
  }
  return text + "\n";
}

CalibTable ParseCalibTable(const std::string& text, const std::string& what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error("calibration table " + what + " is not valid JSON: " + e.what());
  }
  const Reader r(what);
  if (!j.is_object()) throw Error("calibration table " + what + " is not a JSON object");
  if (!j.contains("format") || j["format"] != kFormat)
    throw Error("calibration table " + what + " is not a qforge calibration table (\"format\": \"" +
                kFormat + "\" missing)");
  const int64_t version = r.Int(j, "version", "");
  if (version != kCalibTableVersion)
    throw Error("calibration table " + what + " has version " + std::to_string(version) +
                "; this qforge reads version " + std::to_string(kCalibTableVersion));
  CalibTable t;
  t.version = static_cast<int>(version);
  t.model = r.String(j, "model", "");
  t.method = r.String(j, "method", "");
  t.data = r.String(j, "data", "");
  t.samples = r.Int(j, "samples", "");
  const json& seed = r.Get(j, "seed", "");
  if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<int64_t>() >= 0))
    r.Fail("seed", "is not a non-negative integer");
  t.seed = seed.get<uint64_t>();
  const json& o = r.Get(j, "options", "");
  t.percentile = r.Number(o, "percentile", "options");
  t.momentum = r.Number(o, "momentum", "options");
  t.bins = static_cast<int>(r.Int(o, "bins", "options"));
  try {
    ObserverConfig check;
    check.method = ParseMethod(t.method);
    check.percentile = t.percentile, check.momentum = t.momentum, check.bins = t.bins;
    check.Check();
  } catch (const Error& e) {
    throw Error("calibration table " + what + ": " + e.what());
  }
  const json& tensors = r.Get(j, "tensors", "");
  if (!tensors.is_array()) r.Fail("tensors", "is not an array");
  for (size_t i = 0; i < tensors.size(); ++i) {
    CalibEntry e = EntryFromJson(tensors[i], "tensors[" + std::to_string(i) + "]", r);
    if (t.entries.count(e.tensor))
      throw Error("calibration table " + what + ": tensor '" + e.tensor + "' appears twice");
    if (!e.histogram.empty()) {  // a histogram must be consistent with the stats
      try {
        StreamingHistogram::FromTable(e.histogram, t.bins, e.stats.min, e.stats.max);
      } catch (const Error& err) {
        throw Error("calibration table " + what + ": tensor '" + e.tensor + "': " + err.what());
      }
    }
    t.entries.emplace(e.tensor, std::move(e));
  }
  return t;
}

CalibTable LoadCalibTable(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read calibration table '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read calibration table '" + path + "'");
  return ParseCalibTable(ss.str(), "'" + path + "'");
}

void SaveCalibTable(const CalibTable& table, const std::string& path) {
  data::WriteFileAtomic(path, CalibTableToJson(table));
}

CalibTable MergeCalibTables(const std::vector<CalibTable>& tables) {
  if (tables.empty()) throw Error("merge: no calibration tables");
  CalibTable out = tables[0];
  out.entries.clear();
  out.samples = 0;
  out.data.clear();
  for (size_t i = 0; i < tables.size(); ++i) {
    const CalibTable& t = tables[i];
    if (t.method != out.method || t.percentile != out.percentile || t.momentum != out.momentum ||
        t.bins != out.bins)
      throw Error("merge: table " + std::to_string(i + 1) + " was made with method '" + t.method +
                  "' (percentile " + std::to_string(t.percentile) + ", momentum " +
                  std::to_string(t.momentum) + ", bins " + std::to_string(t.bins) +
                  "), table 1 with '" + out.method + "' (percentile " +
                  std::to_string(out.percentile) + ", momentum " + std::to_string(out.momentum) +
                  ", bins " + std::to_string(out.bins) + ")");
    out.samples += t.samples;
    out.data += (i ? " + " : "") + t.data;
  }
  // Pool every tensor's entries across the tables.
  std::map<std::string, std::vector<const CalibEntry*>> by_tensor;
  for (const CalibTable& t : tables)
    for (const auto& [name, e] : t.entries) by_tensor[name].push_back(&e);
  for (const auto& [name, list] : by_tensor) {
    const CalibEntry& first = *list[0];
    if (list.size() == 1) {
      out.entries.emplace(name, first);
      continue;
    }
    CalibEntry e = first;
    StatsAccumulator stats = StatsAccumulator::FromStats(first.stats);
    const ObserverConfig config = ConfigFor(out, first);
    std::optional<StreamingHistogram> hist;
    if (UsesHistogram(config.method))
      hist = StreamingHistogram::FromTable(first.histogram, out.bins, first.stats.min,
                                           first.stats.max);
    double wmin = first.range_min * first.batches, wmax = first.range_max * first.batches;
    for (size_t i = 1; i < list.size(); ++i) {
      const CalibEntry& o = *list[i];
      if (o.observer != first.observer || o.proposed_dtype != first.proposed_dtype ||
          o.symmetric != first.symmetric)
        throw Error("merge: tensor '" + name + "' was calibrated as " + first.observer + "/" +
                    first.proposed_dtype + (first.symmetric ? "/symmetric" : "") + " and as " +
                    o.observer + "/" + o.proposed_dtype + (o.symmetric ? "/symmetric" : ""));
      stats.Merge(o.stats);
      if (hist)
        hist->Merge(StreamingHistogram::FromTable(o.histogram, out.bins, o.stats.min, o.stats.max));
      wmin += o.range_min * o.batches;
      wmax += o.range_max * o.batches;
      e.batches += o.batches;
    }
    e.stats = stats.stats();
    if (hist) e.histogram = hist->ToTable();
    if (config.method == Method::kMovingAverage && e.batches > 0) {
      e.range_min = wmin / e.batches;
      e.range_max = wmax / e.batches;
    }
    ChooseRange(e, config);
    out.entries.emplace(name, std::move(e));
  }
  return out;
}

}  // namespace qforge::calib
