// ONNX export: ir::Graph -> ModelProto bytes (checked) and an atomic file write.
#include <fcntl.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>

#include "onnx/proto_tensor.h"
#include "qforge/onnx/onnx.h"

namespace qforge::onnx_io {

namespace fs = std::filesystem;

namespace {

// The IR version ONNX released together with each default-domain opset, but at least 4 so
// initializers need not be repeated as graph inputs (IR 3 requires that).
int64_t IrVersionForOpset(int64_t opset) {
  if (opset <= 9) return 4;
  if (opset == 10) return 5;
  if (opset == 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

bool IsFp8(DType t) { return t == DType::kF8E4M3 || t == DType::kF8E5M2; }

void AttrToProto(const std::string& name, const ir::AttrValue& v, onnx::AttributeProto* a) {
  a->set_name(name);
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          a->set_type(onnx::AttributeProto::INT);
          a->set_i(x);
        } else if constexpr (std::is_same_v<T, float>) {
          a->set_type(onnx::AttributeProto::FLOAT);
          a->set_f(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          a->set_type(onnx::AttributeProto::STRING);
          a->set_s(x);
        } else if constexpr (std::is_same_v<T, Tensor>) {
          a->set_type(onnx::AttributeProto::TENSOR);
          detail::TensorToProto(x, "", a->mutable_t());
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          a->set_type(onnx::AttributeProto::INTS);
          for (int64_t e : x) a->add_ints(e);
        } else if constexpr (std::is_same_v<T, std::vector<float>>) {
          a->set_type(onnx::AttributeProto::FLOATS);
          for (float e : x) a->add_floats(e);
        } else {
          static_assert(std::is_same_v<T, std::vector<std::string>>);
          a->set_type(onnx::AttributeProto::STRINGS);
          for (const auto& e : x) a->add_strings(e);
        }
      },
      v);
}

void BuildModel(const ir::Graph& g, onnx::ModelProto* m) {
  const int64_t opset = g.opset();
  if (opset <= 0)
    throw Error("SaveModel: graph '" + g.name + "' has no opset for the default domain");
  bool uses_fp8 = false;
  for (const auto& [k, t] : g.initializers) uses_fp8 |= IsFp8(t.dtype());
  for (const auto& v : g.inputs) uses_fp8 |= IsFp8(v.dtype);
  for (const auto& v : g.outputs) uses_fp8 |= IsFp8(v.dtype);
  for (const auto& [k, v] : g.value_info) uses_fp8 |= IsFp8(v.dtype);
  int64_t ir = IrVersionForOpset(opset);
  if (uses_fp8 && ir < 9) ir = 9;  // fp8 element types arrived with IR 9

  m->set_ir_version(ir);
  m->set_producer_name(g.producer_name.empty() ? "qforge" : g.producer_name);
  if (!g.doc_string.empty()) m->set_doc_string(g.doc_string);
  for (const auto& [domain, version] : g.opset_imports) {
    auto* o = m->add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
  }

  onnx::GraphProto* gp = m->mutable_graph();
  gp->set_name(g.name.empty() ? "qforge_graph" : g.name);
  for (const auto& n : g.nodes) {
    onnx::NodeProto* np = gp->add_node();
    if (!n.name.empty()) np->set_name(n.name);
    np->set_op_type(n.op_type);
    if (!n.domain.empty()) np->set_domain(n.domain);
    for (const auto& i : n.inputs) np->add_input(i);
    for (const auto& o : n.outputs) np->add_output(o);
    for (const auto& [k, v] : n.attrs) AttrToProto(k, v, np->add_attribute());
  }
  for (const auto& [name, t] : g.initializers)
    detail::TensorToProto(t, name, gp->add_initializer());
  for (const auto& v : g.inputs) {
    if (v.dtype == DType::kUndefined)
      throw Error("SaveModel: graph input '" + v.name + "' has no element type");
    detail::ValueInfoToProto(v, gp->add_input());
  }
  for (const auto& v : g.outputs) {
    if (v.dtype == DType::kUndefined)
      throw Error("SaveModel: graph output '" + v.name + "' has no element type");
    detail::ValueInfoToProto(v, gp->add_output());
  }
  for (const auto& [name, v] : g.value_info) {
    if (v.dtype == DType::kUndefined && !v.has_shape) continue;  // nothing known: omit
    detail::ValueInfoToProto(v, gp->add_value_info());
  }

  // Check what libonnx can check: it knows opsets <= 17 and IR <= its own IR_VERSION.
  if (opset <= kMaxCheckedOpset && ir <= onnx::IR_VERSION) {
    try {
      onnx::checker::check_model(*m);
    } catch (const std::exception& e) {
      throw Error("SaveModel: exported graph '" + g.name + "' fails the ONNX checker: " + e.what());
    }
  }
}

// Writes all of `data` to fd, retrying short writes and EINTR.
bool WriteAll(int fd, const std::string& data) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t w = ::write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

std::string SaveModelToBytes(const ir::Graph& graph) {
  onnx::ModelProto m;
  BuildModel(graph, &m);
  if (m.ByteSizeLong() > static_cast<size_t>(INT_MAX))
    throw Error("SaveModel: graph '" + graph.name +
                "' is larger than 2 GiB, which a single protobuf cannot hold");
  std::string out;
  if (!m.SerializeToString(&out)) throw Error("SaveModel: protobuf serialization failed");
  return out;
}

void SaveModel(const ir::Graph& graph, const std::string& path) {
  const std::string bytes = SaveModelToBytes(graph);  // all checks happen before touching disk
  const fs::path target(path);
  if (target.filename().empty()) throw Error("SaveModel: '" + path + "' is not a file path");
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::string tmp_name = ".";  // hidden temporary next to the target, same file system
  tmp_name.append(target.filename().string()).append(".tmp.XXXXXX");
  std::string tmpl = (dir / tmp_name).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0)
    throw Error("SaveModel: cannot create a file in '" + dir.string() +
                "': " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    ::unlink(tmpl.c_str());
    throw Error("SaveModel: " + what + " '" + path + "': " + reason);
  };
  if (::fchmod(fd, 0644) != 0) fail("cannot set permissions of");
  if (!WriteAll(fd, bytes)) fail("cannot write");
  if (::fsync(fd) != 0) fail("cannot flush");
  const int rc = ::close(fd);
  fd = -1;
  if (rc != 0) fail("cannot close");
  if (::rename(tmpl.c_str(), path.c_str()) != 0) fail("cannot rename temporary file to");
}

std::string TensorToProtoBytes(const Tensor& tensor, const std::string& name) {
  onnx::TensorProto tp;
  detail::TensorToProto(tensor, name, &tp);
  std::string out;
  if (!tp.SerializeToString(&out)) throw Error("tensor '" + name + "': serialization failed");
  return out;
}

}  // namespace qforge::onnx_io
