// Pass: run chains of integer ops channels-last (NHWC), like ONNX Runtime's NHWC transformer
// for QLinearConv. Between QuantizeLinear and DequantizeLinear the int8 activations of a
// convolutional network then stay [N, H, W, C]: the convolution kernels read pixels x channels
// rows directly (no per-op transposes) and write them back the same way.
//
// Rewrites (all bit-exact: the same integer arithmetic, only the memory order changes):
//   QLinearConv (2-D, constant rank-4 weight)   -> qforge::QLinearConv, channels_last = 1
//   com.microsoft QLinearGlobalAveragePool / QLinearAveragePool (rank 4)   -> channels_last = 1
//   com.microsoft QLinearAdd / QLinearMul (both data inputs NHWC; broadcasting over the
//     permuted dims of two rank-4 operands is the permuted broadcast, so they are layout-free)
//   com.microsoft QLinearConcat on the channel axis (all data inputs NHWC) -> axis 3
//   MaxPool (2-D, explicit pads, no ceil_mode / dilation) of a chain value -> qforge::MaxPool
// A value entering a chain from NCHW gets one Transpose (perm 0,2,3,1); a chain value read by an
// NCHW consumer or a graph output gets one Transpose back (perm 0,3,1,2). A Flatten (axis 1)
// after a global average pool reads the [N, 1, 1, C] pooled value directly ([N, C] either way),
// and a per-tensor QuantizeLinear feeding only a chain becomes qforge::QuantizeLinear with
// channels_last = 1 (quantize and transpose in one pass).
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "qforge/passes/passes.h"

