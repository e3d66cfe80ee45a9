// ONNX import: ModelProto bytes -> checked, shape-inferred ir::Graph; TensorProto files -> Tensor.
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "onnx/proto_tensor.h"
#include "qforge/onnx/onnx.h"

namespace qforge::onnx_io {

namespace fs = std::filesystem;
using detail::TensorFromProto;
using detail::ValueInfoFromProto;

namespace {

// Reads a whole file, refusing anything larger than `max_bytes`.
std::string ReadFile(const std::string& path, int64_t max_bytes, const char* kind) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st))
    throw Error("cannot open " + std::string(kind) + " '" + path + "': no such file");
  if (!fs::is_regular_file(st))
    throw Error("cannot open " + std::string(kind) + " '" + path + "': not a regular file");
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) throw Error("cannot read " + std::string(kind) + " '" + path + "': " + ec.message());
  if (size > static_cast<uintmax_t>(max_bytes))
    throw Error(std::string(kind) + " '" + path + "' is " + std::to_string(size) +
                " bytes; the limit is " + std::to_string(max_bytes) +
                " (protobuf cannot parse 2 GiB or more; use external data)");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + std::string(kind) + " '" + path + "'");
  std::string bytes(size, '\0');
  if (size && !f.read(bytes.data(), static_cast<std::streamsize>(size)))
    throw Error("cannot read " + std::string(kind) + " '" + path + "'");
  return bytes;
}

