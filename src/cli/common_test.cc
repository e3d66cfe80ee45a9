// Tests for the CLI's shared helpers: file-name sanitizing, shape parsing, one-line errors,
// tables.
#include "cli/common.h"

#include <gtest/gtest.h>

namespace qforge::cli {
namespace {

TEST(SanitizeFileName, KeepsSafeCharactersAndNeutralizesPaths) {
  EXPECT_EQ(SanitizeFileName("logits"), "logits");
  EXPECT_EQ(SanitizeFileName("out/relu:0"), "out_relu_0");
  EXPECT_EQ(SanitizeFileName("../sum"), "_._sum");
  EXPECT_EQ(SanitizeFileName(".."), "_.");
  EXPECT_EQ(SanitizeFileName(".hidden"), "_hidden");
  EXPECT_EQ(SanitizeFileName(""), "output");
  EXPECT_EQ(SanitizeFileName("a b\nc\xff"), "a_b_c_");
  EXPECT_EQ(SanitizeFileName(std::string(300, 'x')).size(), 200u);
}

TEST(ParseShape, AcceptsXAndCommaSeparatedDims) {
  EXPECT_EQ(ParseShape("1x3x224x224"), (Shape{1, 3, 224, 224}));
  EXPECT_EQ(ParseShape("2,5"), (Shape{2, 5}));
  EXPECT_EQ(ParseShape("7"), (Shape{7}));
  EXPECT_EQ(ParseShape(""), (Shape{}));
  EXPECT_EQ(ParseShape("scalar"), (Shape{}));
  for (const char* bad : {"1xx2", "x1", "1x", "-1x2", "1x2.5", "a", "1x99999999999999"})
    EXPECT_THROW(ParseShape(bad), Error) << bad;
}

TEST(SplitNameValue, SplitsAtTheFirstEquals) {
  EXPECT_EQ(SplitNameValue("x=a=b.npy", "--input"),
            std::make_pair(std::string("x"), std::string("a=b.npy")));
  for (const char* bad : {"x", "=a", "x="}) EXPECT_THROW(SplitNameValue(bad, "--input"), Error);
}

TEST(OneLine, FoldsWhitespaceAndEscapesControlAndBrokenUtf8) {
  EXPECT_EQ(OneLine("  a\n  b\t\tc \n"), "a b c");
  EXPECT_EQ(OneLine("name \x01\x7f"), "name \\x01\\x7f");
  EXPECT_EQ(OneLine("caf\xc3\xa9"), "caf\xc3\xa9");      // valid UTF-8 kept
  EXPECT_EQ(OneLine("bad \xc3("), "bad \\xc3(");         // broken sequence escaped
  EXPECT_EQ(OneLine("end \xe2\x82"), "end \\xe2\\x82");  // truncated at the end
}

TEST(Table, AlignsTextLeftAndNumbersRight) {
  Table t({"name", "n"}, {false, true});
  t.AddRow({"a", "1"});
  t.AddSeparator();
  t.AddRow({"long name", "1234"});
  EXPECT_EQ(t.ToString(),
            "name          n\n"
            "---------------\n"
            "a             1\n"
            "---------------\n"
            "long name  1234\n");
}

TEST(Formatting, BytesAndThousands) {
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(1536), "1.50 KiB");
  EXPECT_EQ(HumanBytes(3 << 20), "3.00 MiB");
  EXPECT_EQ(GroupThousands(0), "0");
  EXPECT_EQ(GroupThousands(999), "999");
  EXPECT_EQ(GroupThousands(1234567), "1,234,567");
  EXPECT_EQ(GroupThousands(-1000), "-1,000");
}

TEST(DimsToString, ShowsSymbolsAndUnknowns) {
  ir::ValueInfo vi;
  vi.has_shape = true;
  vi.dims = {ir::Dim::Symbol("batch"), ir::Dim::Known(3), ir::Dim{}};
  EXPECT_EQ(DimsToString(vi), "[batch, 3, ?]");
  EXPECT_EQ(DimsToJson(vi).dump(), R"(["batch",3,null])");
  vi.has_shape = false;
  EXPECT_EQ(DimsToString(vi), "(unknown rank)");
  EXPECT_TRUE(DimsToJson(vi).is_null());
}

}  // namespace
}  // namespace qforge::cli
