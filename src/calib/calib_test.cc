// Tests of the calibration module: histogram re-binning/merging, each observer on known
// distributions, streaming == one-shot, shard merges == one run, JSON round trip and errors,
// and the Calibrator on a small graph.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include "qforge/calib/calib_table.h"
#include "qforge/calib/calibrator.h"
#include "qforge/calib/histogram.h"
#include "qforge/calib/observer.h"
#include "qforge/numerics/quant_params.h"

namespace qforge::calib {
namespace {

namespace fs = std::filesystem;
namespace nm = qforge::numerics;

// Deterministic data (mt19937's output is specified by the standard; the transforms below are
// our own, so the values are the same with every standard library).
std::vector<float> Uniform(int64_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = lo + (hi - lo) * static_cast<float>(g() / 4294967296.0);
  return v;
}
std::vector<float> Gaussian(int64_t n, float sigma, uint32_t seed) {
  std::mt19937 g(seed);
  std::vector<float> v(n);
  for (auto& x : v) {  // Box-Muller
    const double u1 = (g() + 1.0) / 4294967297.0, u2 = g() / 4294967296.0;
    x = static_cast<float>(sigma * std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2));
  }
  return v;
}

ObserverConfig Config(Method m, nm::IntFormat fmt = nm::kUInt8, bool symmetric = false) {
  ObserverConfig c;
  c.method = m;
  c.dtype = fmt;
  c.symmetric = symmetric;
  return c;
}

// Observes `v` in batches of `batch` values.
CalibEntry Observe(const ObserverConfig& c, const std::vector<float>& v, int64_t batch) {
  Observer o(c);
  for (int64_t i = 0; i < static_cast<int64_t>(v.size()); i += batch)
    o.Observe(v.data() + i, std::min<int64_t>(batch, v.size() - i));
  return o.ToEntry("t");
}

bool SameHistogram(const Histogram& a, const Histogram& b) {
  return a.bin_width == b.bin_width && a.first_bin == b.first_bin && a.counts == b.counts;
}

// ---- histogram ----

TEST(Histogram, BinWidthIsTheSmallestPowerOfTwoThatFits) {
  EXPECT_EQ(FitBinWidth(0, 1, 16), 0.125);  // bins 0..16 need 17 bins at 1/16
  EXPECT_EQ(FitBinWidth(0, 0.99, 16), 0.0625);
  EXPECT_EQ(FitBinWidth(0, 1, 17), 0.0625);
  EXPECT_EQ(FitBinWidth(-1, 1, 16), 0.25);  // bins -4..4 = 9 bins; 0.125 needs 17
  EXPECT_EQ(FitBinWidth(0, 0, 16), std::ldexp(1.0, -64));
  EXPECT_EQ(FitBinWidth(5, 7, 16), 0.5);  // [0, 7] (the window always holds 0)
}

TEST(Histogram, GrowingRangeRebinsExactly) {
  StreamingHistogram h(64);
  const std::vector<float> a = {0.1f, 0.2f, 0.3f};
  h.Add(a.data(), 3);
  const double w0 = h.bin_width();
  const std::vector<float> b = {100.0f, -7.0f, std::nanf(""), INFINITY};
  h.Add(b.data(), 4);
  EXPECT_GT(h.bin_width(), w0);
  EXPECT_EQ(h.total(), 5);  // NaN and Inf skipped
  EXPECT_EQ(h.min(), -7.0);
  EXPECT_EQ(h.max(), 100.0);
  int64_t sum = 0;
  for (int64_t k = h.first_bin(); k < h.first_bin() + 64; ++k) sum += h.count(k);
  EXPECT_EQ(sum, 5);
  // Every value sits in the bin that contains it.
  for (float x : {0.1f, 100.0f, -7.0f})
    EXPECT_GE(h.count(static_cast<int64_t>(std::floor(x / h.bin_width()))), 1) << x;
}

TEST(Histogram, StreamingEqualsOneShotAndAnyOrder) {
  std::vector<float> v = Gaussian(20000, 2.0f, 1);
  v[5000] = 40.0f;  // a late outlier forces re-binning
  StreamingHistogram one(2048);
  one.Add(v.data(), v.size());
  for (int64_t batch : {1, 7, 1000, 4999}) {
    StreamingHistogram s(2048);
    for (size_t i = 0; i < v.size(); i += batch)
      s.Add(v.data() + i, std::min<int64_t>(batch, v.size() - i));
    EXPECT_TRUE(SameHistogram(s.ToTable(), one.ToTable())) << batch;
  }
  std::vector<float> r(v.rbegin(), v.rend());
  StreamingHistogram rev(2048);
  rev.Add(r.data(), r.size());
  EXPECT_TRUE(SameHistogram(rev.ToTable(), one.ToTable()));
}

TEST(Histogram, MergeEqualsOneRun) {
  const std::vector<float> a = Uniform(5000, 0, 1, 2), b = Uniform(7000, -3, 0.5f, 3);
  StreamingHistogram ha(512), hb(512), all(512);
  ha.Add(a.data(), a.size());
  hb.Add(b.data(), b.size());
  all.Add(a.data(), a.size());
  all.Add(b.data(), b.size());
  StreamingHistogram m = ha;
  m.Merge(hb);
  EXPECT_TRUE(SameHistogram(m.ToTable(), all.ToTable()));
  StreamingHistogram m2 = hb;
  m2.Merge(ha);
  EXPECT_TRUE(SameHistogram(m2.ToTable(), all.ToTable()));
  // Round trip through the table form.
  const StreamingHistogram back =
      StreamingHistogram::FromTable(all.ToTable(), 512, all.min(), all.max());
  EXPECT_TRUE(SameHistogram(back.ToTable(), all.ToTable()));
}

TEST(Histogram, FromTableRejectsInconsistentData) {
  StreamingHistogram h(64);
  const std::vector<float> v = {0.5f, 1.0f};
  h.Add(v.data(), 2);
  Histogram t = h.ToTable();
  EXPECT_THROW(StreamingHistogram::FromTable(t, 64, 0.5, 3.0), Error);  // max elsewhere
  Histogram bad = t;
  bad.bin_width *= 3;
  EXPECT_THROW(StreamingHistogram::FromTable(bad, 64, 0.5, 1.0), Error);
  bad = t;
  bad.counts.back() = -1;
  EXPECT_THROW(StreamingHistogram::FromTable(bad, 64, 0.5, 1.0), Error);
}

// ---- observers ----

TEST(Observer, StatsCountAndIgnoreNonFinite) {
  const std::vector<float> v = {1, 2, NAN, 3, INFINITY, -INFINITY, 4};
  for (Method m : {Method::kMinMax, Method::kMovingAverage, Method::kPercentile, Method::kEntropy,
                   Method::kMse}) {
    const CalibEntry e = Observe(Config(m), v, 3);
    EXPECT_EQ(e.stats.count, 4) << MethodName(m);
    EXPECT_EQ(e.stats.nonfinite, 3);
    EXPECT_EQ(e.stats.min, 1);
    EXPECT_EQ(e.stats.max, 4);
    EXPECT_DOUBLE_EQ(e.stats.mean, 2.5);
    EXPECT_NEAR(e.stats.std, std::sqrt(1.25), 1e-12);
    EXPECT_TRUE(std::isfinite(e.range_max));
    EXPECT_EQ(e.range_min, 0);
    EXPECT_LE(e.range_max, 4);
  }
  // Only non-finite values: an empty, zero range.
  const std::vector<float> nan = {NAN, NAN};
  const CalibEntry e = Observe(Config(Method::kEntropy), nan, 2);
  EXPECT_EQ(e.stats.count, 0);
  EXPECT_EQ(e.range_min, 0);
  EXPECT_EQ(e.range_max, 0);
}

TEST(Observer, MinMaxAndProposal) {
  const std::vector<float> v = {-1.0f, 3.0f, 0.5f};
  const CalibEntry e = Observe(Config(Method::kMinMax), v, 2);
  EXPECT_EQ(e.range_min, -1);
  EXPECT_EQ(e.range_max, 3);
  const nm::QuantParams p = nm::ChooseQuantParams(-1.0f, 3.0f, nm::kUInt8);
  EXPECT_EQ(e.scale, p.scale);
  EXPECT_EQ(e.zero_point, p.zero_point);
  EXPECT_EQ(e.proposed_dtype, "uint8");
  const CalibEntry s = Observe(Config(Method::kMinMax, nm::kInt8, true), v, 2);
  EXPECT_EQ(s.proposed_dtype, "int8");
  EXPECT_EQ(s.zero_point, 0);
  EXPECT_FLOAT_EQ(s.scale, 3.0f / 127.5f);
}

TEST(Observer, MovingAverage) {
  // Batches with max 1, 3, 5: m = 1, then 1 + 0.5 (3 - 1) = 2, then 2 + 0.5 (5 - 2) = 3.5.
  ObserverConfig c = Config(Method::kMovingAverage);
  c.momentum = 0.5;
  const std::vector<float> v = {-1, 1, -2, 3, -4, 5};
  const CalibEntry e = Observe(c, v, 2);
  EXPECT_DOUBLE_EQ(e.range_max, 3.5);
  EXPECT_DOUBLE_EQ(e.range_min, -2.75);  // -1, -1.5, -2.75
  EXPECT_EQ(e.batches, 3);
  c.momentum = 1;  // the last batch only
  EXPECT_DOUBLE_EQ(Observe(c, v, 2).range_max, 5);
}

TEST(Observer, OutliersAreClippedByHistogramMethodsNotByMinMax) {
  std::vector<float> v = Uniform(100000, 0, 1, 4);
  for (int i = 0; i < 5; ++i) v[i * 997] = 10.0f;  // 0.005% outliers
  EXPECT_EQ(Observe(Config(Method::kMinMax), v, 4096).range_max, 10);
  for (bool symmetric : {false, true}) {
    const nm::IntFormat fmt = symmetric ? nm::kInt8 : nm::kUInt8;
    const CalibEntry p = Observe(Config(Method::kPercentile, fmt, symmetric), v, 4096);
    EXPECT_GE(p.range_max, 0.99);
    EXPECT_LE(p.range_max, 1.01);
    // Entropy cannot go below `levels` (or levels / 2) of the histogram's bins: 256 or 128
    // bins of 10 / 1280 here.
    const CalibEntry e = Observe(Config(Method::kEntropy, fmt, symmetric), v, 4096);
    EXPECT_GE(e.range_max, 0.99);
    EXPECT_LE(e.range_max, 2.01);
    EXPECT_EQ(e.range_min, 0);
  }
  // MSE weighs the clipping error of the outliers against the finer step: five at 10 in 1e5
  // are worth keeping (the range shrinks only a little). With one outlier at x = 10 in
  // N = 1e6 uniform values, clipping at T costs (x - T)^2 and rounding N (T / 255)^2 / 12,
  // minimal at T* = x / (1 + N / (12 * 255^2)) = 4.39.
  const CalibEntry m5 = Observe(Config(Method::kMse), v, 4096);
  EXPECT_LT(m5.range_max, 10);
  EXPECT_GT(m5.range_max, 8);
  std::vector<float> u = Uniform(1000000, 0, 1, 5);
  u[123456] = 10.0f;
  const CalibEntry m1 = Observe(Config(Method::kMse), u, 65536);
  EXPECT_NEAR(m1.range_max, 10.0 / (1.0 + 1e6 / (12.0 * 255 * 255)), 0.1);
  // The MSE choice beats the full range on its own criterion.
  StreamingHistogram h(2048);
  h.Add(u.data(), u.size());
  const nm::QuantParams full = nm::ChooseQuantParams(0.0f, 10.0f, nm::kUInt8);
  EXPECT_LT(ExpectedQuantError(h, m1.scale, m1.zero_point, nm::kUInt8),
            ExpectedQuantError(h, full.scale, full.zero_point, nm::kUInt8));
}

TEST(Observer, PercentileOfUniform) {
  // 99% of |x| for x uniform in [-1, 1] lies below 0.99.
  const std::vector<float> v = Uniform(200000, -1, 1, 5);
  ObserverConfig c = Config(Method::kPercentile, nm::kInt8, true);
  c.percentile = 99;
  const CalibEntry e = Observe(c, v, 10000);
  EXPECT_NEAR(e.range_max, 0.99, 0.002);
  EXPECT_NEAR(e.range_min, -0.99, 0.002);
  c.symmetric = false;  // each tail: 1%
  const CalibEntry a = Observe(c, v, 10000);
  EXPECT_NEAR(a.range_max, 0.98, 0.003);
  EXPECT_NEAR(a.range_min, -0.98, 0.003);
  c.percentile = 100;
  EXPECT_NEAR(Observe(c, v, 10000).range_max, 1.0, 1e-4);
}

TEST(Observer, MseOfGaussianClipsNearTheKnownOptimum) {
  // For a Gaussian quantized to 8 bits the MSE-optimal clip is about 3-4.5 sigma.
  const std::vector<float> v = Gaussian(400000, 1.0f, 6);
  const CalibEntry e = Observe(Config(Method::kMse, nm::kInt8, true), v, 50000);
  EXPECT_GT(e.range_max, 2.5);
  EXPECT_LT(e.range_max, 4.2);
  EXPECT_LT(e.range_max, e.stats.max);
  // Asymmetric search lands in the same place.
  const CalibEntry a = Observe(Config(Method::kMse, nm::kUInt8, false), v, 50000);
  EXPECT_GT(a.range_max, 2.5);
  EXPECT_LT(a.range_max, 4.5);
  EXPECT_LT(a.range_min, -2.5);
  EXPECT_GT(a.range_min, -4.5);
  // Fewer bits clip harder (4-bit optimum ~2.5 sigma).
  const CalibEntry f = Observe(Config(Method::kMse, nm::kInt4, true), v, 50000);
  EXPECT_LT(f.range_max, e.range_max);
  EXPECT_GT(f.range_max, 1.5);
}

TEST(Observer, ExpectedQuantErrorMatchesMonteCarlo) {
  const std::vector<float> v = Gaussian(200000, 1.0f, 7);
  StreamingHistogram h(2048);
  h.Add(v.data(), v.size());
  for (double clip : {1.0, 2.0, 3.5, 6.0}) {
    const nm::QuantParams p = nm::ChooseQuantParams(-clip, clip, nm::kInt8, {true, false});
    double mc = 0;
    for (float x : v) {
      const double d = x - nm::FakeQuantizeValue(x, p, nm::kInt8);
      mc += d * d;
    }
    mc /= static_cast<double>(v.size());
    EXPECT_NEAR(ExpectedQuantError(h, p.scale, p.zero_point, nm::kInt8), mc, 0.03 * mc) << clip;
  }
}

TEST(Observer, KlDivergenceHandlesZeroBins) {
  EXPECT_DOUBLE_EQ(KlDivergence({1, 1}, {2, 2}), 0);
  EXPECT_DOUBLE_EQ(KlDivergence({0, 1}, {5, 0}), 1.0 * std::log(1.0 / 1e-4));  // smoothed
  EXPECT_NEAR(KlDivergence({1, 0}, {1, 1}), std::log(2.0), 1e-15);  // p = 0 contributes 0
  EXPECT_TRUE(std::isinf(KlDivergence({1}, {0})));
}

TEST(Observer, EntropyKeepsAnUnclippedUniformAndClipsALongTail) {
  const std::vector<float> u = Uniform(100000, 0, 1, 8);
  const CalibEntry e = Observe(Config(Method::kEntropy), u, 4096);
  EXPECT_GE(e.range_max, 0.97);
  // Laplace-like tail: the threshold is well inside the max.
  std::vector<float> lap = Uniform(200000, 0, 1, 9);
  for (float& x : lap) x = -std::log(1 - x);  // Exp(1), max ~ 12
  const CalibEntry l = Observe(Config(Method::kEntropy), lap, 4096);
  EXPECT_LT(l.range_max, 0.8 * l.stats.max);
  EXPECT_GT(l.range_max, 3);
}

TEST(Observer, ExtremeValuesStayFinite) {
  const std::vector<float> v = {1e-30f, 3e38f, -3e38f, 0.0f, -1e-40f, 5.0f};
  for (Method m : {Method::kMinMax, Method::kMovingAverage, Method::kPercentile, Method::kEntropy,
                   Method::kMse}) {
    for (bool symmetric : {false, true}) {
      const CalibEntry e = Observe(Config(m, symmetric ? nm::kInt8 : nm::kUInt8, symmetric), v, 2);
      EXPECT_TRUE(std::isfinite(e.range_min) && std::isfinite(e.range_max)) << MethodName(m);
      EXPECT_TRUE(std::isfinite(e.scale) && e.scale > 0) << MethodName(m);
      EXPECT_GE(e.range_min, -3e38f);
      EXPECT_LE(e.range_max, 3e38f);
    }
  }
  // A tensor of zeros: an empty range, scale 1.
  const std::vector<float> zeros(100, 0.0f);
  for (Method m : {Method::kMinMax, Method::kEntropy, Method::kMse, Method::kPercentile}) {
    const CalibEntry e = Observe(Config(m), zeros, 30);
    EXPECT_EQ(e.range_min, 0);
    EXPECT_EQ(e.range_max, 0);
    EXPECT_EQ(e.scale, 1);
  }
}

TEST(Observer, StreamingEqualsOneShot) {
  std::vector<float> v = Gaussian(30000, 1.5f, 10);
  v[20000] = 25;
  for (Method m : {Method::kMinMax, Method::kPercentile, Method::kEntropy, Method::kMse}) {
    const CalibEntry one = Observe(Config(m), v, v.size());
    const CalibEntry s = Observe(Config(m), v, 333);
    EXPECT_EQ(one.range_min, s.range_min) << MethodName(m);
    EXPECT_EQ(one.range_max, s.range_max) << MethodName(m);
    EXPECT_TRUE(SameHistogram(one.histogram, s.histogram));
    EXPECT_NEAR(one.stats.mean, s.stats.mean, 1e-12);
    EXPECT_NEAR(one.stats.std, s.stats.std, 1e-12);
  }
}

// ---- table ----

CalibTable MakeTable(Method m, const std::vector<float>& v, int64_t samples) {
  CalibTable t;
  t.model = "m.onnx";
  t.method = MethodName(m);
  t.data = "shard";
  t.samples = samples;
  const std::vector<float> w = {1.0f, 2.0f};
  t.entries["x"] = Observe(Config(m), v, 1000);
  t.entries["x"].tensor = "x";
  t.entries["w"] = Observe(Config(m), w, 2);
  t.entries["w"].tensor = "w";
  return t;
}

TEST(CalibTable, MergeOfShardsEqualsOneRun) {
  const std::vector<float> a = Gaussian(10000, 1, 11), b = Uniform(8000, -5, 2, 12);
  std::vector<float> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  for (Method m : {Method::kMinMax, Method::kPercentile, Method::kEntropy, Method::kMse}) {
    CalibTable ta = MakeTable(m, a, 10), tb = MakeTable(m, b, 8);
    tb.entries.erase("w");
    tb.entries["only_b"] = tb.entries["x"];
    tb.entries["only_b"].tensor = "only_b";
    const CalibTable merged = MergeCalibTables({ta, tb});
    const CalibEntry one = Observe(Config(m), ab, 1000);
    const CalibEntry& x = merged.entries.at("x");
    EXPECT_EQ(x.range_min, one.range_min) << MethodName(m);
    EXPECT_EQ(x.range_max, one.range_max) << MethodName(m);
    EXPECT_EQ(x.scale, one.scale);
    EXPECT_EQ(x.zero_point, one.zero_point);
    EXPECT_TRUE(SameHistogram(x.histogram, one.histogram));
    EXPECT_EQ(x.stats.count, one.stats.count);
    EXPECT_NEAR(x.stats.mean, one.stats.mean, 1e-9);
    EXPECT_NEAR(x.stats.std, one.stats.std, 1e-9);
    EXPECT_EQ(merged.samples, 18);
    EXPECT_EQ(merged.entries.count("w"), 1u);
    EXPECT_EQ(merged.entries.count("only_b"), 1u);
    EXPECT_EQ(merged.data, "shard + shard");
  }
}

TEST(CalibTable, MergeAveragesMovingAveragesByBatches) {
  CalibTable a, b;
  a.method = b.method = "moving_average";
  CalibEntry e;
  e.tensor = "x";
  e.observer = "moving_average";
  e.stats.count = 10;
  e.stats.min = -4, e.stats.max = 4;
  e.range_min = -1, e.range_max = 1, e.batches = 1;
  a.entries["x"] = e;
  e.range_min = -3, e.range_max = 3, e.batches = 3;
  b.entries["x"] = e;
  const CalibTable m = MergeCalibTables({a, b});
  EXPECT_DOUBLE_EQ(m.entries.at("x").range_max, 2.5);
  EXPECT_DOUBLE_EQ(m.entries.at("x").range_min, -2.5);
  EXPECT_EQ(m.entries.at("x").batches, 4);
}

TEST(CalibTable, MergeRejectsDifferentMethods) {
  const std::vector<float> v = {1, 2};
  EXPECT_THROW(
      MergeCalibTables({MakeTable(Method::kMinMax, v, 1), MakeTable(Method::kEntropy, v, 1)}),
      Error);
  EXPECT_THROW(MergeCalibTables({}), Error);
}

TEST(CalibTable, JsonRoundTrip) {
  CalibTable t = MakeTable(Method::kEntropy, Gaussian(5000, 1, 13), 5);
  t.seed = 18446744073709551615ull;
  const std::string text = CalibTableToJson(t);
  const CalibTable back = ParseCalibTable(text, "test");
  EXPECT_EQ(CalibTableToJson(back), text);
  EXPECT_EQ(back.seed, t.seed);
  ASSERT_EQ(back.entries.size(), 2u);
  const CalibEntry& a = t.entries.at("x");
  const CalibEntry& b = back.entries.at("x");
  EXPECT_EQ(a.range_min, b.range_min);
  EXPECT_EQ(a.range_max, b.range_max);
  EXPECT_EQ(a.scale, b.scale);
  EXPECT_EQ(a.stats.mean, b.stats.mean);
  EXPECT_TRUE(SameHistogram(a.histogram, b.histogram));
  ASSERT_NE(back.Find("x"), nullptr);
  EXPECT_EQ(back.Find("nope"), nullptr);
  // Human readable: one line per field, counts on one line.
  EXPECT_NE(text.find("\"version\": 1"), std::string::npos);
  EXPECT_NE(text.find("\"counts\": ["), std::string::npos);
}

TEST(CalibTable, SaveLoadAndErrors) {
  const fs::path dir = fs::temp_directory_path() / ("qf_calib_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "c.json").string();
  const CalibTable t = MakeTable(Method::kPercentile, Uniform(3000, -1, 2, 14), 3);
  SaveCalibTable(t, path);
  EXPECT_EQ(CalibTableToJson(LoadCalibTable(path)), CalibTableToJson(t));
  EXPECT_THROW(LoadCalibTable((dir / "missing.json").string()), Error);
  EXPECT_THROW(SaveCalibTable(t, (dir / "no/such/dir.json").string()), Error);

  const std::string good = CalibTableToJson(t);
  auto expect_error = [&](std::string text, const std::string& needle) {
    try {
      ParseCalibTable(text, "'f.json'");
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("f.json"), std::string::npos) << e.what();
    }
  };
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  expect_error(good.substr(0, good.size() / 2), "not valid JSON");
  expect_error("[]", "not a JSON object");
  expect_error("{}", "not a qforge calibration table");
  expect_error(replace("\"version\": 1", "\"version\": 2"), "version 2");
  expect_error(replace("\"version\": 1", "\"version\": \"1\""), "version");
  expect_error(replace("\"range\"", "\"rang\""), "tensors[0].range");
  expect_error(replace("\"count\"", "\"cnt\""), "stats.count");
  expect_error(replace("\"dtype\": \"uint8\"", "\"dtype\": \"uint9\""), "uint9");
  expect_error(replace("\"method\": \"percentile\"", "\"method\": \"p\""), "unknown calibration");
  expect_error(replace("\"first_bin\": ", "\"first_bin\": 1"), "histogram");
  expect_error(replace("\"bins\": 2048", "\"bins\": 3"), "bins");
  fs::remove_all(dir);
}

// ---- calibrator ----

// x (f32 [N, 4]) -> Relu -> r -> Neg -> y; plus x -> Shape -> s (int64, skipped).
ir::Graph SmallGraph() {
  ir::Graph g;
  g.name = "small";
  g.opset_imports[""] = 17;
  g.inputs.push_back({"x", DType::kF32, true, {ir::Dim::Symbol("N"), ir::Dim::Known(4)}});
  g.nodes.push_back({"relu", "Relu", "", {"x"}, {"r"}, {}});
  g.nodes.push_back({"neg", "Neg", "", {"r"}, {"y"}, {}});
  g.nodes.push_back({"shape", "Shape", "", {"x"}, {"s"}, {}});
  g.outputs.push_back({"y", DType::kF32, false, {}});
  g.outputs.push_back({"s", DType::kI64, false, {}});
  return g;
}

TEST(Calibrator, ObservesFloatInputsAndOutputsDeterministically) {
  auto run = [](Method m) {
    runtime::Session session(SmallGraph());
    Calibrator c(session, Config(m));
    for (int b = 0; b < 3; ++b) {
      const std::vector<float> v = Gaussian(8 * 4, 1.0f, 20 + b);
      c.Run({{"x", Tensor::FromVector<float>({8, 4}, v)}}, 8);
    }
    return c;
  };
  for (Method m : {Method::kMinMax, Method::kMovingAverage, Method::kEntropy}) {
    Calibrator c = run(m);
    const CalibTable t = c.Table();
    EXPECT_EQ(t.samples, 24);
    EXPECT_EQ(t.method, MethodName(m));
    EXPECT_EQ(c.tensor_order(), (std::vector<std::string>{"x", "r", "y"}));
    ASSERT_EQ(t.entries.size(), 3u);  // s (int64) is skipped
    EXPECT_EQ(t.entries.at("r").range_min, 0);
    EXPECT_GE(t.entries.at("x").range_min, t.entries.at("x").stats.min);
    EXPECT_EQ(t.entries.at("y").range_max, 0);  // -relu(x) <= 0
    EXPECT_EQ(t.entries.at("y").stats.min, -t.entries.at("r").stats.max);
    EXPECT_EQ(CalibTableToJson(t), CalibTableToJson(run(m).Table()));
  }
}

}  // namespace
}  // namespace qforge::calib
