// Tests for ISA naming, detection and forcing.
#include "qforge/kernels/isa.h"

#include <gtest/gtest.h>

#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

TEST(Isa, NamesRoundTrip) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) EXPECT_EQ(ParseIsa(IsaName(isa)), isa);
  EXPECT_THROW(ParseIsa("sse9"), Error);
  EXPECT_THROW(ParseIsa(""), Error);
}

TEST(Isa, DetectedIsSupportedAndScalarAlwaysIs) {
  EXPECT_TRUE(IsaSupported(Isa::kScalar));
  EXPECT_TRUE(IsaSupported(DetectIsa()));
  // AVX-512 support implies AVX2 support in our definition.
  if (IsaSupported(Isa::kAvx512)) EXPECT_TRUE(IsaSupported(Isa::kAvx2));
}

TEST(Isa, SetIsaForcesAndRejectsUnsupported) {
  const Isa before = ActiveIsa();
  SetIsa(Isa::kScalar);
  EXPECT_EQ(ActiveIsa(), Isa::kScalar);
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (IsaSupported(isa)) {
      SetIsa(isa);
      EXPECT_EQ(ActiveIsa(), isa);
    } else {
      EXPECT_THROW(SetIsa(isa), Error);
    }
  }
  SetIsa(before);
}

}  // namespace
}  // namespace qforge::kernels
