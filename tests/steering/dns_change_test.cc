#include "steering/dns_change.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr char kApi[] = "api.example.com.";

DnsRecord A(const std::string& data, const std::string& name = kApi) { return {name, "A", data}; }
DnsRecord Aaaa(const std::string& data, const std::string& name = kApi) {
  return {name, "AAAA", data};
}

// us-east-1 and us-west-2 share api.example.com.; each also has a name of its own.
std::vector<DnsRegionRecords> TwoRegions() {
  return {{"us-east-1", {A("192.0.2.1"), A("192.0.2.1", "east.example.com.")}},
          {"us-west-2", {A("198.51.100.1"), A("198.51.100.1", "west.example.com.")}}};
}

TEST(CanonicalDnsNameTest, LowerCaseWithTheFinalDot) {
  EXPECT_EQ(*CanonicalDnsName("Example.COM"), "example.com.");
  EXPECT_EQ(*CanonicalDnsName("example.com."), "example.com.");
  EXPECT_EQ(*CanonicalDnsName("API.Example.Com."), "api.example.com.");
  EXPECT_EQ(*CanonicalDnsName("_dns._tcp.example.com"), "_dns._tcp.example.com.");
  EXPECT_EQ(*CanonicalDnsName("*.example.com"), "*.example.com.");
  EXPECT_EQ(*CanonicalDnsName("."), ".");
}

TEST(CanonicalDnsNameTest, RefusesMalformedNames) {
  for (const char* bad : {"", "..", ".example.com", "a..example.com", "exa mple.com",
                          "ex!ample.com", "a*.example.com", "example.com.."}) {
    absl::StatusOr<std::string> name = CanonicalDnsName(bad);
    ASSERT_FALSE(name.ok()) << bad;
    EXPECT_EQ(name.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(name.status().message().find("is not a DNS name"), absl::string_view::npos)
        << name.status();
  }
  // The bad label is named.
  EXPECT_NE(CanonicalDnsName("ok.b@d.com").status().message().find("label \"b@d\""),
            absl::string_view::npos);
}

TEST(CanonicalDnsNameTest, LabelAndNameLengths) {
  std::string label63(63, 'a');
  EXPECT_TRUE(CanonicalDnsName(label63 + ".com").ok());
  EXPECT_FALSE(CanonicalDnsName(std::string(64, 'a') + ".com").ok());
  // 253 characters without the final dot is the longest name.
  std::string longest = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  ASSERT_EQ(longest.size(), 253u);
  EXPECT_TRUE(CanonicalDnsName(longest).ok());
  EXPECT_TRUE(CanonicalDnsName(longest + ".").ok());
  absl::StatusOr<std::string> too_long = CanonicalDnsName(longest + "b");
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("1 to 253 characters"), absl::string_view::npos);
}

TEST(CanonicalDnsRecordTest, RelativeAbsoluteAndApexNames) {
  absl::StatusOr<DnsRecord> relative = CanonicalDnsRecord("Example.COM", "API", "a", "192.0.2.1");
  ASSERT_TRUE(relative.ok()) << relative.status();
  EXPECT_EQ(*relative, A("192.0.2.1"));
  EXPECT_EQ(*CanonicalDnsRecord("example.com.", "Api.Example.Com.", "A", "192.0.2.1"),
            A("192.0.2.1"));
  EXPECT_EQ(*CanonicalDnsRecord("example.com", "edge.eu", "A", "192.0.2.1"),
            A("192.0.2.1", "edge.eu.example.com."));
  EXPECT_EQ(*CanonicalDnsRecord("example.com", "@", "A", "192.0.2.1"),
            A("192.0.2.1", "example.com."));
  EXPECT_EQ(*CanonicalDnsRecord("example.com", "example.com.", "AAAA", "2001:db8::1"),
            Aaaa("2001:db8::1", "example.com."));
}

