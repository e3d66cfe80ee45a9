// Tests of the native .qf model file: exact round trip, and clear errors for bad files.
#include "qforge/onnx/qf_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace qforge::onnx_io {
namespace {

// A small lowered-looking graph: int8 weights, a qforge-domain op, a symbolic batch dim.
ir::Graph QuantizedGraph() {
  ir::Graph g;
  g.name = "q";
  g.opset_imports[""] = 13;
  g.opset_imports["qforge"] = 1;
  g.inputs.push_back({"x", DType::kU8, true, {ir::Dim::Symbol("batch"), ir::Dim::Known(4)}});
  g.outputs.push_back({"y", DType::kU8, true, {ir::Dim::Symbol("batch"), ir::Dim::Known(3)}});
  Tensor w(DType::kI8, {3, 4});
  for (int i = 0; i < 12; ++i) w.data<int8_t>()[i] = static_cast<int8_t>(i * 21 - 127);
  g.initializers["w"] = w;
  g.initializers["s"] = Tensor::FromVector<float>({3}, {0.1f, 0.2f, 0.3f});
  g.initializers["b"] = Tensor::FromVector<int32_t>({3}, {-5, 0, 70000});
  ir::Node n;
  n.name = "gemm";
  n.op_type = "QGemm";
  n.domain = "qforge";
  n.inputs = {"x", "s", "", "w", "s", "", "b", "s", ""};
  n.outputs = {"y"};
  n.attrs["transB"] = int64_t{1};
  n.attrs["out_min"] = int64_t{3};
  g.nodes.push_back(n);
  return g;
}

TEST(QfFile, RoundTripIsExact) {
  const ir::Graph g = QuantizedGraph();
  const std::string bytes = SaveQfToBytes(g);
  EXPECT_EQ(bytes.substr(0, 8), std::string(kQfMagic, 8));
  const ir::Graph back = LoadQfFromBytes(bytes);
  EXPECT_EQ(ir::ToText(back), ir::ToText(g));
  EXPECT_EQ(back.initializers.at("w").dtype(), DType::kI8);
  EXPECT_EQ(back.initializers.at("b").data<int32_t>()[2], 70000);
  // int8 weights are stored as one byte each: the file grows by about 12 bytes per 12 weights.
  ir::Graph big = g;
  big.initializers["w"] = Tensor(DType::kI8, {3, 40000});
  EXPECT_LT(SaveQfToBytes(big).size(), bytes.size() + 120000 + 64);
}

TEST(QfFile, RejectsForeignTruncatedAndCorruptFiles) {
  const std::string bytes = SaveQfToBytes(QuantizedGraph());
  auto message = [](const std::string& b) {
    try {
      LoadQfFromBytes(b, "m.qf");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("").find("bad magic"), std::string::npos);
  EXPECT_NE(message("hello world, not a model at all!!").find("bad magic"), std::string::npos);
  EXPECT_NE(message(bytes.substr(0, 20)).find("truncated"), std::string::npos);
  for (size_t cut : {size_t{32}, size_t{33}, bytes.size() / 2, bytes.size() - 1})
    EXPECT_NE(message(bytes.substr(0, cut)).find("truncated"), std::string::npos) << cut;
  EXPECT_NE(message(bytes + "x").find("unexpected bytes"), std::string::npos);
  std::string flipped = bytes;
  flipped[bytes.size() - 10] ^= 0x40;
  EXPECT_NE(message(flipped).find("checksum"), std::string::npos);
  std::string newer = bytes;
  newer[8] = 2;
  EXPECT_NE(message(newer).find("version 2"), std::string::npos);
  std::string flags = bytes;
  flags[12] = 1;
  EXPECT_NE(message(flags).find("flags"), std::string::npos);
  // Every message names the file.
  EXPECT_EQ(message(flipped).rfind("m.qf", 0), 0u);
  // Any single flipped byte anywhere is caught (never a crash, never a silent wrong model).
  for (size_t i = 0; i < bytes.size(); i += 7) {
    std::string b = bytes;
    b[i] ^= 0x01;
    EXPECT_NE(message(b), "no error") << i;
  }
}

TEST(QfFile, SaveAndLoadAFile) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("qf_file_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "m.qf").string();
  SaveQf(QuantizedGraph(), path);
  EXPECT_TRUE(IsQfFile(path));
  EXPECT_EQ(ir::ToText(LoadQf(path)), ir::ToText(QuantizedGraph()));
  EXPECT_THROW(LoadQf((dir / "missing.qf").string()), Error);
  EXPECT_FALSE(IsQfFile((dir / "missing.qf").string()));
  // Only the file itself is left (no temporaries).
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace qforge::onnx_io
