// Gradient checks of Pad (constant, reflect, edge, wrap, negative pads, axes, opset 10) and
// Resize nearest (up, down, coordinate and rounding modes) (pad_resize_grad.cc).
#include "train/test_util.h"

namespace qforge::train {
namespace {

using testing::ExpectGradOk;
using testing::MakeOneNode;
using testing::Random;
using I = std::vector<int64_t>;

Tensor Ints(const I& v) {
  Tensor t(DType::kI64, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}

Tensor Floats(const std::vector<float>& v) {
  Tensor t(DType::kF32, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}

TEST(PadResizeGrad, PadModes) {
  for (const char* mode : {"constant", "reflect", "edge", "wrap"}) {
    SCOPED_TRACE(mode);
    ExpectGradOk(
        MakeOneNode("Pad", {"x", "pads"},
                    {{"x", Random({2, 3, 4, 5}, 1)}, {"pads", Ints({0, 0, 2, 1, 0, 1, 1, 3})}},
                    {"x"}, {{"mode", std::string(mode)}}));
  }
  // A constant fill value (no gradient of its own), negative pads (a crop), axes.
  ExpectGradOk(MakeOneNode("Pad", {"x", "pads", "v"},
                           {{"x", Random({2, 5, 6}, 2)},
                            {"pads", Ints({0, -1, 2, 0, 1, -2})},
                            {"v", Floats({3.5f})}},
                           {"x"}),
               {"v"});
  ExpectGradOk(MakeOneNode(
      "Pad", {"x", "pads", "", "axes"},
      {{"x", Random({2, 4, 5}, 3)}, {"pads", Ints({2, 1, 2, 2})}, {"axes", Ints({-1, 1})}}, {"x"},
      {{"mode", std::string("reflect")}}, 1, 18));
  // Opset 10: pads and value are attributes.
  ExpectGradOk(MakeOneNode("Pad", {"x"}, {{"x", Random({1, 2, 3, 3}, 4)}}, {"x"},
                           {{"pads", I{0, 0, 1, 2, 0, 0, 2, 1}}, {"value", 2.0f}}, 1, 10));
}

TEST(PadResizeGrad, ResizeNearest) {
  // Upsample x2 (the usual nearest default: half_pixel, round_prefer_floor).
  ExpectGradOk(MakeOneNode("Resize", {"x", "", "scales"},
                           {{"x", Random({2, 3, 3, 4}, 5)}, {"scales", Floats({1, 1, 2, 2})}},
                           {"x"}, {{"mode", std::string("nearest")}}),
               {"scales"});
  // Downsample to given sizes: some inputs get no gradient.
  ExpectGradOk(MakeOneNode("Resize", {"x", "", "", "sizes"},
                           {{"x", Random({1, 2, 7, 6}, 6)}, {"sizes", Ints({1, 2, 3, 4})}}, {"x"},
                           {{"mode", std::string("nearest")}}));
  // Non-integer scale, asymmetric + floor (as PyTorch's nearest), and align_corners + ceil.
  ExpectGradOk(
      MakeOneNode("Resize", {"x", "", "scales"},
                  {{"x", Random({1, 2, 4, 5}, 7)}, {"scales", Floats({1, 1, 1.5f, 2.5f})}}, {"x"},
                  {{"coordinate_transformation_mode", std::string("asymmetric")},
                   {"nearest_mode", std::string("floor")}}),
      {"scales"});
  ExpectGradOk(
      MakeOneNode("Resize", {"x", "", "scales"},
                  {{"x", Random({1, 1, 5, 4}, 8)}, {"scales", Floats({1, 1, 1.7f, 0.6f})}}, {"x"},
                  {{"coordinate_transformation_mode", std::string("align_corners")},
                   {"nearest_mode", std::string("round_prefer_ceil")}}),
      {"scales"});
}

TEST(PadResizeGrad, ResizeLinearHasNoGradient) {
  const auto m = MakeOneNode("Resize", {"x", "", "scales"},
                             {{"x", Random({1, 1, 3, 3}, 9)}, {"scales", Floats({1, 1, 2, 2})}},
                             {"x"}, {{"mode", std::string("linear")}});
  try {
    CheckGradients(m.graph, m.feeds, {"x"});
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("only mode nearest"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qforge::train