TEST(CanonicalDnsRecordTest, RefusesNamesOutsideTheZone) {
  for (const char* name : {"api.example.org.", "notexample.com.", "com."}) {
    absl::StatusOr<DnsRecord> r = CanonicalDnsRecord("example.com", name, "A", "192.0.2.1");
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_NE(r.status().message().find("is not in the zone example.com."), absl::string_view::npos)
        << r.status();
  }
  EXPECT_FALSE(CanonicalDnsRecord("example.com", "bad name", "A", "192.0.2.1").ok());
  EXPECT_FALSE(CanonicalDnsRecord("bad zone", "api", "A", "192.0.2.1").ok());
}

TEST(CanonicalDnsRecordTest, OnlyAAndAaaa) {
  for (const char* type : {"MX", "CNAME", "TXT", ""}) {
    absl::StatusOr<DnsRecord> r = CanonicalDnsRecord("example.com", "api", type, "192.0.2.1");
    ASSERT_FALSE(r.ok()) << type;
    EXPECT_EQ(r.status().message(),
              std::string("record type \"") + type +
                  "\" of api.example.com.: only A and AAAA records are managed");
  }
  EXPECT_EQ(CanonicalDnsRecord("example.com", "api", "aaaa", "2001:db8::1")->type, "AAAA");
}

TEST(CanonicalDnsRecordTest, AddressesOfTheRightFamily) {
  struct Bad {
    const char* type;
    const char* data;
  };
  for (const Bad& bad : {Bad{"A", "300.1.2.3"}, Bad{"A", "192.0.2"}, Bad{"A", "2001:db8::1"},
                         Bad{"A", ""}, Bad{"A", " 192.0.2.1"}, Bad{"A", "host.example.com"},
                         Bad{"AAAA", "192.0.2.1"}, Bad{"AAAA", "2001:db8:::1"}}) {
    absl::StatusOr<DnsRecord> r = CanonicalDnsRecord("example.com", "api", bad.type, bad.data);
    ASSERT_FALSE(r.ok()) << bad.type << " " << bad.data;
    EXPECT_NE(r.status().message().find(std::string(bad.type) == "A" ? "is not an IPv4 address"
                                                                     : "is not an IPv6 address"),
              absl::string_view::npos)
        << r.status();
  }
}

TEST(CanonicalDnsRecordTest, AddressesInCanonicalForm) {
  EXPECT_EQ(CanonicalDnsRecord("example.com", "api", "AAAA", "2001:DB8:0::1")->data, "2001:db8::1");
  EXPECT_EQ(
      CanonicalDnsRecord("example.com", "api", "AAAA", "2001:0db8:0000:0000:0:0:0:0001")->data,
      "2001:db8::1");
  EXPECT_EQ(CanonicalDnsRecord("example.com", "api", "A", "192.0.2.1")->data, "192.0.2.1");
}

TEST(ManagedRRsetsTest, OnlyNamesTwoRegionsHave) {
  std::vector<DnsRegionRecords> regions = TwoRegions();
  regions[1].records.push_back(Aaaa("2001:db8::2"));
  EXPECT_EQ(ManagedRRsets(regions), (std::vector<DnsRRsetKey>{{kApi, "A"}, {kApi, "AAAA"}}));
  // One region listing a name twice does not share it.
  std::vector<DnsRegionRecords> alone = {{"us-east-1", {A("192.0.2.1"), A("192.0.2.2")}},
                                         {"us-west-2", {}}};
  EXPECT_TRUE(ManagedRRsets(alone).empty());
  EXPECT_TRUE(ManagedRRsets({}).empty());
}

TEST(PlanDnsChangeTest, EvacuationRemovesTheRegionsRecordsAndKeepsForeignOnes) {
  DnsRRsets current = {{{kApi, "A"}, {"192.0.2.1", "198.51.100.1", "203.0.113.9"}}};
  absl::StatusOr<DnsChange> change = PlanDnsChange(TwoRegions(), {"us-east-1"}, current);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->remove, std::vector<DnsRecord>{A("192.0.2.1")});
  EXPECT_TRUE(change->add.empty());
  // The prerequisite is the set as read, foreign record included.
  EXPECT_EQ(change->before, current);
  EXPECT_EQ(change->Summary(), "-api.example.com. A 192.0.2.1");
  // east.example.com. is east's alone: never read, never touched.
  for (const DnsRecord& r : change->remove) EXPECT_EQ(r.name, kApi);
}

