// LowerDynamicQuantizeGru: qforge::DynamicQuantizeGRU -> standard ONNX ops, unrolled over time
// (contract in include/qforge/passes/rnn_onnx.h).
#include "qforge/passes/rnn_onnx.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace qforge::passes {

namespace {

class GruLowering {
 public:
  // names: shared by every GRU lowered in one graph (their new values are not in g until the
  // end).
  GruLowering(ir::Graph& g, const ir::Node& n, ir::ValueNamer& names)
      : g_(g), n_(n), names_(names) {}

  // Appends the replacement nodes of n_ to *out; throws Error when n_ has no standard form.
  void Run(std::vector<ir::Node>* out) {
    out_ = out;
    Check();
    const Tensor& W = Const(1, DType::kI8);
    const Tensor& R = Const(2, DType::kI8);
    const Tensor& Ws = Const(6, DType::kF32);
    const Tensor& Rs = Const(8, DType::kF32);
    for (size_t zp : {size_t{7}, size_t{9}}) {
      const Tensor& z = Const(zp, DType::kI8);
      for (int8_t v : z.span<int8_t>())
        if (v != 0) Fail("has non-zero weight zero points");
    }
    const int64_t I = W.dim(1), H = R.dim(1), G3 = 3 * H;
    if (W.shape() != Shape{1, I, G3} || R.shape() != Shape{1, H, G3} || Ws.numel() != G3 ||
        Rs.numel() != G3)
      Fail("has weights of unexpected shapes");
    const bool lbr = n_.attr_int("linear_before_reset", 0) != 0;
    std::vector<float> bias(static_cast<size_t>(2 * G3), 0.0f);
    if (n_.has_input(3)) {
      const Tensor& b = Const(3, DType::kF32);
      if (b.numel() != 2 * G3) Fail("has a bias of unexpected shape");
      std::copy_n(b.data<float>(), 2 * G3, bias.data());
    }
    // Column block g (z 0, r 1, h 2) of a [1, K, 3H] weight as [K, H], and of a scale.
    const auto block = [&](const Tensor& w, int gate) {
      const int64_t K = w.dim(1);
      Tensor t(DType::kI8, {K, H});
      for (int64_t k = 0; k < K; ++k)
        std::copy_n(w.data<int8_t>() + k * G3 + gate * H, H, t.data<int8_t>() + k * H);
      return t;
    };
    const auto scales = [&](const Tensor& s, int gate) {
      return Tensor::FromVector<float>(
          {H}, std::vector<float>(s.data<float>() + gate * H, s.data<float>() + (gate + 1) * H));
    };
    const std::string base = n_.name.empty() ? "gru" : n_.name;
    const char* gate_names[] = {"z", "r", "h"};
    std::string xg[3], rw[3], rsc[3];
    // Input projection of all steps, one quantization of X (as the qforge op).
    const std::string xq = Name("x_quantized"), xs = Name("x_scale"), xz = Name("x_zero_point");
    Add("DynamicQuantizeLinear", "x/DynamicQuantizeLinear", {n_.inputs[0]}, {xq, xs, xz});
    for (int gate = 0; gate < 3; ++gate) {
      const std::string gn = gate_names[gate];
      const std::string wq = Init("W_" + gn, block(W, gate));
      const std::string ws = Init("W_" + gn + "_scale", scales(Ws, gate));
      rw[gate] = Init("R_" + gn, block(R, gate));
      rsc[gate] = Init("R_" + gn + "_scale", scales(Rs, gate));
      // The projection bias: Wb + Rb (the qforge op's proj_bias, same float adds).
      std::vector<float> pb(static_cast<size_t>(H));
      for (int64_t j = 0; j < H; ++j)
        pb[j] = bias[gate * H + j] + (lbr && gate == 2 ? 0.0f : bias[G3 + gate * H + j]);
      const std::string b = Init("x_" + gn + "_bias", Tensor::FromVector<float>({H}, pb));
      xg[gate] = Dequantize("x_" + gn, Product("x_" + gn, xq, wq, xz), xs, ws, b);
    }
    std::string rbh;
    if (lbr)
      rbh = Init("Rb_h", Tensor::FromVector<float>(
                             {H}, std::vector<float>(bias.begin() + G3 + 2 * H, bias.end())));
    const std::string one = Init("one", Tensor::Scalar<float>(1.0f));
    const std::string row_shape = Init("state_shape", Tensor::FromVector<int64_t>({2}, {-1, H}));

    // The running state [B, H]; empty while it is the implicit zero initial state.
    std::string h;
    if (n_.has_input(5)) {
      h = Name("h_init");
      Add("Reshape", "h_init/Reshape", {n_.inputs[5], row_shape}, {h});
    }
    const bool reverse = n_.attr_string("direction", "forward") == "reverse";
    std::vector<std::string> states(static_cast<size_t>(T_));
    for (int64_t step = 0; step < T_; ++step) {
      const int64_t t = reverse ? T_ - 1 - step : step;
      const std::string st = "t" + std::to_string(t);
      const std::string index = Init(st + "_index", Tensor::Scalar<int64_t>(t));
      std::string x[3];
      for (int gate = 0; gate < 3; ++gate) {
        x[gate] = Name(st + "_x_" + gate_names[gate]);
        ir::Node gather = ir::MakeNode("Gather", st + "/Gather_" + gate_names[gate],
                                       {xg[gate], index}, {x[gate]});
        gather.attrs["axis"] = int64_t{0};
        out_->push_back(gather);
      }
      std::string hq, hs, hz;
      if (!h.empty()) {
        hq = Name(st + "_h_quantized");
        hs = Name(st + "_h_scale");
        hz = Name(st + "_h_zero_point");
        Add("DynamicQuantizeLinear", st + "/h/DynamicQuantizeLinear", {h}, {hq, hs, hz});
      }
      std::string zr[2];
      for (int gate = 0; gate < 2; ++gate) {
        const std::string gn = st + "_" + gate_names[gate];
        std::string pre = x[gate];
        if (!h.empty()) {
          const std::string rec =
              Dequantize(gn + "_rec", Product(gn + "_rec", hq, rw[gate], hz), hs, rsc[gate], "");
          pre = Name(gn + "_pre");
          Add("Add", gn + "/Add", {x[gate], rec}, {pre});
        }
        zr[gate] = Name(gn);
        Add("Sigmoid", gn + "/Sigmoid", {pre}, {zr[gate]});
      }
      const std::string hn = st + "_h";
      std::string pre_h = x[2];
      if (lbr) {
        // r . (h R_h' + Rb_h); with h = 0 that is r . Rb_h.
        std::string rec = rbh;
        if (!h.empty())
          rec = Dequantize(hn + "_rec", Product(hn + "_rec", hq, rw[2], hz), hs, rsc[2], rbh);
        const std::string gated = Name(hn + "_gated");
        Add("Mul", hn + "/Reset", {zr[1], rec}, {gated});
        pre_h = Name(hn + "_pre");
        Add("Add", hn + "/Add", {x[2], gated}, {pre_h});
      } else if (!h.empty()) {
        // (r . h) R_h', its own quantization.
        const std::string rh = Name(hn + "_reset");
        Add("Mul", hn + "/Reset", {zr[1], h}, {rh});
        const std::string q = Name(hn + "_reset_quantized"), s = Name(hn + "_reset_scale"),
                          z = Name(hn + "_reset_zero_point");
        Add("DynamicQuantizeLinear", hn + "/reset/DynamicQuantizeLinear", {rh}, {q, s, z});
        const std::string rec =
            Dequantize(hn + "_rec", Product(hn + "_rec", q, rw[2], z), s, rsc[2], "");
        pre_h = Name(hn + "_pre");
        Add("Add", hn + "/Add", {x[2], rec}, {pre_h});
      }
      const std::string cand = Name(hn + "_candidate");
      Add("Tanh", hn + "/Tanh", {pre_h}, {cand});
      // h = (1 - z) . n + z . h
      const std::string keep = Name(hn + "_one_minus_z");
      Add("Sub", hn + "/OneMinusZ", {one, zr[0]}, {keep});
      const std::string fresh = Name(hn + "_fresh");
      Add("Mul", hn + "/Fresh", {keep, cand}, {fresh});
      std::string next = fresh;
      if (!h.empty()) {
        const std::string old = Name(hn + "_old");
        Add("Mul", hn + "/Old", {zr[0], h}, {old});
        next = Name(hn + "_next");
        Add("Add", hn + "/Next", {fresh, old}, {next});
      }
      h = next;
      states[t] = h;
    }
    // Outputs: Y [T, 1, B, H] and Y_h [1, B, H].
    if (n_.outputs.size() > 0 && !n_.outputs[0].empty()) {
      const std::string shape4 =
          Init("y_step_shape", Tensor::FromVector<int64_t>({4}, {1, 1, -1, H}));
      std::vector<std::string> parts;
      for (int64_t t = 0; t < T_; ++t) {
        parts.push_back(Name("t" + std::to_string(t) + "_y"));
        Add("Reshape", "t" + std::to_string(t) + "/Y", {states[t], shape4}, {parts.back()});
      }
      ir::Node cat = ir::MakeNode("Concat", base + "/Y", parts, {n_.outputs[0]});
      cat.attrs["axis"] = int64_t{0};
      out_->push_back(cat);
    }
    if (n_.outputs.size() > 1 && !n_.outputs[1].empty()) {
      const std::string shape3 = Init("y_h_shape", Tensor::FromVector<int64_t>({3}, {1, -1, H}));
      out_->push_back(ir::MakeNode("Reshape", base + "/Y_h", {h, shape3}, {n_.outputs[1]}));
    }
  }

