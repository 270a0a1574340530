#include "proxy/config/cohort_cidr_map.h"

#include <arpa/inet.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "proxy/net/cidr.h"

namespace sluice {
namespace {

using NewCohorts = CohortCidrMap::NewCohorts;

SocketAddress Addr(const std::string& ip) {
  return *SocketAddress::Parse(ip.find(':') == std::string::npos ? ip + ":1" : "[" + ip + "]:1");
}

CohortCidrMapPtr MustParse(std::string_view text, std::vector<std::string>* cohorts) {
  auto map = CohortCidrMap::Parse(text, "cohorts.cidr", cohorts, NewCohorts::kAdd);
  EXPECT_TRUE(map.ok()) << map.status();
  return map.ok() ? *map : std::make_shared<CohortCidrMap>();
}

TEST(CohortCidrMapTest, ParsesAGoodFile) {
  std::vector<std::string> cohorts = {"latam"};  // from rules before the file
  CohortCidrMapPtr map = MustParse(
      "# client networks\n"
      "\n"
      "200.0.0.0/8      south-america\n"
      "200.160.0.0/16\tbrazil   # longer: wins inside it\r\n"
      "   192.0.2.7  vip\n"
      "2800::/12 south-america\n"
      "10.0.0.0/8 latam\n"
      "   # indented comment\n"
      "\t\n"
      "0.0.0.0/0 rest",  // no newline at the end
      &cohorts);
  EXPECT_EQ(cohorts, (std::vector<std::string>{"latam", "south-america", "brazil", "vip", "rest"}));
  EXPECT_EQ(map->ranges(), 6u);
  EXPECT_EQ(map->Find(Addr("200.1.2.3")), 1);
  EXPECT_EQ(map->Find(Addr("200.160.0.1")), 2);
  EXPECT_EQ(map->Find(Addr("200.161.0.1")), 1);
  EXPECT_EQ(map->Find(Addr("192.0.2.7")), 3);
  EXPECT_EQ(map->Find(Addr("192.0.2.8")), 4);  // only 0.0.0.0/0
  EXPECT_EQ(map->Find(Addr("10.200.0.1")), 0);
  EXPECT_EQ(map->Find(Addr("2800:1::1")), 1);
  EXPECT_EQ(map->Find(Addr("2810::1")), -1);            // no IPv6 default
  EXPECT_EQ(map->Find(Addr("::ffff:200.160.3.3")), 2);  // IPv4-mapped: the IPv4 lines
  EXPECT_EQ(map->Find(SocketAddress()), -1);            // no address at all
}

TEST(CohortCidrMapTest, EmptyFilesMapNobody) {
  for (const char* text : {"", "\n\n", "# nothing yet\n   \n"}) {
    std::vector<std::string> cohorts;
    CohortCidrMapPtr map = MustParse(text, &cohorts);
    EXPECT_EQ(map->ranges(), 0u);
    EXPECT_TRUE(cohorts.empty());
    EXPECT_EQ(map->Find(Addr("192.0.2.1")), -1);
    EXPECT_EQ(map->Find(Addr("2001:db8::1")), -1);
  }
}

TEST(CohortCidrMapTest, EveryBadLineIsRefusedWithItsLineNumber) {
  struct Case {
    std::string line, message;
  };
  const std::vector<Case> cases = {
      {"10.0.0/8 eu", "cohorts.cidr:3: \"10.0.0\" is not an IPv4 or IPv6 address"},
      {"example.com eu", "cohorts.cidr:3: \"example.com\" is not an IPv4 or IPv6 address"},
      {"/8 eu", "cohorts.cidr:3: \"\" is not an IPv4 or IPv6 address"},
      {"10.0.0.0/33 eu", "cohorts.cidr:3: prefix length must be 0..32 for IPv4, got \"33\""},
      {"10.0.0.0/ eu", "cohorts.cidr:3: prefix length must be 0..32 for IPv4, got \"\""},
      {"10.0.0.0/-1 eu", "prefix length must be 0..32"},
      {"10.0.0.0/8/8 eu", "prefix length must be 0..32 for IPv4, got \"8/8\""},
      {"2001:db8::/129 eu", "cohorts.cidr:3: prefix length must be 0..128 for IPv6"},
      {"10.1.0.0/8 eu",
       "cohorts.cidr:3: 10.1.0.0/8 has bits set beyond its prefix length (the range is "
       "10.0.0.0/8)"},
      {"2001:db8::1/32 eu", "(the range is 2001:db8::/32)"},
      {"::ffff:10.0.0.0/104 eu",
       "cohorts.cidr:3: ::ffff:10.0.0.0/104 is an IPv4-mapped range: "
       "write it as IPv4 (10.0.0.0/8)"},
      {"10.0.0.0/8", "cohorts.cidr:3: expected CIDR COHORT, got only \"10.0.0.0/8\""},
      {"10.0.0.0/8 south america",
       "cohorts.cidr:3: expected CIDR COHORT, got more after the "
       "cohort: \"america\""},
      {"10.0.0.0/8 South-America", "cohorts.cidr:3: \"South-America\" is not a cohort name"},
      {"10.0.0.0/8 -eu", "\"-eu\" is not a cohort name"},
      {"10.0.0.0/8 " + std::string(64, 'a'), "is not a cohort name"},
      {"192.0.2.0/24 us", "cohorts.cidr:3: 192.0.2.0/24 is on line 1 too: one cohort per range"},
      {"2001:db8::/32 us", "cohorts.cidr:3: 2001:db8::/32 is on line 2 too"},
      {std::string("10.0.0.0\0/8 eu", 14), "is not an IPv4 or IPv6 address"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> cohorts = {"latam"};
    auto map = CohortCidrMap::Parse("192.0.2.0/24 eu\n2001:db8::/32 eu  # fine\n" + c.line + "\n",
                                    "cohorts.cidr", &cohorts, NewCohorts::kAdd);
    ASSERT_FALSE(map.ok()) << c.line;
    EXPECT_NE(map.status().message().find(c.message), std::string::npos)
        << c.line << " -> " << map.status().message();
    // Nothing of a refused file stays: not even the names of its good lines.
    EXPECT_EQ(cohorts, std::vector<std::string>{"latam"});
  }
}

TEST(CohortCidrMapTest, ARunningConfigurationRefusesNewCohorts) {
  std::vector<std::string> cohorts = {"latam", "vip"};
  auto map = CohortCidrMap::Parse("200.0.0.0/8 latam\n10.0.0.0/8 emea\n", "/etc/c.cidr", &cohorts,
                                  NewCohorts::kRefuse);
  ASSERT_FALSE(map.ok());
  EXPECT_EQ(map.status().message(),
            "/etc/c.cidr:2: cohort \"emea\" is not one the running configuration knows (latam, "
            "vip); a new cohort takes a configuration reload (SIGHUP)");
  map = CohortCidrMap::Parse("200.0.0.0/8 vip\n", "/etc/c.cidr", &cohorts, NewCohorts::kRefuse);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ((*map)->Find(Addr("200.0.0.1")), 1);  // the configuration's id
  EXPECT_EQ(cohorts.size(), 2u);
}

TEST(CohortCidrMapTest, Ipv6AndTheEdgesOfTheAddressSpace) {
  std::vector<std::string> cohorts;
  CohortCidrMapPtr map = MustParse(
      "::/0 world6\n"
      "2001:db8::/32 doc\n"
      "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff/128 last-of-doc\n"
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120 top\n"
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff top-host\n"
      "::1 loopback\n"
      "0.0.0.0/1 low\n"
      "255.255.255.255/32 broadcast\n"
      "128.0.0.0/1 high\n",
      &cohorts);
  auto id = [&](const std::string& name) {
    return static_cast<int>(std::find(cohorts.begin(), cohorts.end(), name) - cohorts.begin());
  };
  EXPECT_EQ(map->Find(Addr("::")), id("world6"));
  EXPECT_EQ(map->Find(Addr("::1")), id("loopback"));
  EXPECT_EQ(map->Find(Addr("::2")), id("world6"));
  EXPECT_EQ(map->Find(Addr("2001:db8::")), id("doc"));
  EXPECT_EQ(map->Find(Addr("2001:db8:ffff:ffff:ffff:ffff:ffff:fffe")), id("doc"));
  EXPECT_EQ(map->Find(Addr("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")), id("last-of-doc"));
  EXPECT_EQ(map->Find(Addr("2001:db9::")), id("world6"));  // after a /128 at a /32's end
  EXPECT_EQ(map->Find(Addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:feff")), id("world6"));
  EXPECT_EQ(map->Find(Addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00")), id("top"));
  EXPECT_EQ(map->Find(Addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")), id("top"));
  EXPECT_EQ(map->Find(Addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), id("top-host"));
  EXPECT_EQ(map->Find(Addr("0.0.0.0")), id("low"));
  EXPECT_EQ(map->Find(Addr("127.255.255.255")), id("low"));
  EXPECT_EQ(map->Find(Addr("128.0.0.0")), id("high"));
  EXPECT_EQ(map->Find(Addr("255.255.255.254")), id("high"));
  EXPECT_EQ(map->Find(Addr("255.255.255.255")), id("broadcast"));
}

// Random nested ranges checked against the plain definition (of every range that holds the
// address, the longest), with CidrRange as the independent membership test.
template <int kBytes>
void CheckLongestPrefixWins(uint32_t seed) {
  constexpr int kBits = kBytes * 8;
  const int family = kBytes == 4 ? AF_INET : AF_INET6;
  std::mt19937 random(seed);
  // A few base addresses, so that ranges nest and share edges.
  std::vector<std::array<uint8_t, kBytes>> bases(6);
  for (auto& base : bases) {
    for (uint8_t& b : base) b = static_cast<uint8_t>(random());
  }
  auto masked = [&](std::array<uint8_t, kBytes> bytes, int length) {
    for (int bit = length; bit < kBits; ++bit) bytes[bit / 8] &= ~(0x80 >> (bit % 8));
    return bytes;
  };
  auto text_of = [&](const std::array<uint8_t, kBytes>& bytes) {
    char text[INET6_ADDRSTRLEN];
    inet_ntop(family, bytes.data(), text, sizeof(text));
    return std::string(text);
  };
  struct Range {
    CidrRange range;
    int length;
    std::string cohort;
  };
  std::vector<Range> ranges;
  std::set<std::pair<std::string, int>> seen;
  std::string file;
  for (int i = 0; i < 400; ++i) {
    auto bytes = bases[random() % bases.size()];
    // Vary the bits below a random point, so ranges are near each other at every length.
    for (int bit = static_cast<int>(random() % kBits); bit < kBits; ++bit) {
      if (random() & 1) bytes[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
    }
    const int length = static_cast<int>(random() % (kBits + 1));
    // IPv4-mapped ranges are refused (tested above): keep the IPv6 ranges clear of them.
    if (kBytes == 16 && length >= 96 && bytes[0] == 0) bytes[0] = 0x20;
    const std::string network = text_of(masked(bytes, length));
    if (!seen.emplace(network, length).second) continue;
    const std::string cohort = absl::StrFormat("c%d", random() % 7);
    file += absl::StrFormat("%s/%d %s\n", network, length, cohort);
    ranges.push_back(
        Range{*CidrRange::Parse(absl::StrFormat("%s/%d", network, length)), length, cohort});
  }
  std::vector<std::string> cohorts;
  CohortCidrMapPtr map = MustParse(file, &cohorts);
  ASSERT_EQ(map->ranges(), ranges.size());
  for (int i = 0; i < 5000; ++i) {
    auto bytes = bases[random() % bases.size()];
    for (int bit = static_cast<int>(random() % kBits); bit < kBits; ++bit) {
      if (random() & 1) bytes[bit / 8] ^= static_cast<uint8_t>(0x80 >> (bit % 8));
    }
    if (kBytes == 16 && bytes[0] == 0) bytes[0] = 0x20;  // not IPv4-mapped
    const SocketAddress address = kBytes == 4 ? SocketAddress::FromIpv4(bytes.data(), 1)
                                              : SocketAddress::FromIpv6(bytes.data(), 1);
    int best_length = -1;
    std::string expected;
    for (const Range& r : ranges) {
      if (r.length > best_length && r.range.Contains(address)) {
        best_length = r.length;
        expected = r.cohort;
      }
    }
    const int found = map->Find(address);
    const std::string got = found < 0 ? "" : cohorts[static_cast<size_t>(found)];
    ASSERT_EQ(got, expected) << text_of(bytes) << " in\n" << file;
  }
}

TEST(CohortCidrMapTest, LongestPrefixWinsIpv4) {
  for (uint32_t seed = 1; seed <= 5; ++seed) CheckLongestPrefixWins<4>(seed);
}

TEST(CohortCidrMapTest, LongestPrefixWinsIpv6) {
  for (uint32_t seed = 1; seed <= 5; ++seed) CheckLongestPrefixWins<16>(seed);
}

TEST(CohortCidrMapTest, LoadsAFileAndNamesTheOneItCannotRead) {
  std::string pattern = ::testing::TempDir() + "/sluice-cohorts-XXXXXX";
  ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
  const std::string dir = pattern;
  std::ofstream(dir + "/cohorts.cidr") << "200.0.0.0/8 south-america\n";
  std::vector<std::string> cohorts;
  auto map = CohortCidrMap::Load(dir + "/cohorts.cidr", &cohorts, NewCohorts::kAdd);
  ASSERT_TRUE(map.ok()) << map.status();
  EXPECT_EQ((*map)->Find(Addr("200.1.1.1")), 0);
  auto again = CohortCidrMap::Load(dir + "/cohorts.cidr", &cohorts, NewCohorts::kRefuse);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_GT((*again)->version(), (*map)->version());  // the newer map of the file
  std::ofstream(dir + "/bad.cidr") << "200.0.0.0/8 south-america\n200.0.0.0/33 x\n";
  auto bad = CohortCidrMap::Load(dir + "/bad.cidr", &cohorts, NewCohorts::kAdd);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(dir + "/bad.cidr:2: prefix length"), std::string::npos)
      << bad.status().message();
  auto missing = CohortCidrMap::Load(dir + "/missing.cidr", &cohorts, NewCohorts::kAdd);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(),
            "cannot read " + dir + "/missing.cidr: No such file or directory");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice
