// Tests for the shape and data-movement ops through ir::Graph + Session: ONNX conventions per
// opset (attributes vs inputs), storage sharing for view-only ops, clamping and errors.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "qforge/kernels/transform.h"
#include "runtime/ops/node_test_util.h"

namespace qforge::runtime {
namespace {

using testing::F;
using testing::Fv;
using testing::I;
using testing::Iv;
using testing::NodeTest;

Tensor Iota(Shape s) {
  Tensor t(DType::kF32, s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = static_cast<float>(i);
  return t;
}

TEST(ReshapeOp, ZeroMinusOneAndAllowZero) {
  Tensor x = Iota({2, 3, 4});
  Tensor y = NodeTest("Reshape", 14).In(x).In(Iv({0, -1})).Run1();
  EXPECT_EQ(y.shape(), (Shape{2, 12}));
  EXPECT_EQ(y.raw(), x.raw());  // a view: no copy
  EXPECT_EQ(NodeTest("Reshape", 14).In(x).In(Iv({-1, 4}), true).Run1().shape(), (Shape{6, 4}));
  // allowzero=1: 0 is a real zero-size dim.
  Tensor empty(DType::kF32, {0, 3});
  EXPECT_EQ(
      NodeTest("Reshape", 14).Attr("allowzero", int64_t{1}).In(empty).In(Iv({3, 0})).Run1().shape(),
      (Shape{3, 0}));
  std::string err = NodeTest("Reshape", 14).In(x).In(Iv({5, -1})).Error();
  EXPECT_NE(err.find("Reshape 'node1'"), std::string::npos) << err;
  err = NodeTest("Reshape", 14).In(x).In(Iv({-1, -1})).Error();
  EXPECT_NE(err.find("-1"), std::string::npos) << err;
  err = NodeTest("Reshape", 14).In(x).In(Iv({7})).Error();
  EXPECT_NE(err.find("cannot reshape"), std::string::npos) << err;
}

TEST(FlattenSqueezeUnsqueeze, AreViews) {
  Tensor x = Iota({2, 1, 3, 1});
  Tensor f = NodeTest("Flatten", 13).Attr("axis", int64_t{2}).In(x).Run1();
  EXPECT_EQ(f.shape(), (Shape{2, 3}));
  EXPECT_EQ(f.raw(), x.raw());
  EXPECT_EQ(NodeTest("Flatten", 13).Attr("axis", int64_t{0}).In(x).Run1().shape(), (Shape{1, 6}));
  EXPECT_EQ(NodeTest("Flatten", 13).Attr("axis", int64_t{-1}).In(x).Run1().shape(), (Shape{6, 1}));
  EXPECT_NE(NodeTest("Flatten", 13).Attr("axis", int64_t{5}).In(x).Error(), "");

  Tensor s = NodeTest("Squeeze", 13).In(x).Run1();
  EXPECT_EQ(s.shape(), (Shape{2, 3}));
  EXPECT_EQ(s.raw(), x.raw());
  EXPECT_EQ(NodeTest("Squeeze", 13).In(x).In(Iv({-1})).Run1().shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(NodeTest("Squeeze", 11).Attr("axes", std::vector<int64_t>{1}).In(x).Run1().shape(),
            (Shape{2, 3, 1}));
  std::string err = NodeTest("Squeeze", 13).In(x).In(Iv({0})).Error();
  EXPECT_NE(err.find("Squeeze 'node1'"), std::string::npos) << err;

  Tensor v = Iota({3, 4});
  Tensor u = NodeTest("Unsqueeze", 13).In(v).In(Iv({0, -1})).Run1();
  EXPECT_EQ(u.shape(), (Shape{1, 3, 4, 1}));
  EXPECT_EQ(u.raw(), v.raw());
  EXPECT_EQ(NodeTest("Unsqueeze", 11).Attr("axes", std::vector<int64_t>{2, 0}).In(v).Run1().shape(),
            (Shape{1, 3, 1, 4}));
  EXPECT_NE(NodeTest("Unsqueeze", 13).In(v).In(Iv({0, 0})).Error(), "");
}

TEST(IdentityDropout, ShareStorageAndGiveAMask) {
  Tensor x = Iota({2, 2});
  EXPECT_EQ(NodeTest("Identity", 16).In(x).Run1().raw(), x.raw());
  std::vector<Tensor> out = NodeTest("Dropout", 13).In(x).Run(2);
  EXPECT_EQ(out[0].raw(), x.raw());
  EXPECT_EQ(out[1].dtype(), DType::kBool);
  EXPECT_EQ(I(out[1]), (std::vector<int64_t>{1, 1, 1, 1}));
  // Training mode with ratio 0 is the identity; with ratio > 0 it is refused clearly.
  Tensor yes = Tensor::Scalar<bool>(true);
  EXPECT_EQ(F(NodeTest("Dropout", 13).In(x).In(Tensor::Scalar(0.0f)).In(yes).Run1()), F(x));
  std::string err = NodeTest("Dropout", 13).In(x).In(Tensor::Scalar(0.5f)).In(yes).Error();
  EXPECT_NE(err.find("Dropout 'node1'"), std::string::npos) << err;
  // Dropout-7's mask has the data's dtype.
  EXPECT_EQ(NodeTest("Dropout", 7).In(x).Run(2)[1].dtype(), DType::kF32);
}

TEST(TransposeOp, PermAndDefault) {
  Tensor x = Iota({2, 3});
  Tensor t = NodeTest("Transpose", 13).In(x).Run1();
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(F(t), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  Tensor y = Iota({2, 3, 4});
  EXPECT_EQ(
      NodeTest("Transpose", 13).Attr("perm", std::vector<int64_t>{1, 2, 0}).In(y).Run1().shape(),
      (Shape{3, 4, 2}));
  std::string err =
      NodeTest("Transpose", 13).Attr("perm", std::vector<int64_t>{0, 1}).In(y).Error();
  EXPECT_NE(err.find("Transpose 'node1'"), std::string::npos) << err;
}

// The op's inline-run path for 4-byte elements (and the kernel for the rest) equals the
// reference transpose element for element, on attention's permutations and odd shapes.
TEST(TransposeOp, EqualsReferenceOnAttentionPerms) {
  struct Case {
    Shape shape;
    std::vector<int64_t> perm;
  };
  const Case cases[] = {
      {{4, 16, 3, 4, 16}, {2, 0, 3, 1, 4}},  // qkv split into heads
      {{4, 4, 16, 16}, {0, 2, 1, 3}},        // heads back to tokens
      {{4, 4, 16, 16}, {0, 1, 3, 2}},        // K^T (strided inner run: the kernel)
      {{3, 1, 5, 7}, {2, 1, 0, 3}},          // size-1 dim, odd sizes
      {{2, 3, 4, 5}, {3, 0, 1, 2}},
      {{5, 7}, {1, 0}},
      {{2, 1, 3}, {1, 0, 2}},  // collapses to a copy of one run per row
  };
  for (const Case& c : cases) {
    for (DType dt : {DType::kF32, DType::kI32, DType::kI64}) {
      Tensor x(dt, c.shape);
      for (int64_t i = 0; i < x.numel(); ++i) {
        if (dt == DType::kF32) x.data<float>()[i] = static_cast<float>(i) * 0.5f - 3.0f;
        if (dt == DType::kI32) x.data<int32_t>()[i] = static_cast<int32_t>(i * 7 - 11);
        if (dt == DType::kI64) x.data<int64_t>()[i] = i * 13 - 5;
      }
      const Tensor y = NodeTest("Transpose", 13).Attr("perm", c.perm).In(x).Run1();
      const Tensor ref = kernels::TransposeRef(x, c.perm);
      SCOPED_TRACE(ShapeToString(c.shape) + " " + std::string(DTypeName(dt)));
      ASSERT_EQ(y.shape(), ref.shape());
      ASSERT_EQ(0, std::memcmp(y.raw(), ref.raw(), x.numel() * DTypeSize(dt)));
    }
  }
}

TEST(ConcatOp, NegativeAxisAndErrors) {
  Tensor a = Iota({2, 2}), b = Iota({2, 1});
  Tensor c = NodeTest("Concat", 13).Attr("axis", int64_t{-1}).In(a).In(b).Run1();
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  EXPECT_EQ(F(c), (std::vector<float>{0, 1, 0, 2, 3, 1}));
  std::string err = NodeTest("Concat", 13).Attr("axis", int64_t{0}).In(a).In(b).Error();
  EXPECT_NE(err.find("Concat 'node1'"), std::string::npos) << err;
  EXPECT_NE(NodeTest("Concat", 13).In(a).In(b).Error(), "");  // axis is required
}

TEST(SplitOp, AttributeInputEqualAndUneven) {
  Tensor x = Iota({2, 5});
  std::vector<Tensor> p = NodeTest("Split", 11)
                              .Attr("axis", int64_t{1})
                              .Attr("split", std::vector<int64_t>{2, 3})
                              .In(x)
                              .Run(2);
  EXPECT_EQ(F(p[0]), (std::vector<float>{0, 1, 5, 6}));
  EXPECT_EQ(F(p[1]), (std::vector<float>{2, 3, 4, 7, 8, 9}));
  p = NodeTest("Split", 13).Attr("axis", int64_t{1}).In(x).In(Iv({4, 1})).Run(2);
  EXPECT_EQ(p[1].shape(), (Shape{2, 1}));
  p = NodeTest("Split", 13).In(Iota({4})).Run(2);
  EXPECT_EQ(F(p[1]), (std::vector<float>{2, 3}));
  // num_outputs (opset 18): the last part is smaller when the dim does not divide.
  p = NodeTest("Split", 18).Attr("axis", int64_t{1}).Attr("num_outputs", int64_t{3}).In(x).Run(3);
  EXPECT_EQ(p[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(p[2].shape(), (Shape{2, 1}));
  std::string err = NodeTest("Split", 13).Attr("axis", int64_t{1}).In(x).Error(2);
  EXPECT_NE(err.find("Split 'node1'"), std::string::npos) << err;
  err = NodeTest("Split", 13).Attr("axis", int64_t{1}).In(x).In(Iv({1, 1})).Error(2);
  EXPECT_NE(err.find("sum"), std::string::npos) << err;
}

TEST(SliceOp, InputsClampingAndNegativeSteps) {
  Tensor x = Iota({3, 4});
  const int64_t big = std::numeric_limits<int64_t>::max();
  Tensor s = NodeTest("Slice", 13).In(x).In(Iv({1, 1})).In(Iv({big, -1})).Run1();
  EXPECT_EQ(s.shape(), (Shape{2, 2}));
  EXPECT_EQ(F(s), (std::vector<float>{5, 6, 9, 10}));
  // Axes and negative steps: reverse the columns.
  Tensor r =
      NodeTest("Slice", 13).In(x).In(Iv({-1})).In(Iv({-big})).In(Iv({1})).In(Iv({-1})).Run1();
  EXPECT_EQ(F(r), (std::vector<float>{3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8}));
  // Out-of-range start gives an empty dim, not an error.
  EXPECT_EQ(NodeTest("Slice", 13).In(x).In(Iv({10})).In(Iv({20})).In(Iv({0})).Run1().shape(),
            (Shape{0, 4}));
  // Opset 1: attributes, no steps.
  Tensor a = NodeTest("Slice", 9)
                 .Attr("starts", std::vector<int64_t>{0})
                 .Attr("ends", std::vector<int64_t>{2})
                 .Attr("axes", std::vector<int64_t>{1})
                 .In(x)
                 .Run1();
  EXPECT_EQ(F(a), (std::vector<float>{0, 1, 4, 5, 8, 9}));
  std::string err =
      NodeTest("Slice", 13).In(x).In(Iv({0})).In(Iv({1})).In(Iv({0})).In(Iv({0})).Error();
  EXPECT_NE(err.find("Slice 'node1'"), std::string::npos) << err;
  err = NodeTest("Slice", 13).In(x).In(Iv({0, 0})).In(Iv({1})).Error();
  EXPECT_NE(err.find("same length"), std::string::npos) << err;
}

TEST(ShapeGatherCast, Basics) {
  Tensor x = Iota({2, 3, 4});
  Tensor sh = NodeTest("Shape", 13).In(x).Run1();
  EXPECT_EQ(sh.dtype(), DType::kI64);
  EXPECT_EQ(I(sh), (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(I(NodeTest("Shape", 15).Attr("start", int64_t{-2}).In(x).Run1()),
            (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(
      I(NodeTest("Shape", 15).Attr("start", int64_t{1}).Attr("end", int64_t{-1}).In(x).Run1()),
      (std::vector<int64_t>{3}));
  EXPECT_EQ(
      I(NodeTest("Shape", 15).Attr("start", int64_t{-10}).Attr("end", int64_t{10}).In(x).Run1()),
      (std::vector<int64_t>{2, 3, 4}));

  Tensor g = NodeTest("Gather", 13).Attr("axis", int64_t{-1}).In(x).In(Iv({-1, 0})).Run1();
  EXPECT_EQ(g.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(F(g)[0], 3.0f);
  EXPECT_EQ(F(g)[1], 0.0f);
  std::string err = NodeTest("Gather", 13).In(x).In(Iv({2})).Error();
  EXPECT_NE(err.find("Gather 'node1'"), std::string::npos) << err;

  Tensor c = NodeTest("Cast", 13).Attr("to", int64_t{7}).In(Fv({2}, {1.9f, -1.9f})).Run1();
  EXPECT_EQ(c.dtype(), DType::kI64);
  EXPECT_EQ(I(c), (std::vector<int64_t>{1, -1}));
  EXPECT_EQ(NodeTest("Cast", 13).Attr("to", int64_t{10}).In(Fv({1}, {1})).Run1().dtype(),
            DType::kF16);
  err = NodeTest("Cast", 13).Attr("to", int64_t{8}).In(Fv({1}, {1})).Error();
  EXPECT_NE(err.find("Cast 'node1'"), std::string::npos) << err;
}

TEST(ConstantOps, AllValueKinds) {
  Tensor t = Fv({2}, {1, 2});
  EXPECT_EQ(F(NodeTest("Constant", 13).Attr("value", t).Run1()), (std::vector<float>{1, 2}));
  Tensor vf = NodeTest("Constant", 13).Attr("value_float", 2.5f).Run1();
  EXPECT_EQ(vf.shape(), (Shape{}));
  EXPECT_EQ(F(vf), (std::vector<float>{2.5f}));
  EXPECT_EQ(F(NodeTest("Constant", 13).Attr("value_floats", std::vector<float>{1, 2, 3}).Run1()),
            (std::vector<float>{1, 2, 3}));
  Tensor vi = NodeTest("Constant", 13).Attr("value_int", int64_t{7}).Run1();
  EXPECT_EQ(vi.dtype(), DType::kI64);
  EXPECT_EQ(I(NodeTest("Constant", 13).Attr("value_ints", std::vector<int64_t>{4, 5}).Run1()),
            (std::vector<int64_t>{4, 5}));
  std::string err = NodeTest("Constant", 13).Attr("value_string", std::string("a")).Error();
  EXPECT_NE(err.find("Constant 'node1'"), std::string::npos) << err;

  Tensor cs = NodeTest("ConstantOfShape", 13).In(Iv({2, 3})).Run1();
  EXPECT_EQ(cs.dtype(), DType::kF32);
  EXPECT_EQ(F(cs), std::vector<float>(6, 0.0f));
  Tensor ci = NodeTest("ConstantOfShape", 13)
                  .Attr("value", Tensor::FromVector<int32_t>({1}, {9}))
                  .In(Iv({2}))
                  .Run1();
  EXPECT_EQ(ci.dtype(), DType::kI32);
  EXPECT_EQ(I(ci), (std::vector<int64_t>{9, 9}));
  EXPECT_EQ(NodeTest("ConstantOfShape", 13).In(Iv({0})).Run1().numel(), 0);
  EXPECT_NE(NodeTest("ConstantOfShape", 13).In(Iv({-1})).Error(), "");
}

TEST(ExpandOp, Broadcasts) {
  Tensor x = Fv({3, 1}, {1, 2, 3});
  Tensor e = NodeTest("Expand", 13).In(x).In(Iv({2, 1, 2})).Run1();
  EXPECT_EQ(e.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(F(e), (std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3}));
  std::string err = NodeTest("Expand", 13).In(x).In(Iv({2, 2})).Error();
  EXPECT_NE(err.find("Expand 'node1'"), std::string::npos) << err;
}

}  // namespace
}  // namespace qforge::runtime