void ParseModel(std::string_view bytes, const std::string& what, onnx::ModelProto* m) {
  if (bytes.size() > static_cast<size_t>(kMaxModelBytes))
    throw Error(what + ": model is larger than 2 GiB, which protobuf cannot parse");
  if (!m->ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error(what +
                ": not a valid ONNX model (protobuf parse failed: truncated or corrupt file)");
  if (m->ir_version() <= 0 || !m->has_graph())
    throw Error(what +
                ": not an ONNX model (no ir_version or no graph; truncated or corrupt file?)");
}

std::string NormalizeDomain(const std::string& d) { return d == "ai.onnx" ? std::string() : d; }

std::string NodeWhat(const onnx::NodeProto& n, int index, const std::string& what) {
  return what + ": node " + std::to_string(index) + " (" + n.op_type() + " '" +
         (n.name().empty() ? (n.output_size() ? n.output(0) : std::string("?")) : n.name()) + "')";
}

// Applies a function to every TensorProto in the top-level graph that may carry data:
// initializers and tensor attributes of nodes.
template <typename F>
void ForEachGraphTensor(onnx::GraphProto* g, const std::string& what, F&& f) {
  for (auto& t : *g->mutable_initializer()) f(&t, what + ": initializer '" + t.name() + "'");
  for (int i = 0; i < g->node_size(); ++i) {
    auto* n = g->mutable_node(i);
    for (auto& a : *n->mutable_attribute())
      if (a.has_t()) f(a.mutable_t(), NodeWhat(*n, i, what) + " attribute '" + a.name() + "'");
  }
}

// Checks the opset imports; returns the default-domain opset to record in the IR.
// Pre-7 models are accepted only when each op's definition is unchanged up to opset 7.
int64_t CheckOpsets(const onnx::ModelProto& m, const std::string& what) {
  std::set<std::string> seen;
  int64_t opset = 0;
  for (const auto& o : m.opset_import()) {
    const std::string d = NormalizeDomain(o.domain());
    if (!seen.insert(d).second)
      throw Error(what + ": opset for domain '" + (d.empty() ? "ai.onnx" : d) + "' imported twice");
    if (d.empty()) opset = o.version();
  }
  if (opset == 0) throw Error(what + ": model has no opset import for the default ONNX domain");
  if (opset > kMaxOpset)
    throw Error(what + ": opset " + std::to_string(opset) +
                " is newer than the newest supported (" + std::to_string(kMaxOpset) + ")");
  if (opset < 1) throw Error(what + ": invalid opset " + std::to_string(opset));
  if (opset >= kMinOpset) return opset;
  for (int i = 0; i < m.graph().node_size(); ++i) {
    const auto& n = m.graph().node(i);
    if (!NormalizeDomain(n.domain()).empty()) continue;
    const auto* old_schema =
        onnx::OpSchemaRegistry::Schema(n.op_type(), static_cast<int>(opset), onnx::ONNX_DOMAIN);
    const auto* schema7 =
        onnx::OpSchemaRegistry::Schema(n.op_type(), static_cast<int>(kMinOpset), onnx::ONNX_DOMAIN);
    if (!old_schema)
      throw Error(NodeWhat(n, i, what) + ": op is not defined at opset " + std::to_string(opset));
    if (!schema7 || schema7->SinceVersion() != old_schema->SinceVersion())
      throw Error(NodeWhat(n, i, what) + ": opset " + std::to_string(opset) +
                  " is older than the oldest supported (" + std::to_string(kMinOpset) +
                  ") and this op changed since; re-export the model with opset >= " +
                  std::to_string(kMinOpset));
  }
  return kMinOpset;  // every op means the same at opset 7
}

ir::AttrValue AttrFromProto(const onnx::AttributeProto& a, const std::string& what) {
  const std::string aw = what + " attribute '" + a.name() + "'";
  if (!a.ref_attr_name().empty())
    throw Error(aw + ": attribute references (functions) are not supported");
  switch (a.type()) {
    case onnx::AttributeProto::FLOAT:
      return a.f();
    case onnx::AttributeProto::INT:
      return static_cast<int64_t>(a.i());
    case onnx::AttributeProto::STRING:
      return a.s();
    case onnx::AttributeProto::TENSOR:
      return TensorFromProto(a.t(), aw);
    case onnx::AttributeProto::INTS:
      return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case onnx::AttributeProto::FLOATS:
      return std::vector<float>(a.floats().begin(), a.floats().end());
    case onnx::AttributeProto::STRINGS:
      return std::vector<std::string>(a.strings().begin(), a.strings().end());
    case onnx::AttributeProto::GRAPH:
    case onnx::AttributeProto::GRAPHS:
      throw Error(aw + ": subgraph attributes (If/Loop/Scan bodies) are not supported");
    case onnx::AttributeProto::SPARSE_TENSOR:
    case onnx::AttributeProto::SPARSE_TENSORS:
      throw Error(aw + ": sparse tensors are not supported");
    case onnx::AttributeProto::TENSORS:
      throw Error(aw + ": tensor-list attributes are not supported");
    case onnx::AttributeProto::TYPE_PROTO:
    case onnx::AttributeProto::TYPE_PROTOS:
      throw Error(aw + ": type attributes are not supported");
    default:
      throw Error(aw + ": attribute has no or an unknown type");
  }
}

void Warn(const LoadOptions& o, std::string msg) {
  if (o.warnings) o.warnings->push_back(std::move(msg));
}

// Attributes that ONNX defines as positive everywhere they occur and that libonnx 1.12's shape
// inference divides by without checking (a zero stride raises SIGFPE inside the library).
// Rejecting them up front keeps bad files from crashing the process.
// Also, convolution shape inference indexes weight dims without checking the rank, so Conv and
// ConvTranspose operands of a declared rank below 3, or of different ranks, are rejected here.
// (These guards cover the crashes our fuzzing found; libonnx 1.12 is not hardened beyond.)
void CheckBeforeShapeInference(const onnx::GraphProto& g, const std::string& what) {
  std::map<std::string, int> declared_rank;
  for (const auto& t : g.initializer()) declared_rank[t.name()] = t.dims_size();
  for (const auto* list : {&g.input(), &g.value_info()})
    for (const auto& v : *list)
      if (v.type().has_tensor_type() && v.type().tensor_type().has_shape())
        declared_rank[v.name()] = v.type().tensor_type().shape().dim_size();
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    if (!NormalizeDomain(n.domain()).empty()) continue;  // libonnx has no inference for these
    if (n.op_type() == "Conv" || n.op_type() == "ConvTranspose") {
      for (int k = 0; k < std::min(2, n.input_size()); ++k) {
        auto it = declared_rank.find(n.input(k));
        if (it != declared_rank.end() && it->second < 3)
          throw Error(NodeWhat(n, i, what) + ": input '" + n.input(k) + "' has rank " +
                      std::to_string(it->second) + "; " + n.op_type() + " needs rank >= 3");
      }
      // X and W have the same rank (N x C x D1.. and M x C/group x k1..); ConvTranspose
      // inference reads W's spatial dims for every X spatial axis.
      if (n.input_size() >= 2) {
        auto x = declared_rank.find(n.input(0)), w = declared_rank.find(n.input(1));
        if (x != declared_rank.end() && w != declared_rank.end() && x->second != w->second)
          throw Error(NodeWhat(n, i, what) + ": input '" + n.input(0) + "' has rank " +
                      std::to_string(x->second) + " but weight '" + n.input(1) + "' has rank " +
                      std::to_string(w->second) + "; they must match");
      }
    }
    for (const auto& a : n.attribute()) {
      const std::string& k = a.name();
      if (k == "strides" || k == "dilations" || k == "kernel_shape") {
        for (int64_t v : a.ints())
          if (v <= 0)
            throw Error(NodeWhat(n, i, what) + ": attribute '" + k + "' has value " +
                        std::to_string(v) + "; it must be positive");
      } else if (k == "group" || k == "blocksize") {
        if (a.i() <= 0)
          throw Error(NodeWhat(n, i, what) + ": attribute '" + k + "' has value " +
                      std::to_string(a.i()) + "; it must be positive");
      }
    }
  }
}