TEST(PlanDnsChangeTest, RestoreAddsTheRecordsBack) {
  DnsRRsets current = {{{kApi, "A"}, {"198.51.100.1", "203.0.113.9"}}};
  absl::StatusOr<DnsChange> change = PlanDnsChange(TwoRegions(), {}, current);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_TRUE(change->remove.empty());
  EXPECT_EQ(change->add, std::vector<DnsRecord>{A("192.0.2.1")});
  EXPECT_EQ(change->before, current);
  EXPECT_EQ(change->Summary(), "+api.example.com. A 192.0.2.1");
}

TEST(PlanDnsChangeTest, AStateAlreadyThereSendsNothing) {
  DnsRRsets evacuated = {{{kApi, "A"}, {"198.51.100.1", "203.0.113.9"}}};
  absl::StatusOr<DnsChange> change = PlanDnsChange(TwoRegions(), {"us-east-1"}, evacuated);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_TRUE(change->empty());
  EXPECT_TRUE(change->before.empty());
  EXPECT_EQ(change->Summary(), "no change");

  DnsRRsets restored = {{{kApi, "A"}, {"192.0.2.1", "198.51.100.1"}}};
  change = PlanDnsChange(TwoRegions(), {}, restored);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_TRUE(change->empty());
  EXPECT_EQ(change->Summary(), "no change");
}

TEST(PlanDnsChangeTest, AMissingRecordSetIsAnEmptyPrerequisite) {
  std::vector<DnsRegionRecords> regions = TwoRegions();
  regions[1].records.push_back(Aaaa("2001:db8::2"));
  // The A set exists, the AAAA set does not.
  DnsRRsets current = {{{kApi, "A"}, {"192.0.2.1", "198.51.100.1"}}};
  absl::StatusOr<DnsChange> change = PlanDnsChange(regions, {}, current);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->add, std::vector<DnsRecord>{Aaaa("2001:db8::2")});
  // Only the set that changes is a prerequisite, and it must not exist.
  EXPECT_EQ(change->before, (DnsRRsets{{{kApi, "AAAA"}, {}}}));
  // An empty set read is the same as no set.
  current[{kApi, "AAAA"}] = {};
  EXPECT_EQ(PlanDnsChange(regions, {}, current)->before, (DnsRRsets{{{kApi, "AAAA"}, {}}}));
  // Nothing there at all: every record of every region is added.
  change = PlanDnsChange(regions, {}, {});
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->add,
            (std::vector<DnsRecord>{A("192.0.2.1"), A("198.51.100.1"), Aaaa("2001:db8::2")}));
  EXPECT_EQ(change->before, (DnsRRsets{{{kApi, "A"}, {}}, {{kApi, "AAAA"}, {}}}));
}

TEST(PlanDnsChangeTest, ARecordTwoRegionsShareStaysWhileEitherIsIn) {
  std::vector<DnsRegionRecords> regions = {{"us-east-1", {A("192.0.2.1"), A("192.0.2.50")}},
                                           {"us-west-2", {A("198.51.100.1"), A("192.0.2.50")}},
                                           {"eu-west-1", {A("203.0.113.1")}}};
  DnsRRsets all = {{{kApi, "A"}, {"192.0.2.1", "192.0.2.50", "198.51.100.1", "203.0.113.1"}}};
  absl::StatusOr<DnsChange> change = PlanDnsChange(regions, {"us-east-1"}, all);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->remove, std::vector<DnsRecord>{A("192.0.2.1")});

  change = PlanDnsChange(regions, {"us-east-1", "us-west-2"}, all);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->remove,
            (std::vector<DnsRecord>{A("192.0.2.1"), A("192.0.2.50"), A("198.51.100.1")}));

  // us-west-2 comes back: the shared record is put back with it.
  DnsRRsets only_eu = {{{kApi, "A"}, {"203.0.113.1"}}};
  change = PlanDnsChange(regions, {"us-east-1"}, only_eu);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_TRUE(change->remove.empty());
  EXPECT_EQ(change->add, (std::vector<DnsRecord>{A("192.0.2.50"), A("198.51.100.1")}));
}

