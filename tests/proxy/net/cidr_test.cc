#include "proxy/net/cidr.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

SocketAddress Addr(const char* text) { return *SocketAddress::Parse(text); }

TEST(CidrTest, Ipv4Ranges) {
  auto range = CidrRange::Parse("10.1.0.0/16");
  ASSERT_TRUE(range.ok());
  EXPECT_TRUE(range->Contains(Addr("10.1.2.3:1")));
  EXPECT_FALSE(range->Contains(Addr("10.2.0.1:1")));
  EXPECT_TRUE(range->Contains(Addr("[::ffff:10.1.9.9]:1")));  // IPv4-mapped
  auto odd = CidrRange::Parse("192.168.0.0/23");
  EXPECT_TRUE(odd->Contains(Addr("192.168.1.255:1")));
  EXPECT_FALSE(odd->Contains(Addr("192.168.2.0:1")));
  EXPECT_TRUE(CidrRange::Parse("0.0.0.0/0")->Contains(Addr("8.8.8.8:1")));
  EXPECT_TRUE(CidrRange::Parse("127.0.0.1")->Contains(Addr("127.0.0.1:1")));
}

TEST(CidrTest, Ipv6Ranges) {
  auto range = CidrRange::Parse("2001:db8::/32");
  ASSERT_TRUE(range.ok());
  EXPECT_TRUE(range->Contains(Addr("[2001:db8:1::1]:1")));
  EXPECT_FALSE(range->Contains(Addr("[2001:db9::1]:1")));
  EXPECT_FALSE(range->Contains(Addr("10.0.0.1:1")));
}

TEST(CidrTest, Invalid) {
  EXPECT_FALSE(CidrRange::Parse("10.0.0.0/33").ok());
  EXPECT_FALSE(CidrRange::Parse("nonsense").ok());
  EXPECT_FALSE(CidrRange::Parse("::/129").ok());
  EXPECT_FALSE(CidrRange::Parse("10.0.0.0/x").ok());
}

TEST(CidrTest, Set) {
  CidrSet set;
  EXPECT_FALSE(set.Contains(Addr("10.0.0.1:1")));
  set.Add(*CidrRange::Parse("10.0.0.0/8"));
  set.Add(*CidrRange::Parse("::1/128"));
  EXPECT_TRUE(set.Contains(Addr("10.0.0.1:1")));
  EXPECT_TRUE(set.Contains(Addr("[::1]:1")));
  EXPECT_FALSE(set.Contains(Addr("11.0.0.1:1")));
}

}  // namespace
}  // namespace sluice
