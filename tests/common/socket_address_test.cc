#include "common/socket_address.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(SocketAddressTest, ParseAndFormat) {
  auto v4 = SocketAddress::Parse("127.0.0.1:8080");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->ToString(), "127.0.0.1:8080");
  EXPECT_EQ(v4->port(), 8080);
  EXPECT_EQ(v4->family(), AF_INET);
  auto v6 = SocketAddress::Parse("[::1]:443");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->ToString(), "[::1]:443");
  EXPECT_EQ(v6->IpString(), "::1");
  auto mapped = SocketAddress::Parse("[::ffff:10.1.2.3]:1");
  EXPECT_EQ(mapped->IpString(), "10.1.2.3");
}

TEST(SocketAddressTest, Errors) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "localhost:80", "[::1:80",
                          "::1:80", ":80", "1.2.3.4:-1"}) {
    EXPECT_FALSE(SocketAddress::Parse(bad).ok()) << bad;
  }
}

TEST(SocketAddressTest, ClientKeys) {
  auto key = [](const char* text) { return SocketAddress::Parse(text)->ClientKey(); };
  EXPECT_EQ(key("192.0.2.1:80"), key("192.0.2.1:9999"));  // the port is not the client
  EXPECT_NE(key("192.0.2.1:80"), key("192.0.2.2:80"));
  EXPECT_EQ(key("[::ffff:192.0.2.1]:80"), key("192.0.2.1:80"));  // IPv4-mapped is IPv4
  // One IPv6 client is its /64: a site gets at least that many addresses.
  EXPECT_EQ(key("[2001:db8:1:2::1]:80"), key("[2001:db8:1:2:ffff::9]:80"));
  EXPECT_NE(key("[2001:db8:1:2::1]:80"), key("[2001:db8:1:3::1]:80"));
  // An IPv6 prefix whose bytes spell an IPv4 address is still another client.
  EXPECT_NE(key("[c000:201::]:80"), key("192.0.2.1:80"));
  EXPECT_NE(key("[::]:80"), key("0.0.0.0:80"));
}

TEST(SocketAddressTest, Equality) {
  EXPECT_EQ(*SocketAddress::Parse("10.0.0.1:80"), *SocketAddress::Parse("10.0.0.1:80"));
  EXPECT_FALSE(*SocketAddress::Parse("10.0.0.1:80") == *SocketAddress::Parse("10.0.0.1:81"));
}

}  // namespace
}  // namespace sluice