TEST(PlanDnsChangeTest, RefusesToLeaveASharedNameWithoutRecords) {
  DnsRRsets current = {{{kApi, "A"}, {"192.0.2.1", "198.51.100.1"}}};
  absl::StatusOr<DnsChange> change =
      PlanDnsChange(TwoRegions(), {"us-east-1", "us-west-2"}, current);
  ASSERT_FALSE(change.ok());
  EXPECT_EQ(change.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(change.status().message().find("would leave api.example.com. without records"),
            absl::string_view::npos)
      << change.status();
  // A record someone else added keeps the name answering: no refusal.
  current[{kApi, "A"}].insert("203.0.113.9");
  change = PlanDnsChange(TwoRegions(), {"us-east-1", "us-west-2"}, current);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->remove, (std::vector<DnsRecord>{A("192.0.2.1"), A("198.51.100.1")}));
}

TEST(PlanDnsChangeTest, AAndAaaaTogether) {
  std::vector<DnsRegionRecords> regions = {{"us-east-1", {A("192.0.2.1"), Aaaa("2001:db8::1")}},
                                           {"us-west-2", {A("198.51.100.1"), Aaaa("2001:db8::2")}}};
  DnsRRsets current = {{{kApi, "A"}, {"192.0.2.1", "198.51.100.1"}},
                       {{kApi, "AAAA"}, {"2001:db8::1", "2001:db8::2"}}};
  absl::StatusOr<DnsChange> change = PlanDnsChange(regions, {"us-east-1"}, current);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->remove, (std::vector<DnsRecord>{A("192.0.2.1"), Aaaa("2001:db8::1")}));
  EXPECT_EQ(change->before, current);
  EXPECT_EQ(change->Summary(), "-api.example.com. A 192.0.2.1, -api.example.com. AAAA 2001:db8::1");

  // A name counts its types together: us-east-1 has only A, us-west-2 only AAAA; taking
  // us-west-2 out empties the AAAA set while the A set still answers.
  std::vector<DnsRegionRecords> split = {{"us-east-1", {A("192.0.2.1")}},
                                         {"us-west-2", {Aaaa("2001:db8::2")}}};
  DnsRRsets both = {{{kApi, "A"}, {"192.0.2.1"}}, {{kApi, "AAAA"}, {"2001:db8::2"}}};
  change = PlanDnsChange(split, {"us-west-2"}, both);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->remove, std::vector<DnsRecord>{Aaaa("2001:db8::2")});
  EXPECT_EQ(change->before, (DnsRRsets{{{kApi, "AAAA"}, {"2001:db8::2"}}}));
  EXPECT_FALSE(PlanDnsChange(split, {"us-east-1", "us-west-2"}, both).ok());
}

TEST(PlanDnsChangeTest, UnmanagedRecordSetsInTheReadAreIgnored) {
  // A set read that no shared name has (a leftover) is neither a prerequisite nor touched.
  DnsRRsets current = {{{kApi, "A"}, {"192.0.2.1", "198.51.100.1"}},
                       {{"east.example.com.", "A"}, {"192.0.2.1"}}};
  absl::StatusOr<DnsChange> change = PlanDnsChange(TwoRegions(), {"us-east-1"}, current);
  ASSERT_TRUE(change.ok()) << change.status();
  EXPECT_EQ(change->remove, std::vector<DnsRecord>{A("192.0.2.1")});
  EXPECT_EQ(change->before, (DnsRRsets{{{kApi, "A"}, {"192.0.2.1", "198.51.100.1"}}}));
}

}  // namespace
}  // namespace sluice
