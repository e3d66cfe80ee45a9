// `qforge calibrate MODEL --data SRC --method M --out calib.json`: run the model over
// calibration samples, observe every float tensor and write the calibration table; and
// `qforge calibrate --merge a.json b.json --out merged.json` to combine shards.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <random>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/measure.h"
#include "qforge/calib/calib_table.h"
#include "qforge/calib/calibrator.h"
#include "qforge/data/fashion_mnist.h"
#include "qforge/data/idx.h"
#include "qforge/data/image_folder.h"
#include "qforge/data/npy_folder.h"
#include "qforge/runtime/session.h"

namespace qforge::cli {
namespace {

namespace fs = std::filesystem;

struct CalibrateOptions {
  std::string model;
  std::string data;
  std::string data_dir = std::string(data::kFashionMnistDir);
  std::string method = "minmax";
  int64_t samples = 1000;
  int64_t batch = 32;
  uint64_t seed = 0;
  double percentile = 99.99;
  double momentum = 0.01;
  int bins = 2048;
  std::string activation_dtype = "uint8";
  bool symmetric = false;
  std::string image_size;
  int channels = 0;
  std::string mean, std;
  std::string out;
  std::vector<std::string> merge;
  int threads = 0;
  bool json = false;
};

// Calibration samples: `size` of them, sample(i) gives each model input's tensor for sample i
// WITHOUT the batch dimension.
struct Source {
  std::string description;
  int64_t size = 0;
  std::function<std::map<std::string, Tensor>(int64_t)> sample;
};

std::vector<float> ParseFloatList(const std::string& text, const std::string& option) {
  std::vector<float> v;
  if (text.empty()) return v;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    try {
      size_t used = 0;
      v.push_back(std::stof(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw Error(option + ": '" + item + "' is not a number (expected a,b,c)");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return v;
}

// Fashion-MNIST training images, raw pixels / 255, shaped for the model's single f32 input
// ([1, 28, 28], [28, 28] or [784] per sample).
Source FashionMnistSource(const ir::Graph& g, const std::string& dir) {
  if (g.inputs.size() != 1 || g.inputs[0].dtype != DType::kF32)
    throw Error("--data fashion-mnist needs a model with one f32 input");
  const ir::ValueInfo& vi = g.inputs[0];
  Shape shape = {1, 28, 28};
  if (vi.has_shape && vi.dims.size() == 3) shape = {28, 28};
  if (vi.has_shape && vi.dims.size() == 2) shape = {784};
  bool ok = !vi.has_shape || vi.dims.size() == shape.size() + 1;
  for (size_t d = 0; ok && d < shape.size(); ++d)
    ok = !vi.dims[d + 1].known() || vi.dims[d + 1].value == shape[d];
  if (!ok)
    throw Error(fmt::format("model input '{}' has shape {}, which does not take 28x28 images",
                            vi.name, DimsToString(vi)));
  std::string path = (fs::path(dir) / "train-images-idx3-ubyte.gz").string();
  if (!fs::exists(path)) path = (fs::path(dir) / "train-images-idx3-ubyte").string();
  if (!fs::exists(path))
    throw Error("dataset-fashion-mnist not installed: run scripts/setup.sh (" + path +
                "[.gz] missing)");
  auto images = std::make_shared<Tensor>(data::ReadIdx(path));
  if (images->dtype() != DType::kU8 || images->rank() != 3 || images->dim(1) != 28 ||
      images->dim(2) != 28)
    throw Error("'" + path + "' does not hold u8 28x28 images");
  Source s;
  s.description = "fashion-mnist train";
  s.size = images->dim(0);
  s.sample = [images, shape, name = vi.name](int64_t i) {
    Tensor t(DType::kF32, shape);
    const uint8_t* src = images->data<uint8_t>() + i * 784;
    float* dst = t.data<float>();
    for (int k = 0; k < 784; ++k) dst[k] = static_cast<float>(src[k]) / 255.0f;
    return std::map<std::string, Tensor>{{name, t}};
  };
  return s;
}

Source ImageFolderSource(const ir::Graph& g, const CalibrateOptions& o,
                         std::vector<std::string> files) {
  if (g.inputs.size() != 1 || g.inputs[0].dtype != DType::kF32 ||
      (g.inputs[0].has_shape && g.inputs[0].dims.size() != 4))
    throw Error("an image folder needs a model with one f32 NCHW input");
  const ir::ValueInfo& vi = g.inputs[0];
  data::ImageOptions io;
  io.channels = o.channels ? o.channels : 3;
  if (vi.has_shape && vi.dims[1].known()) {
    if (o.channels && o.channels != vi.dims[1].value)
      throw Error(fmt::format("--channels {} but model input '{}' has {} channels", o.channels,
                              vi.name, vi.dims[1].value));
    io.channels = static_cast<int>(vi.dims[1].value);
  }
  if (!o.image_size.empty()) {
    const Shape hw = ParseShape(o.image_size);
    if (hw.size() != 2 || hw[0] < 1 || hw[1] < 1)
      throw Error("--image-size '" + o.image_size + "' is not HxW (e.g. 224x224)");
    io.height = hw[0], io.width = hw[1];
  } else if (vi.has_shape && vi.dims[2].known() && vi.dims[3].known()) {
    io.height = vi.dims[2].value, io.width = vi.dims[3].value;
  }
  io.mean = ParseFloatList(o.mean, "--mean");
  io.std = ParseFloatList(o.std, "--std");
  io.Check();
  Source s;
  s.description =
      fmt::format("images {} ({}x{}, {} channels)", o.data, io.height, io.width, io.channels);
  s.size = static_cast<int64_t>(files.size());
  s.sample = [files = std::move(files), io, name = vi.name](int64_t i) {
    return std::map<std::string, Tensor>{{name, data::LoadImage(files[i], io)}};
  };
  return s;
}

Source NpyFolderSource(const ir::Graph& g, const std::string& dir) {
  std::vector<std::string> names;
  for (const ir::ValueInfo& vi : g.inputs) names.push_back(vi.name);
  auto folder = std::make_shared<data::NpyFolder>(dir, names);
  Source s;
  s.description = "npy " + dir;
  s.size = folder->size();
  s.sample = [folder, inputs = g.inputs](int64_t i) {
    std::map<std::string, Tensor> m = folder->Sample(i);
    for (const ir::ValueInfo& vi : inputs) {
      Tensor& t = m.at(vi.name);
      const std::string& file = folder->files(vi.name)[i];
      if (t.dtype() != vi.dtype)
        throw Error(fmt::format("'{}' holds {}, model input '{}' is {}", file, DTypeName(t.dtype()),
                                vi.name, DTypeName(vi.dtype)));
      // One sample per file: the input's shape without the batch dimension, or with a
      // leading batch dimension of 1.
      if (vi.has_shape && t.rank() == static_cast<int64_t>(vi.dims.size()) && t.dim(0) == 1) {
        Shape sh(t.shape().begin() + 1, t.shape().end());
        t = t.Reshaped(sh);
      }
      if (vi.has_shape && t.rank() + 1 != static_cast<int64_t>(vi.dims.size()))
        throw Error(
            fmt::format("'{}' has shape {}; model input '{}' is {} (one sample per file, "
                        "without the batch dimension or with a batch of 1)",
                        file, ShapeToString(t.shape()), vi.name, DimsToString(vi)));
    }
    return m;
  };
  return s;
}

Source MakeSource(const ir::Graph& g, const CalibrateOptions& o) {
  if (o.data == "fashion-mnist") return FashionMnistSource(g, o.data_dir);
  std::error_code ec;
  if (!fs::is_directory(o.data, ec))
    throw Error("--data '" + o.data + "' is neither 'fashion-mnist' nor a directory");
  std::vector<std::string> images = data::ListImageFiles(o.data);
  if (!images.empty()) return ImageFolderSource(g, o, std::move(images));
  return NpyFolderSource(g, o.data);
}

// Stacks per-sample tensors (equal shapes) into one [B, ...] tensor.
Tensor Stack(const std::vector<Tensor>& parts, const std::string& input) {
  Shape shape = parts[0].shape();
  shape.insert(shape.begin(), static_cast<int64_t>(parts.size()));
  Tensor out(parts[0].dtype(), shape);
  uint8_t* dst = static_cast<uint8_t*>(out.raw());
  for (const Tensor& t : parts) {
    if (t.shape() != parts[0].shape() || t.dtype() != parts[0].dtype())
      throw Error(fmt::format("samples for input '{}' differ in shape: {} vs {}", input,
                              ShapeToString(t.shape()), ShapeToString(parts[0].shape())));
    std::memcpy(dst, t.raw(), t.nbytes());
    dst += t.nbytes();
  }
  return out;
}

std::string Num(double v) { return fmt::format("{:.5g}", v); }

void PrintSummary(const calib::CalibTable& t, const std::vector<std::string>& order) {
  Table table(
      {"tensor", "observer", "min", "max", "range min", "range max", "kept %", "scale", "zp"},
      {false, false, true, true, true, true, true, true, true});
  for (const std::string& name : order) {
    const calib::CalibEntry& e = t.entries.at(name);
    const double width = std::max(e.stats.max, 0.0) - std::min(e.stats.min, 0.0);
    const double kept = width > 0 ? 100.0 * (e.range_max - e.range_min) / width : 100.0;
    table.AddRow({name, e.observer, Num(e.stats.min), Num(e.stats.max), Num(e.range_min),
                  Num(e.range_max), fmt::format("{:.1f}", kept), Num(e.scale),
                  std::to_string(e.zero_point)});
  }
  std::cout << table.ToString();
}

nlohmann::json SummaryJson(const calib::CalibTable& t, const std::vector<std::string>& order) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const std::string& name : order) {
    const calib::CalibEntry& e = t.entries.at(name);
    tensors.push_back({{"tensor", name},
                       {"observer", e.observer},
                       {"min", e.stats.min},
                       {"max", e.stats.max},
                       {"nonfinite", e.stats.nonfinite},
                       {"range", {e.range_min, e.range_max}},
                       {"dtype", e.proposed_dtype},
                       {"symmetric", e.symmetric},
                       {"scale", e.scale},
                       {"zero_point", e.zero_point}});
  }
  return {{"model", t.model},     {"method", t.method}, {"data", t.data},
          {"samples", t.samples}, {"seed", t.seed},     {"tensors", tensors}};
}

int RunMerge(const CalibrateOptions& o) {
  if (!o.model.empty() || !o.data.empty())
    throw Error("--merge takes calibration tables only (no MODEL, no --data)");
  std::vector<calib::CalibTable> tables;
  for (const std::string& path : o.merge) tables.push_back(calib::LoadCalibTable(path));
  const calib::CalibTable merged = calib::MergeCalibTables(tables);
  calib::SaveCalibTable(merged, o.out);
  std::vector<std::string> order;
  for (const auto& [name, e] : merged.entries) order.push_back(name);
  if (o.json) {
    nlohmann::json j = SummaryJson(merged, order);
    j["merged"] = o.merge;
    j["out"] = o.out;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  PrintSummary(merged, order);
  fmt::print("merged {} tables ({} samples, {} tensors) into {}\n", tables.size(), merged.samples,
             merged.entries.size(), o.out);
  return 0;
}

int RunCalibrate(const CalibrateOptions& o) {
  if (o.out.empty()) throw Error("--out FILE is required");
  if (!o.merge.empty()) return RunMerge(o);
  if (o.model.empty()) throw Error("MODEL is required (or --merge TABLE...)");
  if (o.data.empty()) throw Error("--data is required (fashion-mnist or a directory)");

  calib::ObserverConfig config;
  config.method = calib::ParseMethod(o.method);
  config.percentile = o.percentile;
  config.momentum = o.momentum;
  config.bins = o.bins;
  config.dtype = o.activation_dtype == "int8" ? numerics::kInt8 : numerics::kUInt8;
  config.symmetric = o.symmetric;
  config.Check();

  ir::Graph graph = LoadModelFile(o.model);
  if (graph.inputs.empty()) throw Error("model '" + o.model + "' has no inputs");
  // A fixed batch dimension decides the batch size.
  int64_t batch = o.batch;
  bool fixed_batch = false;
  for (const ir::ValueInfo& vi : graph.inputs) {
    if (vi.has_shape && !vi.dims.empty() && vi.dims[0].known()) {
      batch = vi.dims[0].value;
      fixed_batch = true;
      break;
    }
  }
  if (batch < 1) throw Error("model input has batch dimension 0");
  const Source source = MakeSource(graph, o);
  if (source.size == 0) throw Error("no calibration samples in '" + o.data + "'");
  int64_t n = std::min(o.samples, source.size);
  if (o.samples > source.size)
    fmt::print(stderr, "qforge: warning: --samples {} but only {} available; using {}\n", o.samples,
               source.size, n);
  if (fixed_batch && n % batch) {
    const int64_t used = n / batch * batch;
    fmt::print(stderr,
               "qforge: warning: the model's batch dimension is fixed at {}; using {} of {} "
               "samples\n",
               batch, used, n);
    n = used;
  }
  if (n == 0) throw Error("no calibration samples to run (--samples 0?)");
  const std::vector<int64_t> order = Permutation(source.size, o.seed);

  runtime::SessionOptions so;
  so.threads = o.threads;
  runtime::Session session(std::move(graph), so);
  calib::Calibrator calibrator(session, config);
  ProgressBar bar("calibrate", n);
  const auto start = std::chrono::steady_clock::now();
  int64_t batches = 0;
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    const int64_t b1 = std::min(n, b0 + batch);
    std::map<std::string, std::vector<Tensor>> parts;
    for (int64_t i = b0; i < b1; ++i)
      for (auto& [name, t] : source.sample(order[i])) parts[name].push_back(std::move(t));
    std::map<std::string, Tensor> inputs;
    for (const auto& [name, list] : parts) inputs[name] = Stack(list, name);
    calibrator.Run(inputs, b1 - b0);
    ++batches;
    bar.Update(b1);
  }
  const double seconds = SecondsSince(start);
  bar.Finish();

  calib::CalibTable table = calibrator.Table();
  table.model = o.model;
  table.data = source.description;
  table.seed = o.seed;
  calib::SaveCalibTable(table, o.out);
  if (o.json) {
    nlohmann::json j = SummaryJson(table, calibrator.tensor_order());
    j["out"] = o.out;
    j["batches"] = batches;
    j["seconds"] = seconds;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  PrintSummary(table, calibrator.tensor_order());
  fmt::print(
      "calibrated {} tensors on {} samples ({} batches of {}) with {} in {:.2f} s; wrote {}\n",
      table.entries.size(), n, batches, batch, table.method, seconds, o.out);
  return 0;
}

}  // namespace

Command AddCalibrateCommand(CLI::App& root) {
  auto o = std::make_shared<CalibrateOptions>();
  CLI::App* app = root.add_subcommand(
      "calibrate", "Observe a model's activations on calibration data; write a calibration table");
  app->add_option("MODEL", o->model, "ONNX model file (calibrated exactly as loaded)");
  app->add_option("--data", o->data,
                  "fashion-mnist (its training images), a folder of images (PNG/JPEG/BMP), or a "
                  "folder of .npy samples (one subfolder per input when there are several)");
  app->add_option("--data-dir", o->data_dir, "Where the Fashion-MNIST IDX files are")
      ->capture_default_str();
  app->add_option("--method", o->method, "Observer for activations")
      ->check(CLI::IsMember({"minmax", "moving_average", "percentile", "entropy", "mse"}))
      ->capture_default_str();
  app->add_option("--samples", o->samples, "Calibration samples to use")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--batch", o->batch, "Samples per run (a fixed model batch size wins)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--seed", o->seed, "Seed of the sample shuffle")->capture_default_str();
  app->add_option("--percentile", o->percentile, "percentile: % of values kept, in (0, 100]")
      ->capture_default_str();
  app->add_option("--momentum", o->momentum, "moving_average: weight of each new batch")
      ->capture_default_str();
  app->add_option("--bins", o->bins, "Histogram bins (percentile, entropy, mse)")
      ->capture_default_str();
  app->add_option("--activation-dtype", o->activation_dtype,
                  "Activation format the range is chosen for")
      ->check(CLI::IsMember({"uint8", "int8"}))
      ->capture_default_str();
  app->add_flag("--symmetric", o->symmetric, "Symmetric activation ranges");
  app->add_option("--image-size", o->image_size,
                  "Images: resize to HxW (default: the model's input size)");
  app->add_option("--channels", o->channels, "Images: 1 (gray) or 3 (RGB) if the model says not");
  app->add_option("--mean", o->mean,
                  "Images: per-channel mean of pixel/255, e.g. 0.485,0.456,0.406");
  app->add_option("--std", o->std, "Images: per-channel std of pixel/255, e.g. 0.229,0.224,0.225");
  app->add_option("--merge", o->merge, "Merge these calibration tables (no MODEL, no --data)")
      ->expected(1, -1);
  app->add_option("--out,-o", o->out, "Calibration table to write (JSON)")->required();
  app->add_option("--threads", o->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  app->add_flag("--json", o->json, "Print the summary as JSON instead of a table");
  app->footer(R"EX(Example:
  $ qforge calibrate models/fmnist_cnn.onnx --data fashion-mnist --samples 1000 \
      --method entropy --out calib.json
  tensor                observer      min     max  range min  range max  kept %     scale   zp
  ------------------------------------------------------------------------------------------
  input                 entropy         0       1          0          1   100.0 0.0039216    0
  /conv1/Conv_output_0  entropy   -3.8191  2.8898    -2.9961     2.8898    87.7  0.023082  130
  /Relu_output_0        entropy         0  8.8482          0     3.9922    45.1  0.015656    0
  ...
  logits                entropy   -22.461  24.172    -19.938     19.938    85.5   0.15637  128
  calibrated 15 tensors on 1000 samples (32 batches of 32) with entropy in 6.31 s; wrote calib.json

  # two shards, merged (exact for minmax and the histogram methods):
  $ qforge calibrate m.onnx --data shard1/ --method percentile -o a.json
  $ qforge calibrate m.onnx --data shard2/ --method percentile -o b.json
  $ qforge calibrate --merge a.json b.json -o calib.json

Samples are a seeded shuffle of the source (same data, order and seed: same table). Every f32
graph input and node output of the model as loaded is observed; the table holds, per tensor,
the observer, statistics, the chosen range and a proposed scale / zero point for
--activation-dtype. Images are decoded to --channels, resized bilinearly, scaled to [0, 1] and
normalized ((p - mean) / std); .npy files hold one sample each. See docs/calibration.md.)EX");
  return {app, [o] { return RunCalibrate(*o); }};
}

}  // namespace qforge::cli
