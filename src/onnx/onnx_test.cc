// Tests for ONNX import/export: round trips, typed tensor fields, bad files, fuzzing, external
// data.
#include "qforge/onnx/onnx.h"

#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

namespace qforge::onnx_io {
namespace {

namespace fs = std::filesystem;
const char* kNodeTests = "/usr/share/libonnx-testdata/data/node";

// ---- helpers -------------------------------------------------------------------------------

bool SameTensor(const Tensor& a, const Tensor& b) {
  return a.defined() == b.defined() && a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

// Deep comparison of everything LoadModel produces; returns the first difference or "".
std::string GraphDiff(const ir::Graph& a, const ir::Graph& b) {
  if (ir::ToText(a) != ir::ToText(b)) return "text:\n" + ir::ToText(a) + "vs\n" + ir::ToText(b);
  if (a.inputs != b.inputs) return "inputs differ";
  if (a.outputs != b.outputs) return "outputs differ";
  if (a.value_info != b.value_info) return "value_info differs";
  if (a.opset_imports != b.opset_imports) return "opset imports differ";
  if (a.initializers.size() != b.initializers.size()) return "initializer count differs";
  for (const auto& [k, t] : a.initializers) {
    auto it = b.initializers.find(k);
    if (it == b.initializers.end() || !SameTensor(t, it->second)) return "initializer " + k;
  }
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const auto& x = a.nodes[i].attrs;
    const auto& y = b.nodes[i].attrs;
    for (const auto& [k, v] : x) {
      auto it = y.find(k);
      if (it == y.end() || it->second.index() != v.index()) return "attr kind " + k;
      const bool same = std::visit(
          [&](const auto& xv) {
            using T = std::decay_t<decltype(xv)>;
            const T& yv = std::get<T>(it->second);
            if constexpr (std::is_same_v<T, Tensor>) {
              return SameTensor(xv, yv);
            } else {
              return xv == yv;
            }
          },
          v);
      if (!same) return "attr value " + k;
    }
  }
  return "";
}

fs::path TempDir(const std::string& tag) {
  fs::path d =
      fs::temp_directory_path() / ("qf_onnx_test_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void WriteBytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string ReadBytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

ir::ValueInfo VI(const std::string& name, DType t, std::vector<ir::Dim> dims) {
  return ir::ValueInfo{name, t, true, std::move(dims)};
}

// A small CNN-like graph with a symbolic batch dimension, every attribute kind, and
// initializers of several element types.
ir::Graph SmallGraph() {
  using ir::Dim;
  ir::Graph g;
  g.name = "small";
  g.producer_name = "qforge-test";
  g.opset_imports = {{"", 17}, {"qforge.test", 1}};
  g.inputs = {
      VI("x", DType::kF32, {Dim::Symbol("N"), Dim::Known(1), Dim::Known(4), Dim::Known(4)})};
  g.outputs = {VI("y", DType::kF32, {Dim::Symbol("N"), Dim::Known(3)}),
               VI("z", DType::kF32, {Dim::Symbol("N"), Dim{}})};

  std::vector<float> w(2 * 1 * 3 * 3);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1f * static_cast<float>(i) - 0.5f;
  g.initializers["w"] = Tensor::FromVector<float>({2, 1, 3, 3}, w);
  g.initializers["b"] = Tensor::FromVector<float>({2}, {0.25f, -1.0f});
  g.initializers["shape"] = Tensor::FromVector<int64_t>({2}, {0, -1});
  std::vector<float> fc(2 * 4 * 4 * 3);
  for (size_t i = 0; i < fc.size(); ++i) fc[i] = (i % 7) * 0.01f;
  g.initializers["fc"] = Tensor::FromVector<float>({32, 3}, fc);
  Tensor h(DType::kF16, {3});
  h.data<uint16_t>()[0] = 0x3C00;  // 1.0
  h.data<uint16_t>()[1] = 0xC000;  // -2.0
  h.data<uint16_t>()[2] = 0x7E00;  // NaN
  g.initializers["half"] = h;
  g.initializers["q"] = Tensor::FromVector<uint8_t>({3}, {0, 128, 255});
  g.initializers["qs"] = Tensor::FromVector<int8_t>({2}, {-128, 127});
  g.initializers["flags"] = Tensor::FromVector<bool>({2}, {true, false});
  g.initializers["dbl"] = Tensor::FromVector<double>({1}, {3.5});

  auto node = [&](std::string op, std::vector<std::string> in, std::vector<std::string> out,
                  std::string name) {
    ir::Node n;
    n.op_type = std::move(op);
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    n.name = std::move(name);
    g.nodes.push_back(n);
    return &g.nodes.back();
  };
  auto* conv = node("Conv", {"x", "w", "b"}, {"c"}, "conv1");
  conv->attrs["kernel_shape"] = std::vector<int64_t>{3, 3};
  conv->attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  conv->attrs["strides"] = std::vector<int64_t>{1, 1};
  conv->attrs["auto_pad"] = std::string("NOTSET");
  auto* lr = node("LeakyRelu", {"c"}, {"r"}, "act");
  lr->attrs["alpha"] = 0.125f;
  node("Reshape", {"r", "shape"}, {"flat"}, "flatten");
  node("MatMul", {"flat", "fc"}, {"mm"}, "fc1");
  auto* cst = node("Constant", {}, {"bias"}, "bias_const");
  cst->attrs["value"] = Tensor::FromVector<float>({3}, {1.0f, 2.0f, 3.0f});
  node("Add", {"mm", "bias"}, {"y"}, "add");
  auto* custom = node("Custom", {"flat"}, {"z"}, "custom");
  custom->domain = "qforge.test";
  custom->attrs["scales"] = std::vector<float>{0.5f, 0.25f};
  custom->attrs["names"] = std::vector<std::string>{"a", "b"};
  custom->attrs["empty_ints"] = std::vector<int64_t>{};
  return g;
}

std::string ModelBytes(const std::string& test) {
  return ReadBytes(fs::path(kNodeTests) / test / "model.onnx");
}

bool HaveNodeTests() { return fs::is_directory(kNodeTests); }

// Runs f and reports whether it threw qforge::Error; any other exception fails the test.
template <typename F>
bool ThrowsQfError(F&& f, std::string* msg = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (msg) *msg = e.what();
    return true;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-qforge exception: " << e.what();
    return true;
  }
  return false;
}

// ---- round trips ----------------------------------------------------------------------------

TEST(OnnxRoundTrip, SmallGraphInMemory) {
  ir::Graph g = SmallGraph();
  std::vector<std::string> warnings;
  LoadOptions opts;
  opts.warnings = &warnings;
  ir::Graph a = LoadModelFromBytes(SaveModelToBytes(g), "", opts, "small");
  // Import adds inferred value_info for intermediates, with the symbolic batch dim kept.
  ASSERT_TRUE(a.value_info.count("c")) << ir::ToText(a);
  const ir::ValueInfo& c = a.value_info.at("c");
  EXPECT_EQ(c.dtype, DType::kF32);
  ASSERT_EQ(c.dims.size(), 4u);
  EXPECT_EQ(c.dims[0], ir::Dim::Symbol("N"));
  EXPECT_EQ(c.dims[1], ir::Dim::Known(2));
  // Apart from that, the imported graph equals the one we built.
  ir::Graph g_with_vi = g;
  g_with_vi.value_info = a.value_info;
  EXPECT_EQ(GraphDiff(g_with_vi, a), "");
  // Second round trip is exact, including value_info.
  ir::Graph b = LoadModelFromBytes(SaveModelToBytes(a), "", opts, "small2");
  EXPECT_EQ(GraphDiff(a, b), "");
  EXPECT_EQ(std::get<std::vector<int64_t>>(b.FindNode("custom")->attrs.at("empty_ints")).size(),
            0u);
}

TEST(OnnxRoundTrip, SavedFilePassesChecker) {
  fs::path dir = TempDir("checker");
  const std::string path = (dir / "small.onnx").string();
  SaveModel(SmallGraph(), path);
  EXPECT_NO_THROW(onnx::checker::check_model(path));
  ir::Graph a = LoadModel(path);
  EXPECT_EQ(a.name, "small");
  // Only the model file exists: the temporary was renamed, not left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}

TEST(OnnxRoundTrip, BackendNodeModels) {
  if (!HaveNodeTests()) GTEST_SKIP() << "libonnx-testdata not installed";
  for (const char* test :
       {"test_conv_with_strides_padding", "test_gemm_all_attributes", "test_constant",
        "test_cast_FLOAT_to_FLOAT16", "test_reshape_negative_dim",
        "test_layer_normalization_3d_axis1_epsilon_expanded", "test_resize_upsample_sizes_nearest",
        "test_quantizelinear", "test_dequantizelinear_axis", "test_constantofshape_float_ones",
        "test_slice_neg_steps", "test_split_variable_parts_1d", "test_clip_default_inbounds",
        "test_dropout_default_mask", "test_hardsigmoid_default", "test_globalaveragepool"}) {
    SCOPED_TRACE(test);
    const std::string path = std::string(kNodeTests) + "/" + test + "/model.onnx";
    ir::Graph a = LoadModel(path);
    const std::string bytes = SaveModelToBytes(a);
    ir::Graph b = LoadModelFromBytes(bytes, "", {}, test);
    EXPECT_EQ(GraphDiff(a, b), "");
    // The export is a valid ONNX model in its own right.
    onnx::ModelProto m;
    ASSERT_TRUE(m.ParseFromString(bytes));
    EXPECT_NO_THROW(onnx::checker::check_model(m));
  }
}

// Every node-test model of libonnx-testdata: either it loads and survives export + re-import
// unchanged, or it is rejected with qforge::Error (unsupported types, subgraphs, ...).
TEST(OnnxRoundTrip, AllBackendNodeModels) {
  if (!HaveNodeTests()) GTEST_SKIP() << "libonnx-testdata not installed";
  int round_tripped = 0, rejected = 0;
  for (const auto& e : fs::directory_iterator(kNodeTests)) {
    const fs::path model = e.path() / "model.onnx";
    if (!fs::exists(model)) continue;
    SCOPED_TRACE(model.string());
    ir::Graph a;
    try {
      a = LoadModel(model.string());
    } catch (const Error&) {
      ++rejected;
      continue;
    }
    std::string bytes;
    ASSERT_NO_THROW(bytes = SaveModelToBytes(a));
    ir::Graph b;
    ASSERT_NO_THROW(b = LoadModelFromBytes(bytes, "", {}, "reimport"));
    EXPECT_EQ(GraphDiff(a, b), "");
    ++round_tripped;
  }
  std::cout << "node models: " << round_tripped << " round-tripped, " << rejected << " rejected\n";
  EXPECT_GT(round_tripped, 700);
}

// ---- tensors: typed fields and .pb files ----------------------------------------------------

TEST(OnnxTensor, TypedFields) {
  onnx::TensorProto tp;
  tp.set_data_type(onnx::TensorProto::FLOAT);
  tp.add_dims(2);
  tp.add_float_data(1.5f);
  tp.add_float_data(-2.0f);
  Tensor t = TensorFromProtoBytes(tp.SerializeAsString());
  EXPECT_EQ(t.ToFloatVector(), (std::vector<float>{1.5f, -2.0f}));

  tp.Clear();  // fp16 bit patterns live in int32_data
  tp.set_data_type(onnx::TensorProto::FLOAT16);
  tp.add_dims(2);
  tp.add_int32_data(0x3C00);
  tp.add_int32_data(0xC000);
  t = TensorFromProtoBytes(tp.SerializeAsString());
  ASSERT_EQ(t.dtype(), DType::kF16);
  EXPECT_EQ(t.data<uint16_t>()[0], 0x3C00);
  EXPECT_EQ(t.data<uint16_t>()[1], 0xC000);

  tp.Clear();
  tp.set_data_type(onnx::TensorProto::BFLOAT16);
  tp.add_int32_data(0x3F80);  // scalar 1.0
  t = TensorFromProtoBytes(tp.SerializeAsString());
  ASSERT_EQ(t.dtype(), DType::kBF16);
  EXPECT_EQ(t.rank(), 0);
  EXPECT_EQ(t.data<uint16_t>()[0], 0x3F80);

  tp.Clear();
  tp.set_data_type(onnx::TensorProto::INT8);
  tp.add_dims(3);
  for (int v : {-128, 0, 127}) tp.add_int32_data(v);
  t = TensorFromProtoBytes(tp.SerializeAsString());
  EXPECT_EQ(t.ToInt64Vector(), (std::vector<int64_t>{-128, 0, 127}));

  tp.Clear();
  tp.set_data_type(onnx::TensorProto::BOOL);
  tp.add_dims(2);
  tp.add_int32_data(1);
  tp.add_int32_data(0);
  t = TensorFromProtoBytes(tp.SerializeAsString());
  EXPECT_EQ(t.ToInt64Vector(), (std::vector<int64_t>{1, 0}));

  tp.Clear();
  tp.set_data_type(onnx::TensorProto::INT64);
  tp.add_dims(1);
  tp.add_int64_data(-(int64_t{1} << 40));
  EXPECT_EQ(TensorFromProtoBytes(tp.SerializeAsString()).GetAsInt64(0), -(int64_t{1} << 40));

  tp.Clear();
  tp.set_data_type(onnx::TensorProto::DOUBLE);
  tp.add_dims(1);
  tp.add_double_data(0.1);
  EXPECT_EQ(TensorFromProtoBytes(tp.SerializeAsString()).GetAsDouble(0), 0.1);

  tp.Clear();
  tp.set_data_type(onnx::TensorProto::UINT32);
  tp.add_dims(1);
  tp.add_uint64_data(4000000000u);
  EXPECT_EQ(TensorFromProtoBytes(tp.SerializeAsString()).GetAsInt64(0), 4000000000);
}

TEST(OnnxTensor, BadTensorsAreErrors) {
  onnx::TensorProto tp;
  tp.set_data_type(onnx::TensorProto::FLOAT);
  tp.add_dims(3);
  tp.add_float_data(1.0f);  // 1 value for 3 elements
  std::string msg;
  EXPECT_TRUE(ThrowsQfError([&] { TensorFromProtoBytes(tp.SerializeAsString()); }, &msg));
  EXPECT_NE(msg.find("float_data has 1 values"), std::string::npos) << msg;

  tp.Clear();
  tp.set_data_type(onnx::TensorProto::FLOAT);
  tp.add_dims(4);
  tp.set_raw_data(std::string(15, '\0'));  // one byte short
  EXPECT_TRUE(ThrowsQfError([&] { TensorFromProtoBytes(tp.SerializeAsString()); }));

  tp.Clear();
  tp.set_data_type(onnx::TensorProto::FLOAT);
  tp.add_dims(-1);
  EXPECT_TRUE(ThrowsQfError([&] { TensorFromProtoBytes(tp.SerializeAsString()); }));

  tp.Clear();  // huge dims with no data must not allocate
  tp.set_data_type(onnx::TensorProto::FLOAT);
  tp.add_dims(int64_t{1} << 40);
  tp.add_dims(int64_t{1} << 40);
  EXPECT_TRUE(ThrowsQfError([&] { TensorFromProtoBytes(tp.SerializeAsString()); }));

  tp.Clear();
  tp.set_data_type(onnx::TensorProto::STRING);
  tp.add_string_data("hi");
  EXPECT_TRUE(ThrowsQfError([&] { TensorFromProtoBytes(tp.SerializeAsString()); }, &msg));
  EXPECT_NE(msg.find("string tensors"), std::string::npos) << msg;

  EXPECT_TRUE(ThrowsQfError([&] { TensorFromProtoBytes("\xff\xff\xff"); }));
}

TEST(OnnxTensor, TensorProtoRoundTrip) {
  Tensor t = Tensor::FromVector<int32_t>({2, 2}, {1, -2, 3, -4});
  std::string name;
  Tensor u = TensorFromProtoBytes(TensorToProtoBytes(t, "abc"), &name);
  EXPECT_EQ(name, "abc");
  EXPECT_TRUE(SameTensor(t, u));
}

TEST(OnnxTensor, BackendPbFile) {
  if (!HaveNodeTests()) GTEST_SKIP() << "libonnx-testdata not installed";
  std::string name;
  Tensor t =
      LoadTensorProto(std::string(kNodeTests) + "/test_add/test_data_set_0/input_0.pb", &name);
  EXPECT_EQ(name, "x");
  EXPECT_EQ(t.dtype(), DType::kF32);
  EXPECT_EQ(t.shape(), (Shape{3, 4, 5}));
  EXPECT_TRUE(ThrowsQfError([] { LoadTensorProto("/nonexistent/input_0.pb"); }));
}

// ---- bad model files ------------------------------------------------------------------------

TEST(OnnxBadFile, MissingEmptyAndDirectory) {
  std::string msg;
  EXPECT_TRUE(ThrowsQfError([] { LoadModel("/nonexistent/model.onnx"); }, &msg));
  EXPECT_NE(msg.find("/nonexistent/model.onnx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no such file"), std::string::npos) << msg;
  fs::path dir = TempDir("bad");
  EXPECT_TRUE(ThrowsQfError([&] { LoadModel(dir.string()); }, &msg));
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
  WriteBytes(dir / "empty.onnx", "");
  EXPECT_TRUE(ThrowsQfError([&] { LoadModel((dir / "empty.onnx").string()); }));
  WriteBytes(dir / "text.onnx", "this is not a model\n");
  EXPECT_TRUE(ThrowsQfError([&] { LoadModel((dir / "text.onnx").string()); }));
  fs::remove_all(dir);
}

TEST(OnnxBadFile, EveryTruncationIsAnError) {
  const std::string full = SaveModelToBytes(SmallGraph());
  ASSERT_NO_THROW(LoadModelFromBytes(full));
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_TRUE(ThrowsQfError([&] { LoadModelFromBytes(std::string_view(full).substr(0, n)); }))
        << "prefix of " << n << " of " << full.size() << " bytes loaded";
  }
}

TEST(OnnxBadFile, BackendModelTruncations) {
  if (!HaveNodeTests()) GTEST_SKIP() << "libonnx-testdata not installed";
  for (const char* test : {"test_conv_with_strides_padding", "test_resize_upsample_sizes_nearest",
                           "test_layer_normalization_3d_axis1_epsilon_expanded"}) {
    const std::string full = ModelBytes(test);
    for (size_t n = 0; n < full.size(); ++n)
      EXPECT_TRUE(ThrowsQfError([&] { LoadModelFromBytes(std::string_view(full).substr(0, n)); }))
          << test << ": prefix of " << n << " bytes loaded";
  }
}

// Random byte flips either load (the flip hit something harmless) or give qforge::Error;
// nothing else may escape and nothing may crash. The seed is fixed, so failures reproduce.
TEST(OnnxBadFile, ByteFlipFuzz) {
  std::vector<std::string> seeds = {SaveModelToBytes(SmallGraph())};
  if (HaveNodeTests()) {
    for (const char* t :
         {"test_conv_with_strides_padding", "test_layer_normalization_3d_axis1_epsilon_expanded",
          "test_maxpool_2d_strides", "test_averagepool_2d_pads", "test_convtranspose_pads",
          "test_resize_downsample_scales_linear", "test_slice", "test_reshape_reduced_dims",
          "test_gather_0", "test_constant_pad", "test_split_equal_parts_1d",
          "test_expand_dim_changed", "test_concat_2d_axis_0", "test_transpose_default"})
      seeds.push_back(ModelBytes(t));
  }
  // QF_FUZZ_SEED picks another deterministic sequence for longer manual runs.
  const char* seed_env = std::getenv("QF_FUZZ_SEED");
  std::mt19937 rng(seed_env ? static_cast<uint32_t>(std::atoll(seed_env)) : 20261125u);
  // QF_FUZZ_ITERS raises the per-seed iteration count for longer manual runs.
  const char* env = std::getenv("QF_FUZZ_ITERS");
  const int iters = env ? std::max(1, std::atoi(env)) : 800;
  int loaded = 0, rejected = 0;
  for (const std::string& seed : seeds) {
    for (int iter = 0; iter < iters; ++iter) {
      std::string bytes = seed;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        size_t pos = rng() % bytes.size();
        bytes[pos] = static_cast<char>(rng() % 3 == 0 ? bytes[pos] ^ (1 << (rng() % 8))
                                                      : static_cast<int>(rng() % 256));
      }
      // QF_FUZZ_DUMP=file keeps the case being tried, to reproduce a crash outside the loop.
      if (const char* dump = std::getenv("QF_FUZZ_DUMP")) WriteBytes(dump, bytes);
      try {
        ir::Graph g = LoadModelFromBytes(bytes, "", {}, "fuzz");
        (void)SaveModelToBytes(g);  // whatever loads must also export (or say why not)
        ++loaded;
      } catch (const Error&) {
        ++rejected;
      } catch (const std::exception& e) {
        FAIL() << "iteration " << iter << ": non-qforge exception " << e.what();
      }
    }
  }
  // Both outcomes occur: flips in weight bytes are harmless, flips in structure are not.
  EXPECT_GT(rejected, 0);
  EXPECT_GT(loaded, 0);
  std::cout << "fuzz: " << loaded << " loaded, " << rejected << " rejected\n";
}

// ---- unsupported IR features and opsets -----------------------------------------------------

// Serializes g, lets `edit` change the ModelProto, and loads the result.
template <typename F>
ir::Graph LoadEdited(const ir::Graph& g, F&& edit, std::vector<std::string>* warnings = nullptr) {
  onnx::ModelProto m;
  EXPECT_TRUE(m.ParseFromString(SaveModelToBytes(g)));
  edit(m);
  LoadOptions opts;
  opts.warnings = warnings;
  return LoadModelFromBytes(m.SerializeAsString(), "", opts, "edited");
}

ir::Graph OneNode(const std::string& op, int64_t opset) {
  ir::Graph g;
  g.name = "one";
  g.opset_imports = {{"", opset}};
  g.inputs = {VI("a", DType::kF32, {ir::Dim::Known(2)}), VI("b", DType::kF32, {ir::Dim::Known(2)})};
  g.outputs = {VI("c", DType::kF32, {ir::Dim::Known(2)})};
  ir::Node n;
  n.op_type = op;
  n.inputs = op == "Add" ? std::vector<std::string>{"a", "b"} : std::vector<std::string>{"a"};
  n.outputs = {"c"};
  g.nodes.push_back(n);
  return g;
}

TEST(OnnxOpset, OldOpsetsOnlyWhenUnchanged) {
  auto set_opset = [](int64_t v) {
    return [v](onnx::ModelProto& m) { m.mutable_opset_import(0)->set_version(v); };
  };
  // HardSigmoid-6 is still the current definition at opset 7: accepted, recorded as opset 7.
  ir::Graph g = LoadEdited(OneNode("HardSigmoid", 7), set_opset(6));
  EXPECT_EQ(g.opset(), 7);
  // Add-6 had the legacy broadcast attribute: rejected with a clear message.
  std::string msg;
  EXPECT_TRUE(ThrowsQfError([&] { LoadEdited(OneNode("Add", 7), set_opset(6)); }, &msg));
  EXPECT_NE(msg.find("opset 6"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Add"), std::string::npos) << msg;
  EXPECT_TRUE(ThrowsQfError([&] { LoadEdited(OneNode("Add", 7), set_opset(22)); }, &msg));
  EXPECT_NE(msg.find("opset 22"), std::string::npos) << msg;
  // Opsets newer than libonnx knows load without the checker, with a warning.
  std::vector<std::string> warnings;
  g = LoadEdited(OneNode("Add", 7), set_opset(19), &warnings);
  EXPECT_EQ(g.opset(), 19);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("checker"), std::string::npos);
  EXPECT_TRUE(ThrowsQfError(
      [&] { LoadEdited(OneNode("Add", 13), [](onnx::ModelProto& m) { m.clear_opset_import(); }); },
      &msg));
  EXPECT_NE(msg.find("opset"), std::string::npos) << msg;
}

TEST(OnnxUnsupported, SubgraphStringsSequencesSparse) {
  std::string msg;
  // A subgraph attribute (as in If/Loop).
  EXPECT_TRUE(ThrowsQfError(
      [&] {
        LoadEdited(OneNode("Relu", 13), [](onnx::ModelProto& m) {
          auto* a = m.mutable_graph()->mutable_node(0)->add_attribute();
          a->set_name("body");
          a->set_type(onnx::AttributeProto::GRAPH);
          a->mutable_g()->set_name("sub");
          m.mutable_graph()->mutable_node(0)->set_domain("qforge.test");
          m.add_opset_import()->set_domain("qforge.test");
          m.mutable_opset_import(1)->set_version(1);
        });
      },
      &msg));
  EXPECT_NE(msg.find("subgraph"), std::string::npos) << msg;
  // String-typed graph input.
  EXPECT_TRUE(ThrowsQfError(
      [&] {
        LoadEdited(OneNode("Identity", 13), [](onnx::ModelProto& m) {
          for (auto* v :
               {m.mutable_graph()->mutable_input(0), m.mutable_graph()->mutable_output(0)})
            v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::STRING);
        });
      },
      &msg));
  EXPECT_NE(msg.find("string"), std::string::npos) << msg;
  // Sparse initializer.
  EXPECT_TRUE(ThrowsQfError(
      [&] {
        LoadEdited(OneNode("Relu", 13), [](onnx::ModelProto& m) {
          auto* s = m.mutable_graph()->add_sparse_initializer();
          s->add_dims(4);
          s->mutable_values()->set_name("sp");
          s->mutable_values()->set_data_type(onnx::TensorProto::FLOAT);
          s->mutable_values()->add_dims(1);
          s->mutable_values()->add_float_data(1.0f);
          s->mutable_indices()->set_data_type(onnx::TensorProto::INT64);
          s->mutable_indices()->add_dims(1);
          s->mutable_indices()->add_int64_data(0);
        });
      },
      &msg));
  EXPECT_NE(msg.find("sparse"), std::string::npos) << msg;
  if (HaveNodeTests()) {
    EXPECT_TRUE(ThrowsQfError(
        [&] { LoadModel(std::string(kNodeTests) + "/test_identity_sequence/model.onnx"); }, &msg));
    EXPECT_NE(msg.find("sequence"), std::string::npos) << msg;
  }
}

TEST(OnnxUnsupported, CheckerFailureIsAnError) {
  std::string msg;
  // Nodes out of topological order.
  EXPECT_TRUE(ThrowsQfError(
      [&] {
        ir::Graph g = OneNode("Relu", 13);
        g.outputs[0].name = "d";
        ir::Node n2 = g.nodes[0];
        n2.inputs = {"c"};
        n2.outputs = {"d"};
        g.nodes.insert(g.nodes.begin(), n2);
        LoadModelFromBytes(SaveModelToBytes(g));
      },
      &msg));
  // Unknown op in the default domain: the checker rejects it on export already.
  EXPECT_TRUE(ThrowsQfError([&] { SaveModelToBytes(OneNode("NoSuchOp", 13)); }, &msg));
  EXPECT_NE(msg.find("NoSuchOp"), std::string::npos) << msg;
}

// Inputs that crashed libonnx 1.12 shape inference during fuzzing (SIGFPE on a zero stride,
// SIGSEGV on ConvTranspose weights of rank 1 or of another rank than the input) are rejected
// before it runs.
TEST(OnnxBadFile, ShapeInferenceCrashGuards) {
  std::string msg;
  ir::Graph g = SmallGraph();
  g.nodes[0].attrs["strides"] = std::vector<int64_t>{0, 1};
  EXPECT_TRUE(ThrowsQfError([&] { LoadModelFromBytes(SaveModelToBytes(g)); }, &msg));
  EXPECT_NE(msg.find("'strides' has value 0"), std::string::npos) << msg;
  g = SmallGraph();
  g.nodes[0].attrs["group"] = int64_t{0};
  EXPECT_TRUE(ThrowsQfError([&] { LoadModelFromBytes(SaveModelToBytes(g)); }, &msg));
  EXPECT_NE(msg.find("'group'"), std::string::npos) << msg;
  g = SmallGraph();
  g.nodes[0].op_type = "ConvTranspose";
  g.nodes[0].attrs.erase("kernel_shape");
  g.initializers["w"] = Tensor::FromVector<float>({2}, {1.0f, 2.0f});
  EXPECT_TRUE(ThrowsQfError([&] { LoadModelFromBytes(SaveModelToBytes(g)); }, &msg));
  EXPECT_NE(msg.find("needs rank >= 3"), std::string::npos) << msg;
  g.initializers["w"] = Tensor(DType::kF32, {1, 2, 3});  // rank 3 weight for a rank 4 input
  EXPECT_TRUE(ThrowsQfError([&] { LoadModelFromBytes(SaveModelToBytes(g)); }, &msg));
  EXPECT_NE(msg.find("they must match"), std::string::npos) << msg;
  // A weight declared as a sparse tensor (one flipped byte turns tensor_type into
  // sparse_tensor_type).
  g = SmallGraph();
  g.nodes[0].op_type = "ConvTranspose";
  g.initializers.erase("w");
  g.inputs.push_back(
      VI("w", DType::kF32,
         {ir::Dim::Known(1), ir::Dim::Known(2), ir::Dim::Known(3), ir::Dim::Known(3)}));
  EXPECT_TRUE(ThrowsQfError(
      [&] {
        LoadEdited(g, [](onnx::ModelProto& m) {
          auto* t = m.mutable_graph()->mutable_input(1)->mutable_type();
          onnx::TypeProto_Tensor tt = t->tensor_type();
          t->mutable_sparse_tensor_type()->set_elem_type(tt.elem_type());
          *t->mutable_sparse_tensor_type()->mutable_shape() = tt.shape();
        });
      },
      &msg));
  EXPECT_NE(msg.find("sparse"), std::string::npos) << msg;
  // A Constant whose raw_data is shorter than its dims say (libonnx's constant folding during
  // shape inference read past the end).
  EXPECT_TRUE(ThrowsQfError(
      [&] {
        LoadEdited(SmallGraph(), [](onnx::ModelProto& m) {
          for (auto& n : *m.mutable_graph()->mutable_node())
            if (n.op_type() == "Constant") n.mutable_attribute(0)->mutable_t()->add_dims(1000);
        });
      },
      &msg));
  EXPECT_NE(msg.find("raw_data has 12 bytes"), std::string::npos) << msg;
}

// ---- external data --------------------------------------------------------------------------

// A graph whose initializer "w" (4 floats) is stored in an external file at `location`.
std::string ModelWithExternal(const std::string& location, int64_t offset, int64_t length) {
  ir::Graph g = OneNode("Add", 13);
  g.inputs.pop_back();
  g.nodes[0].inputs = {"a", "w"};
  g.initializers["w"] = Tensor::FromVector<float>({2}, {0, 0});
  onnx::ModelProto m;
  m.ParseFromString(SaveModelToBytes(g));
  auto* t = m.mutable_graph()->mutable_initializer(0);
  t->clear_raw_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto kv = [&](const char* k, const std::string& v) {
    auto* e = t->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  kv("location", location);
  if (offset >= 0) kv("offset", std::to_string(offset));
  if (length >= 0) kv("length", std::to_string(length));
  return m.SerializeAsString();
}

TEST(OnnxExternalData, InsideFolderLoads) {
  fs::path dir = TempDir("ext");
  fs::create_directories(dir / "sub");
  const float vals[4] = {9.0f, 1.5f, -2.5f, 7.0f};
  WriteBytes(dir / "sub" / "w.bin", std::string(reinterpret_cast<const char*>(vals), 16));
  WriteBytes(dir / "m.onnx", ModelWithExternal("sub/w.bin", 4, 8));
  ir::Graph g = LoadModel((dir / "m.onnx").string());
  EXPECT_EQ(g.initializers.at("w").ToFloatVector(), (std::vector<float>{1.5f, -2.5f}));
  // Without offset/length the data runs to the end of the file (and must fit exactly).
  WriteBytes(dir / "w8.bin", std::string(reinterpret_cast<const char*>(vals + 2), 8));
  WriteBytes(dir / "m2.onnx", ModelWithExternal("w8.bin", -1, -1));
  EXPECT_EQ(LoadModel((dir / "m2.onnx").string()).initializers.at("w").ToFloatVector(),
            (std::vector<float>{-2.5f, 7.0f}));
  // From bytes, external data needs an explicit folder.
  EXPECT_TRUE(ThrowsQfError([&] { LoadModelFromBytes(ModelWithExternal("w8.bin", -1, -1)); }));
  EXPECT_NO_THROW(LoadModelFromBytes(ModelWithExternal("w8.bin", -1, -1), dir.string()));
  fs::remove_all(dir);
}

TEST(OnnxExternalData, OutsideFolderOrBadRangeIsAnError) {
  fs::path root = TempDir("ext_bad");
  fs::path dir = root / "model";
  fs::create_directories(dir);
  const std::string eight(8, '\0');
  WriteBytes(root / "secret.bin", eight);
  WriteBytes(dir / "w.bin", eight);
  fs::create_symlink(root / "secret.bin", dir / "link.bin");
  struct Case {
    std::string location;
    int64_t offset, length;
    const char* expect;
  };
  const Case cases[] = {
      {"../secret.bin", -1, -1, "'..'"}, {(root / "secret.bin").string(), -1, -1, "absolute"},
      {"link.bin", -1, -1, "outside"},   {"missing.bin", -1, -1, "not found"},
      {"w.bin", 12, -1, "past the end"}, {"w.bin", 4, 8, "runs past the end"},
      {"w.bin", 0, 4, "does not match"}, {"", -1, -1, "no location"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.location);
    WriteBytes(dir / "m.onnx", ModelWithExternal(c.location, c.offset, c.length));
    std::string msg;
    EXPECT_TRUE(ThrowsQfError([&] { LoadModel((dir / "m.onnx").string()); }, &msg));
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
  }
  fs::remove_all(root);
}

// ---- atomic save ----------------------------------------------------------------------------

TEST(OnnxSave, FailuresLeaveNothingBehind) {
  fs::path dir = TempDir("save");
  const std::string path = (dir / "out.onnx").string();
  WriteBytes(path, "old contents");
  // A graph the checker rejects: error, and the existing file is untouched.
  EXPECT_TRUE(ThrowsQfError([&] { SaveModel(OneNode("NoSuchOp", 13), path); }));
  EXPECT_EQ(ReadBytes(path), "old contents");
  // A folder that does not exist.
  EXPECT_TRUE(ThrowsQfError([&] { SaveModel(SmallGraph(), (dir / "no" / "x.onnx").string()); }));
  // A target that is a directory: rename fails, the temporary is removed.
  fs::create_directories(dir / "isdir");
  EXPECT_TRUE(ThrowsQfError([&] { SaveModel(SmallGraph(), (dir / "isdir").string()); }));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);
  // Success replaces the old file.
  SaveModel(SmallGraph(), path);
  EXPECT_EQ(LoadModel(path).name, "small");
  fs::remove_all(dir);
}

TEST(OnnxReadOps, ListsOpTypes) {
  const std::string bytes = SaveModelToBytes(SmallGraph());
  fs::path dir = TempDir("ops");
  WriteBytes(dir / "m.onnx", bytes);
  auto ops = ReadModelOps((dir / "m.onnx").string());
  ASSERT_EQ(ops.size(), 7u);
  EXPECT_EQ(ops[0], (OpRef{"", "Conv"}));
  EXPECT_EQ(ops[6], (OpRef{"qforge.test", "Custom"}));
  EXPECT_TRUE(ThrowsQfError([&] { ReadModelOps((dir / "missing.onnx").string()); }));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qforge::onnx_io