// Runs the ONNX checker and shape inference on `m` (in place), where libonnx knows the opset.
void CheckAndInfer(onnx::ModelProto& m, int64_t file_opset, const LoadOptions& options,
                   const std::string& what) {
  if (file_opset > kMaxCheckedOpset) {
    if (options.run_checker || options.infer_shapes)
      Warn(options, what + ": opset " + std::to_string(file_opset) +
                        " is newer than the ONNX checker here knows (" +
                        std::to_string(kMaxCheckedOpset) +
                        "); checker and shape inference skipped");
    return;
  }
  // IR 9/10 only add types and features (fp8, int4, function overloads) that the translation
  // below rejects anyway, so let the 1.12 checker see the IR version it knows.
  if (m.ir_version() > onnx::IR_VERSION) m.set_ir_version(onnx::IR_VERSION);
  if (options.run_checker) {
    try {
      onnx::checker::check_model(m);
    } catch (const std::exception& e) {
      throw Error(what + ": ONNX checker: " + std::string(e.what()));
    }
  }
  if (options.infer_shapes) {
    CheckBeforeShapeInference(m.graph(), what);
    try {
      onnx::ShapeInferenceOptions so(/*check_type=*/false, /*strict_mode=*/0,
                                     /*data_prop=*/true);
      onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(), so);
    } catch (const std::exception& e) {
      Warn(options, what + ": shape inference failed, continuing without it: " + e.what());
    }
  }
}

ir::Graph Translate(const onnx::ModelProto& m, int64_t opset, const std::string& what) {
  const onnx::GraphProto& gp = m.graph();
  if (gp.sparse_initializer_size() > 0)
    throw Error(what + ": sparse initializers are not supported");
  if (m.functions_size() > 0) throw Error(what + ": model-local functions are not supported");

  ir::Graph g;
  g.name = gp.name();
  g.producer_name = m.producer_name();
  g.doc_string = m.doc_string();
  for (const auto& o : m.opset_import()) {
    const std::string d = NormalizeDomain(o.domain());
    g.opset_imports[d] = d.empty() ? opset : o.version();
  }

  for (const auto& t : gp.initializer()) {
    const std::string tw = what + ": initializer '" + t.name() + "'";
    if (t.name().empty()) throw Error(what + ": initializer with an empty name");
    if (g.initializers.count(t.name())) throw Error(tw + " is defined twice");
    g.initializers.emplace(t.name(), TensorFromProto(t, tw));
  }
  for (const auto& in : gp.input()) {
    if (g.is_initializer(in.name())) continue;  // IR < 4 lists initializers as inputs too
    g.inputs.push_back(ValueInfoFromProto(in, what + ": graph input '" + in.name() + "'"));
  }
  for (const auto& out : gp.output())
    g.outputs.push_back(ValueInfoFromProto(out, what + ": graph output '" + out.name() + "'"));

  std::set<std::string> io_names;
  for (const auto& v : g.inputs) io_names.insert(v.name);
  for (const auto& v : g.outputs) io_names.insert(v.name);
  for (const auto& vp : gp.value_info()) {
    if (io_names.count(vp.name()) || g.is_initializer(vp.name()) || vp.name().empty()) continue;
    ir::ValueInfo vi = ValueInfoFromProto(vp, what + ": value '" + vp.name() + "'");
    if (vi.dtype == DType::kUndefined && !vi.has_shape) continue;  // says nothing
    g.value_info[vi.name] = std::move(vi);
  }

  g.nodes.reserve(gp.node_size());
  for (int i = 0; i < gp.node_size(); ++i) {
    const onnx::NodeProto& np = gp.node(i);
    const std::string nw = NodeWhat(np, i, what);
    ir::Node n;
    n.name = np.name();
    n.op_type = np.op_type();
    n.domain = NormalizeDomain(np.domain());
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (const auto& a : np.attribute()) {
      if (a.name().empty()) throw Error(nw + ": attribute with an empty name");
      if (!n.attrs.emplace(a.name(), AttrFromProto(a, nw)).second)
        throw Error(nw + ": attribute '" + a.name() + "' given twice");
    }
    g.nodes.push_back(std::move(n));
  }

  auto problems = ir::Verify(g);
  if (!problems.empty()) throw Error(what + ": invalid graph: " + problems.front());
  return g;
}

}  // namespace

