#include "proxy/net/proxy_protocol.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

using Status = ProxyParseResult::Status;

TEST(ProxyProtocolTest, V1Tcp4) {
  std::string header = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
  auto r = ParseProxyHeader(header + "GET / HTTP/1.1\r\n");
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(r.consumed, header.size());
  EXPECT_TRUE(r.header.has_addresses);
  EXPECT_EQ(r.header.source.ToString(), "192.0.2.1:56324");
  EXPECT_EQ(r.header.destination.ToString(), "198.51.100.2:443");
}

TEST(ProxyProtocolTest, V1Tcp6AndUnknown) {
  auto r = ParseProxyHeader("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n");
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.header.source.ToString(), "[2001:db8::1]:1");
  auto u = ParseProxyHeader("PROXY UNKNOWN whatever\r\n");
  ASSERT_EQ(u.status, Status::kDone);
  EXPECT_FALSE(u.header.has_addresses);
}

TEST(ProxyProtocolTest, V1NeedsMoreUntilCrlf) {
  std::string header = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
  for (size_t n = 0; n < header.size(); ++n) {
    EXPECT_EQ(ParseProxyHeader(header.substr(0, n)).status, Status::kNeedMore) << n;
  }
}

TEST(ProxyProtocolTest, V1Rejections) {
  for (const char* bad :
       {"GET / HTTP/1.1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "PROXY TCP4 ::1 ::1 1 2\r\n",
        "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "PROXY TCP4 1.2.3.4\n"}) {
    EXPECT_EQ(ParseProxyHeader(bad).status, Status::kError) << bad;
  }
  EXPECT_EQ(ParseProxyHeader(std::string(200, 'P').insert(0, "PROXY ")).status, Status::kError);
}

std::string V2(uint8_t command, uint8_t family, const std::string& body) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h.push_back(static_cast<char>(0x20 | command));
  h.push_back(static_cast<char>(family));
  h.push_back(static_cast<char>(body.size() >> 8));
  h.push_back(static_cast<char>(body.size() & 0xff));
  return h + body;
}

TEST(ProxyProtocolTest, V2Ipv4WithTlvs) {
  std::string body = {'\xc0', '\x00', '\x02', '\x01', '\xc6', '\x33',
                      '\x64', '\x02', '\x1f', '\x90', '\x01', '\xbb'};
  body += std::string("\x04\x00\x02hi", 5);  // a TLV, skipped
  std::string header = V2(1, 0x11, body);
  auto r = ParseProxyHeader(header + "GET");
  ASSERT_EQ(r.status, Status::kDone) << r.error;
  EXPECT_EQ(r.consumed, header.size());
  EXPECT_EQ(r.header.source.ToString(), "192.0.2.1:8080");
  EXPECT_EQ(r.header.destination.ToString(), "198.51.100.2:443");
  for (size_t n = 0; n < header.size(); ++n) {
    EXPECT_EQ(ParseProxyHeader(header.substr(0, n)).status, Status::kNeedMore) << n;
  }
}

TEST(ProxyProtocolTest, V2LocalKeepsSocketAddresses) {
  auto r = ParseProxyHeader(V2(0, 0x00, ""));
  ASSERT_EQ(r.status, Status::kDone);
  EXPECT_FALSE(r.header.has_addresses);
}

TEST(ProxyProtocolTest, V2Rejections) {
  EXPECT_EQ(ParseProxyHeader(V2(1, 0x11, "short")).status, Status::kError);
  EXPECT_EQ(ParseProxyHeader(V2(5, 0x11, std::string(12, 'x'))).status, Status::kError);
  std::string huge = V2(1, 0x11, std::string(5000, 'x'));
  EXPECT_EQ(ParseProxyHeader(huge.substr(0, 16)).status, Status::kError);
}

}  // namespace
}  // namespace sluice