 private:
  [[noreturn]] void Fail(const std::string& why) const {
    throw Error(n_.Describe() + " " + why +
                ": it has no standard ONNX form (write OUT.qf, or keep GRU fp32 with --ops "
                "MatMul Gemm LSTM)");
  }

  void Check() {
    const auto lower = [](std::string s) {
      for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return s;
    };
    if (n_.inputs.size() != 10 || !n_.has_input(0)) Fail("is malformed");
    if (n_.attr_int("per_row", 0) != 0) Fail("quantizes activations per row");
    if (n_.attr_int("layout", 0) != 0) Fail("uses layout 1");
    const std::string dir = n_.attr_string("direction", "forward");
    if (dir != "forward" && dir != "reverse") Fail("is " + dir);
    if (n_.has_input(4)) Fail("has sequence_lens");
    if (n_.has_attr("clip")) Fail("has clip");
    if (n_.has_attr("activations")) {
      const auto& a = n_.attr_strings("activations");
      if (a.size() != 2 || lower(a[0]) != "sigmoid" || lower(a[1]) != "tanh")
        Fail("has activations other than Sigmoid, Tanh");
    }
    const auto vi = g_.FindValueInfo(n_.inputs[0]);
    if (!vi || !vi->has_shape || vi->dims.size() != 3 || vi->dims[0].value <= 0)
      Fail("has an input X whose number of time steps is not known");
    T_ = vi->dims[0].value;
  }