ir::Graph LoadModelFromBytes(std::string_view bytes, const std::string& base_dir,
                             const LoadOptions& options, const std::string& what) {
  onnx::ModelProto m;
  ParseModel(bytes, what, &m);
  const int64_t opset = CheckOpsets(m, what);
  int64_t file_opset = 0;
  for (const auto& o : m.opset_import())
    if (NormalizeDomain(o.domain()).empty()) file_opset = o.version();
  // External data is read first so the checker and shape inference see complete tensors, and
  // every tensor's size is checked against its dims before libonnx reads it.
  ForEachGraphTensor(m.mutable_graph(), what, [&](onnx::TensorProto* t, const std::string& tw) {
    detail::ResolveExternalData(t, base_dir, tw);
    detail::CheckTensorProto(*t, tw);
  });
  // Non-tensor value types are rejected before libonnx sees them: its shape inference reads
  // tensor_type() of sparse-typed inputs and crashes.
  const auto& gp = m.graph();
  for (const auto& v : gp.input()) ValueInfoFromProto(v, what + ": graph input '" + v.name() + "'");
  for (const auto& v : gp.output())
    ValueInfoFromProto(v, what + ": graph output '" + v.name() + "'");
  for (const auto& v : gp.value_info()) ValueInfoFromProto(v, what + ": value '" + v.name() + "'");
  CheckAndInfer(m, file_opset, options, what);
  return Translate(m, opset, what);
}

ir::Graph LoadModel(const std::string& path, const LoadOptions& options) {
  const std::string bytes = ReadFile(path, kMaxModelBytes, "model file");
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  return LoadModelFromBytes(bytes, dir.string(), options, path);
}

Tensor TensorFromProtoBytes(std::string_view bytes, std::string* name, const std::string& what) {
  if (bytes.size() > static_cast<size_t>(kMaxModelBytes))
    throw Error(what + ": tensor file is larger than 2 GiB");
  onnx::TensorProto tp;
  if (!tp.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error(what + ": not a valid TensorProto (truncated or corrupt file)");
  Tensor t = TensorFromProto(tp, what + (tp.name().empty() ? "" : ": tensor '" + tp.name() + "'"));
  if (name) *name = tp.name();
  return t;
}

Tensor LoadTensorProto(const std::string& path, std::string* name) {
  const std::string bytes = ReadFile(path, kMaxModelBytes, "tensor file");
  onnx::TensorProto tp;
  if (!tp.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw Error(path + ": not a valid TensorProto (truncated or corrupt file)");
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const std::string what = path + (tp.name().empty() ? "" : ": tensor '" + tp.name() + "'");
  detail::ResolveExternalData(&tp, dir, what);
  Tensor t = TensorFromProto(tp, what);
  if (name) *name = tp.name();
  return t;
}

std::vector<OpRef> ReadModelOps(const std::string& path) {
  const std::string bytes = ReadFile(path, kMaxModelBytes, "model file");
  onnx::ModelProto m;
  ParseModel(bytes, path, &m);
  std::vector<OpRef> ops;
  for (const auto& n : m.graph().node()) ops.push_back({NormalizeDomain(n.domain()), n.op_type()});
  return ops;
}

}  // namespace qforge::onnx_io
