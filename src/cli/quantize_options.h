// Options of `qforge quantize`, shared by the per-method implementations
// (cmd_quantize.cc: static and dispatch; cmd_quantize_dynamic.cc; cmd_quantize_weight_only.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/data/fashion_mnist.h"

namespace qforge::cli {

struct QuantizeCliOptions {
  std::string model;
  std::string method = "static";  // static | dynamic | weight-only
  std::string output;             // OUT.onnx or OUT.qf
  // static
  std::string calib;
  bool per_tensor = false;
  std::string activation_dtype = "uint8";
  bool symmetric_activations = false;
  std::string target = "auto";
  bool keep_fp32_outputs = false;
  bool auto_exclude = false;  // keep the most sensitive layers in fp32 (needs --data)
  double budget = 0.5;        // auto-exclude: top-1 points below fp32 allowed
  int64_t eval_limit = -1;    // auto-exclude: first N test images (-1: all)
  // dynamic
  std::vector<std::string> ops;            // op types; empty: MatMul, Gemm
  std::string granularity = "per-tensor";  // per-tensor | per-row
  // weight-only
  int bits = 4;  // 8 or 4
  int64_t group_size = 32;
  bool asymmetric_weights = false;
  std::string scale_dtype = "fp16";  // fp16 | fp32
  // all methods
  std::vector<std::string> exclude;
  std::string data;
  std::string data_dir = std::string(data::kFashionMnistDir);
  int64_t samples = 256;
  int64_t batch = 64;
  int threads = 0;
  bool json = false;
};

int RunQuantizeDynamic(const QuantizeCliOptions& o);     // cmd_quantize_dynamic.cc
int RunQuantizeWeightOnly(const QuantizeCliOptions& o);  // cmd_quantize_weight_only.cc

bool EndsWith(const std::string& s, const std::string& suffix);
int64_t FileBytes(const std::string& path);  // -1 if it cannot be read

}  // namespace qforge::cli
