#include "proxy/http/http1_serializer.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(Http1SerializerTest, Lines) {
  std::string out;
  AppendStatusLine(&out, 502, {});
  AppendStatusLine(&out, 200, "Fine");
  AppendRequestLine(&out, "POST", "/a", "?b");
  EXPECT_EQ(out, "HTTP/1.1 502 Bad Gateway\r\nHTTP/1.1 200 Fine\r\nPOST /a?b HTTP/1.1\r\n");
}

TEST(Http1SerializerTest, Numbers) {
  std::string out;
  AppendDecimal(&out, 0);
  out += ' ';
  AppendDecimal(&out, 18446744073709551615ULL);
  EXPECT_EQ(out, "0 18446744073709551615");
  char buf[24];
  EXPECT_EQ(std::string(buf, FormatChunkHeader(buf, 0x1f)), "1f\r\n");
  EXPECT_EQ(std::string(buf, FormatChunkHeader(buf, 1)), "1\r\n");
}

}  // namespace
}  // namespace sluice