namespace qforge::passes {

namespace {

const std::vector<int64_t> kToNhwc = {0, 2, 3, 1};
const std::vector<int64_t> kToNchw = {0, 3, 1, 2};

bool IsOp(const ir::Node& n, const char* domain, const char* op) {
  return n.domain == domain && n.op_type == op;
}

// Data inputs (activations) of a layout-changing candidate, by input index.
std::vector<size_t> DataInputs(const ir::Node& n) {
  if (IsOp(n, "com.microsoft", "QLinearAdd") || IsOp(n, "com.microsoft", "QLinearMul"))
    return {0, 3};
  if (IsOp(n, "com.microsoft", "QLinearConcat")) {
    std::vector<size_t> r;
    for (size_t i = 2; i < n.inputs.size(); i += 3) r.push_back(i);
    return r;
  }
  return {0};
}

bool KnownRank4(const ir::Graph& g, const std::string& v) {
  const std::optional<ir::ValueInfo> vi = g.FindValueInfo(v);
  return vi && vi->has_shape && vi->dims.size() == 4;
}

// A 2-D QLinearConv with a constant rank-4 weight (the kernels' NHWC drivers).
bool ConvCandidate(const ir::Graph& g, const ir::Node& n) {
  if (!(IsOp(n, "", "QLinearConv") || IsOp(n, "qforge", "QLinearConv"))) return false;
  if (n.attr_int("channels_last", 0) != 0 || n.outputs.size() != 1 || !n.has_input(3)) return false;
  const auto w = g.initializers.find(n.inputs[3]);
  return w != g.initializers.end() && w->second.rank() == 4;
}

ir::ValueInfo Permuted(const ir::Graph& g, const std::string& from, const std::string& name,
                       const std::vector<int64_t>& perm) {
  ir::ValueInfo vi;
  if (std::optional<ir::ValueInfo> f = g.FindValueInfo(from)) vi = *f;
  vi.name = name;
  if (vi.has_shape && vi.dims.size() == 4) {
    const std::vector<ir::Dim> d = vi.dims;
    for (size_t i = 0; i < 4; ++i) vi.dims[i] = d[perm[i]];
  } else {
    vi.has_shape = false;
    vi.dims.clear();
  }
  return vi;
}

ir::Node MakeTranspose(const std::string& name, const std::string& in, const std::string& out,
                       const std::vector<int64_t>& perm) {
  ir::Node t;
  t.name = name;
  t.op_type = "Transpose";
  t.inputs = {in};
  t.outputs = {out};
  t.attrs["perm"] = perm;
  return t;
}

}  // namespace

int ChannelsLastInt8(ir::Graph& g) {
  // nhwc[v] = the name of the NHWC version of NCHW value v (chain outputs and transposed inputs).
  std::map<std::string, std::string> nhwc;
  std::set<std::string> pooled;  // NHWC names of global average pool outputs ([N, 1, 1, C])
  std::vector<ir::Node> out;
  int rewrites = 0;
  const std::vector<ir::Node> nodes = g.nodes;
  // Original value name -> the NCHW name it keeps; chain outputs are renamed, so an NCHW reader
  // needs a transpose back, made once at the first such reader.
  std::set<std::string> back_made, chain_out;
  auto nchw_use = [&](const std::string& v) {
    // v is a chain output (nhwc[v] holds its data): make v itself by a transpose back.
    if (back_made.insert(v).second)
      out.push_back(MakeTranspose(v + "/to_nchw", nhwc.at(v), v, kToNchw));
  };
  for (const ir::Node& n0 : nodes) {
    ir::Node n = n0;
    bool conv = ConvCandidate(g, n);
    bool pool = (IsOp(n, "com.microsoft", "QLinearGlobalAveragePool") ||
                 IsOp(n, "com.microsoft", "QLinearAveragePool")) &&
                n.attr_int("channels_last", 0) == 0 && n.outputs.size() == 1 && n.has_input(0) &&
                (nhwc.count(n.inputs[0]) || KnownRank4(g, n.inputs[0]));
    bool binary =
        (IsOp(n, "com.microsoft", "QLinearAdd") || IsOp(n, "com.microsoft", "QLinearMul")) &&
        n.outputs.size() == 1 && n.has_input(0) && n.has_input(3) && nhwc.count(n.inputs[0]) &&
        nhwc.count(n.inputs[3]);
    // ONNX MaxPool of a chain value (8-bit: every chain op writes 8-bit codes) in the form
    // qforge::MaxPool supports.
    const bool maxpool =
        IsOp(n, "", "MaxPool") && n.has_input(0) && chain_out.count(n.inputs[0]) &&
        n.outputs.size() == 1 && n.attr_ints("kernel_shape", {}).size() == 2 &&
        n.attr_string("auto_pad", "NOTSET") == "NOTSET" && n.attr_int("ceil_mode", 0) == 0 &&
        n.attr_ints("dilations", {1, 1}) == std::vector<int64_t>{1, 1} &&
        n.attr_ints("strides", {1, 1}).size() == 2 && n.attr_ints("pads", {0, 0, 0, 0}).size() == 4;
    bool concat = false;
    if (IsOp(n, "com.microsoft", "QLinearConcat") && n.outputs.size() == 1 &&
        n.inputs.size() >= 5 && (n.inputs.size() - 2) % 3 == 0) {
      const int64_t axis = n.attr_int("axis", 0);
      concat = axis == 1 || axis == -3;
      bool any = false;
      for (size_t i : DataInputs(n)) {
        any |= nhwc.count(n.inputs[i]) > 0;
        concat &= nhwc.count(n.inputs[i]) || KnownRank4(g, n.inputs[i]);
      }
      concat &= any;
    }
    if (conv || pool || binary || concat || maxpool) {
      for (size_t i : DataInputs(n)) {
        const std::string v = n.inputs[i];
        if (!nhwc.count(v)) {  // enters the chain: one transpose, shared by later readers
          const std::string t = ir::UniqueValueName(g, v + "/nhwc");
          g.value_info[t] = Permuted(g, v, t, kToNhwc);
          out.push_back(MakeTranspose(v + "/to_nhwc", v, t, kToNhwc));
          nhwc[v] = t;
        }
        n.inputs[i] = nhwc.at(v);
      }
      if (conv || maxpool) n.domain = "qforge";
      if (conv || pool || maxpool) n.attrs["channels_last"] = int64_t{1};
      if (maxpool) n.attrs.erase("storage_order");
      if (concat) n.attrs["axis"] = int64_t{3};
      const std::string y = n.outputs[0];
      const std::string t = ir::UniqueValueName(g, y + "/nhwc");
      g.value_info[t] = Permuted(g, y, t, kToNhwc);
      n.outputs[0] = t;
      nhwc[y] = t;
      chain_out.insert(y);
      if (IsOp(n, "com.microsoft", "QLinearGlobalAveragePool")) pooled.insert(t);
      out.push_back(std::move(n));
      ++rewrites;
      continue;
    }
    // An NCHW reader of chain values. Flatten (axis 1) of a globally pooled [N, 1, 1, C] value
    // gives [N, C] from either layout: it reads the NHWC value as it is.
    for (std::string& v : n.inputs) {
      if (!chain_out.count(v)) continue;  // still NCHW as produced
      const std::string& t = nhwc.at(v);
      if (IsOp(n, "", "Flatten") && n.attr_int("axis", 1) == 1 && pooled.count(t)) {
        v = t;
        continue;
      }
      nchw_use(v);
    }
    out.push_back(std::move(n));
  }
  // Graph outputs produced inside a chain.
  for (const ir::ValueInfo& o : g.outputs)
    if (chain_out.count(o.name)) nchw_use(o.name);
  if (rewrites == 0) return 0;
  // A per-tensor QuantizeLinear whose only reader is a transpose into a chain writes NHWC
  // directly: qforge::QuantizeLinear, channels_last = 1 (one pass over the model input).
  for (size_t ti = 0; ti < out.size(); ++ti) {
    const ir::Node& t = out[ti];
    if (!IsOp(t, "", "Transpose") || t.attr_ints("perm", {}) != kToNhwc) continue;
    const std::string& v = t.inputs[0];
    int qi = -1, readers = 0;
    for (size_t k = 0; k < out.size(); ++k) {
      for (const std::string& o : out[k].outputs)
        if (o == v) qi = static_cast<int>(k);
      for (const std::string& in : out[k].inputs) readers += in == v;
    }
    if (qi < 0 || readers != 1 || ir::IsGraphOutput(g, v)) continue;
    ir::Node& q = out[qi];
    const auto scale = q.has_input(1) ? g.initializers.find(q.inputs[1]) : g.initializers.end();
    if (!IsOp(q, "", "QuantizeLinear") || scale == g.initializers.end() ||
        scale->second.numel() != 1 || scale->second.dtype() != DType::kF32 ||
        q.attr_int("block_size", 0) != 0 || q.attr_int("output_dtype", 0) != 0 ||
        !KnownRank4(g, q.inputs[0]))
      continue;
    q.domain = "qforge";
    q.attrs.clear();
    q.attrs["channels_last"] = int64_t{1};
    q.outputs[0] = t.outputs[0];
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(ti));
    --ti;
  }
  g.nodes = std::move(out);
  ir::RemoveUnusedValues(g);
  return rewrites;
}

}  // namespace qforge::passes