  const Tensor& Const(size_t i, DType dtype) const {
    if (!n_.has_input(i)) Fail("lacks input " + std::to_string(i));
    auto it = g_.initializers.find(n_.inputs[i]);
    if (it == g_.initializers.end() || it->second.dtype() != dtype)
      Fail("input '" + n_.inputs[i] + "' is not a " + std::string(DTypeName(dtype)) + " constant");
    return it->second;
  }

  std::string Name(const std::string& suffix) {
    const std::string base = (n_.name.empty() ? "gru" : n_.name) + "_" + suffix;
    return names_.Fresh(base);
  }
  std::string Init(const std::string& suffix, Tensor t) {
    const std::string name = Name(suffix);
    g_.initializers[name] = std::move(t);
    return name;
  }
  void Add(const std::string& op, const std::string& name, std::vector<std::string> in,
           std::vector<std::string> out) {
    out_->push_back(ir::MakeNode(op, (n_.name.empty() ? "gru" : n_.name) + "/" + name,
                                 std::move(in), std::move(out)));
  }
  // MatMulInteger(aq, w, az) -> int32.
  std::string Product(const std::string& what, const std::string& aq, const std::string& w,
                      const std::string& az) {
    const std::string acc = Name(what + "_int32");
    Add("MatMulInteger", what + "/MatMulInteger", {aq, w, az}, {acc});
    return acc;
  }
  // Cast(acc) * (as * ws) [+ bias], the float operations of kernels::DynamicQGemm in its order.
  std::string Dequantize(const std::string& what, const std::string& acc, const std::string& as,
                         const std::string& ws, const std::string& bias) {
    const std::string accf = Name(what + "_int32_float");
    ir::Node cast = ir::MakeNode("Cast", (n_.name.empty() ? "gru" : n_.name) + "/" + what + "/Cast",
                                 {acc}, {accf});
    cast.attrs["to"] = int64_t{static_cast<int64_t>(DType::kF32)};
    out_->push_back(cast);
    const std::string scale = Name(what + "_scale_product");
    Add("Mul", what + "/ScaleProduct", {as, ws}, {scale});
    const std::string y = Name(what);
    Add("Mul", what + "/Dequantize", {accf, scale}, {y});
    if (bias.empty()) return y;
    const std::string yb = Name(what + "_biased");
    Add("Add", what + "/Bias", {y, bias}, {yb});
    return yb;
  }

  ir::Graph& g_;
  const ir::Node& n_;
  std::vector<ir::Node>* out_ = nullptr;
  ir::ValueNamer& names_;
  int64_t T_ = 0;
};

}  // namespace

std::vector<std::string> LowerDynamicQuantizeGru(ir::Graph& g) {
  std::vector<std::string> notes;
  std::vector<ir::Node> nodes;
  bool changed = false;
  ir::ValueNamer names(g);
  for (const ir::Node& n : g.nodes) {
    if (n.domain != "qforge" || n.op_type != "DynamicQuantizeGRU") {
      nodes.push_back(n);
      continue;
    }
    const size_t before = nodes.size();
    GruLowering(g, n, names).Run(&nodes);
    notes.push_back("GRU '" + n.name + "' (qforge::DynamicQuantizeGRU) written as " +
                    std::to_string(nodes.size() - before) +
                    " standard ONNX nodes (DynamicQuantizeLinear + MatMulInteger per time step, "
                    "unrolled)");
    changed = true;
  }
  if (!changed) return notes;
  g.nodes = std::move(nodes);
  ir::RemoveUnusedValues(g);
  bool qforge_left = false;
  for (const ir::Node& n : g.nodes) qforge_left |= n.domain == "qforge";
  if (!qforge_left) g.opset_imports.erase("qforge");
  ir::TopologicalSort(g);
  ir::VerifyOrThrow(g);
  return notes;
}

}  // namespace qforge::passes
