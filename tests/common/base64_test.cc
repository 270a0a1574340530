#include "common/base64.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(Base64Test, EncodesRfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(Base64Test, DecodesWhatItEncodes) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  for (size_t n = 0; n <= all.size(); n += 7) {
    std::string out;
    ASSERT_TRUE(Base64Decode(Base64Encode(all.substr(0, n)), &out)) << n;
    EXPECT_EQ(out, all.substr(0, n));
  }
}

TEST(Base64Test, RejectsWhatIsNotCanonical) {
  std::string out;
  EXPECT_FALSE(Base64Decode("Zg=", &out));     // not a multiple of four
  EXPECT_FALSE(Base64Decode("Zh==", &out));    // leftover bits not zero
  EXPECT_FALSE(Base64Decode("Zm9v\n", &out));  // whitespace
  EXPECT_FALSE(Base64Decode("Zm-v", &out));    // the url alphabet
  EXPECT_FALSE(Base64Decode("Z===", &out));
  EXPECT_FALSE(Base64Decode("=Zg=", &out));
  EXPECT_TRUE(DecodeBase64Url("Zm-_", &out));
  EXPECT_FALSE(DecodeBase64Url("Zm+/", &out));
}

}  // namespace
}  // namespace sluice
