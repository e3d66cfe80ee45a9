// ONNX import and export: ModelProto files <-> ir::Graph, and TensorProto (.pb) files -> Tensor.
//
// Protobuf and libonnx types never appear here; everything crosses this boundary as ir::Graph
// or Tensor. Every problem with the input (missing file, truncated or corrupt protobuf, an IR
// feature qforge does not model) is reported as qforge::Error naming the file and the thing.
//
// Opset policy (default domain "ai.onnx"):
//   - 7..21 are accepted.
//   - Below 7: accepted only when every node's op definition is the same at the model's opset
//     and at opset 7 (e.g. GlobalAveragePool-1, HardSigmoid-6); the model is then recorded as
//     opset 7, which has identical semantics. Otherwise rejected (pre-7 ops such as Add-6 had a
//     different broadcasting contract).
//   - Above 21: rejected.
// The system libonnx (1.12) knows opsets up to 17, so the ONNX checker and ONNX shape inference
// run only for models whose default-domain opset is <= 17. Newer models get qforge's own
// structural checks (ir::Verify) and keep whatever value_info the file carries.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "qforge/ir/graph.h"
#include "qforge/tensor/tensor.h"

namespace qforge::onnx_io {

// Lowest and highest default-domain opset accepted by LoadModel.
inline constexpr int64_t kMinOpset = 7;
inline constexpr int64_t kMaxOpset = 21;
// Highest default-domain opset the bundled libonnx checker / shape inference understand.
inline constexpr int64_t kMaxCheckedOpset = 17;
// Largest model file accepted (protobuf cannot parse messages of 2 GiB or more).
inline constexpr int64_t kMaxModelBytes = (int64_t{1} << 31) - 1;

struct LoadOptions {
  bool run_checker = true;   // onnx::checker::check_model (opset <= kMaxCheckedOpset only)
  bool infer_shapes = true;  // onnx::shape_inference::InferShapes (opset <= kMaxCheckedOpset)
  // Non-fatal problems (shape inference failing, checker skipped for a new opset) are appended
  // here. When null they are dropped.
  std::vector<std::string>* warnings = nullptr;
};

// Loads an ONNX model file. External data files are resolved relative to the model's folder and
// must lie inside it (no absolute paths, no "..", no symlink escaping the folder).
// Translation: nodes with typed attributes; initializers as Tensors (raw_data or the typed
// fields, fp16/bf16 bit patterns from int32_data); graph inputs that also have an initializer
// are constants, not inputs; value_info keeps symbolic dims (dim_param) and covers intermediate
// values only. Not kept: metadata_props, graph doc_string, per-node doc strings.
// Rejected with Error: subgraph attributes (If/Loop/Scan), sparse tensors, string / sequence /
// map / optional types, model-local functions, and attributes libonnx's shape inference would
// crash on (non-positive strides/dilations/kernel_shape/group/blocksize, Conv operands of rank
// < 3).
ir::Graph LoadModel(const std::string& path, const LoadOptions& options = {});

// Loads a model from serialized bytes. `base_dir` is where external data files live; when empty,
// a model with external data is rejected. `what` names the source in error messages.
ir::Graph LoadModelFromBytes(std::string_view bytes, const std::string& base_dir = "",
                             const LoadOptions& options = {}, const std::string& what = "<memory>");

// Serializes a graph as an ONNX ModelProto (initializers as raw_data, little-endian).
// The IR version is the one released with the graph's opset (at least 4, so initializers need
// not be listed as graph inputs). For opsets <= kMaxCheckedOpset the result is validated with
// the ONNX checker; a graph that fails it throws Error.
std::string SaveModelToBytes(const ir::Graph& graph);

// Writes SaveModelToBytes(graph) to `path` atomically: a temporary file in the same folder,
// flushed to disk, then renamed over `path`. On any error nothing is left behind and `path` is
// untouched.
void SaveModel(const ir::Graph& graph, const std::string& path);

// Reads one serialized TensorProto (the input_N.pb / output_N.pb files of the ONNX backend
// tests). When `name` is non-null it receives the tensor's name (may be empty).
Tensor LoadTensorProto(const std::string& path, std::string* name = nullptr);
Tensor TensorFromProtoBytes(std::string_view bytes, std::string* name = nullptr,
                            const std::string& what = "<memory>");
// Serializes a tensor as a TensorProto (raw_data).
std::string TensorToProtoBytes(const Tensor& tensor, const std::string& name);

// A node's (domain, op_type) as written in the file, domain "ai.onnx" normalized to "".
struct OpRef {
  std::string domain;
  std::string op_type;
  bool operator==(const OpRef&) const = default;
};
// The op types a model's top-level graph uses, in node order, without checking or translating
// the model (cheap; for tools that triage many files). Throws Error if the file is unreadable.
std::vector<OpRef> ReadModelOps(const std::string& path);

}  // namespace qforge::onnx_io
