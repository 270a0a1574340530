#include "proxy/forward/steering_inputs.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

class SteeringInputsTest : public ::testing::Test {
 protected:
  SteeringInputsTest() {
    SteeringSpec spec;
    spec.local_region = "us-east-1";
    spec.cohorts = {"latam", "vip", "south-america", "brazil"};
    for (const char* name : {"us-east-1", "us-west-2", "eu-west-1"}) {
      RegionSpec region;
      region.name = name;
      spec.regions.push_back(region);
    }
    table_ = *BuildSteeringTable(spec, 1);
    config_.member_id = {{MemberIdSource::Kind::kClaim, ""},
                         {MemberIdSource::Kind::kCookie, "member"},
                         {MemberIdSource::Kind::kHeader, "x-member-id"}};
    config_.home_region = {{HomeRegionSource::Kind::kClaim, ""},
                           {HomeRegionSource::Kind::kHeader, "x-home-region"},
                           {HomeRegionSource::Kind::kMap, ""}};
    config_.home_map.prefixes = {{"eu-", 2}};
    config_.cohort_rules = {
        {CohortRule::Kind::kHeader, "x-client-country", {{"BR", 0}, {"AR", 0}}, "", nullptr},
        {CohortRule::Kind::kClaimTier, "", {{"gold", 1}}, "", nullptr},
    };
    head_ = MakeRequestHead();
    client_ = *SocketAddress::Parse("192.0.2.7:5555");
  }

  MemberRequest Read() {
    MemberRequest out;
    // As the forwarder does, with the request as it arrived.
    const RequestClient client{
        client_, CohortClientAddress(head_->headers, client_, from_trusted_proxy_), trusted_};
    ReadSteeringInputs(config_, *table_, cidr_maps_, *head_, identity_, client, &buffer_, &out);
    return out;
  }

  // A cohort CIDR file rule first, then the rules above; "south-america" and "brazil" join the
  // cohort list (ids 2 and 3), as the loader adds them.
  void UseCidrFile(std::string_view text) {
    std::vector<std::string> cohorts = table_->cohorts();
    auto map =
        CohortCidrMap::Parse(text, "cohorts.cidr", &cohorts, CohortCidrMap::NewCohorts::kRefuse);
    ASSERT_TRUE(map.ok()) << map.status();
    CohortRule rule;
    rule.kind = CohortRule::Kind::kCidrFile;
    rule.path = "/etc/sluice/cohorts.cidr";
    rule.cidr = *map;
    config_.cohort_rules.insert(config_.cohort_rules.begin(), std::move(rule));
  }

  SteeringTablePtr table_;
  SteeringConfig config_;
  std::vector<CohortCidrMapPtr> cidr_maps_;
  RequestHeadPtr head_;
  Identity identity_;
  SocketAddress client_;
  bool trusted_ = true;  // through a trusted proxy or a tunnel
  bool from_trusted_proxy_ = false;
  MemberIdBuffer buffer_;
};

TEST_F(SteeringInputsTest, MemberIdSourcesInOrderThenTheClientAddress) {
  EXPECT_EQ(Read().member, "192.0.2.7");  // nothing else: the address, without the port
  head_->headers.Add("X-Member-Id", " header-member ");
  EXPECT_EQ(Read().member, "header-member");
  head_->headers.Add("Cookie", "theme=dark; member=\"cookie-member\"; x=1");
  EXPECT_EQ(Read().member, "cookie-member");
  identity_.method = Identity::Method::kJwt;
  identity_.member_id = "claim-member";
  EXPECT_EQ(Read().member, "claim-member");
  identity_.method = Identity::Method::kNone;  // an unverified identity counts for nothing
  EXPECT_EQ(Read().member, "cookie-member");
}

TEST_F(SteeringInputsTest, Cookies) {
  head_->headers.Add("Cookie", "a=1; members=no; member=");
  head_->headers.Add("Cookie", "b=2;member=second");
  EXPECT_EQ(FindCookie(head_->headers, "member"), "second");
  EXPECT_EQ(FindCookie(head_->headers, "a"), "1");
  EXPECT_EQ(FindCookie(head_->headers, "missing"), "");
}

TEST_F(SteeringInputsTest, HomeRegionFromClaimHeaderOrMap) {
  head_->headers.Add("X-Member-Id", "eu-123");
  EXPECT_EQ(Read().home, 2);  // the map's prefix
  head_->headers.Add("X-Home-Region", "us-west-2");
  EXPECT_EQ(Read().home, 1);
  identity_.method = Identity::Method::kJwt;
  identity_.member_id = "m";
  identity_.home_region = "us-east-1";
  EXPECT_EQ(Read().home, 0);
  identity_.home_region = "mars-1";  // names no region: the next source
  EXPECT_EQ(Read().home, 1);
}

TEST_F(SteeringInputsTest, HomeRegionMapByHashRange) {
  HomeRegionMap map;
  map.ranges = {{0, 5000, 0}, {5000, 10000, 1}};
  int counts[2] = {0, 0};
  for (int i = 0; i < 10000; ++i) {
    int region = MapHomeRegion(map, "member-" + std::to_string(i));
    ASSERT_TRUE(region == 0 || region == 1);
    ++counts[region];
  }
  EXPECT_NEAR(counts[0] / 10000.0, 0.5, 0.03);
  map.ranges = {{0, 1000, 0}};
  int mapped = 0;
  for (int i = 0; i < 10000; ++i) mapped += MapHomeRegion(map, std::to_string(i)) >= 0;
  EXPECT_NEAR(mapped / 10000.0, 0.1, 0.02);  // outside every range: unknown
}

TEST_F(SteeringInputsTest, TheTunneledClientIsTheLastForwardedAddress) {
  SocketAddress client;
  EXPECT_FALSE(TunneledClient(head_->headers, &client));
  head_->headers.Add("X-Forwarded-For", "203.0.113.9, 198.51.100.4");
  head_->headers.Add("X-Forwarded-For", "192.0.2.44");
  ASSERT_TRUE(TunneledClient(head_->headers, &client));
  EXPECT_EQ(client.ToString(), "192.0.2.44:0");
  head_->headers.Set("X-Forwarded-For", "2001:db8::7");
  ASSERT_TRUE(TunneledClient(head_->headers, &client));
  EXPECT_EQ(client.ToString(), "[2001:db8::7]:0");
  head_->headers.Set("X-Forwarded-For", "unknown");
  EXPECT_FALSE(TunneledClient(head_->headers, &client));
}

TEST_F(SteeringInputsTest, AnUntrustedClientsHeadersAndCookiesCountForNothing) {
  trusted_ = false;
  head_->headers.Add("X-Member-Id", "eu-chosen");
  head_->headers.Add("Cookie", "member=cookie-member");
  head_->headers.Add("X-Home-Region", "us-west-2");
  head_->headers.Add("X-Client-Country", "BR");
  MemberRequest r = Read();
  EXPECT_EQ(r.member, "192.0.2.7");  // the address it comes from
  EXPECT_EQ(r.home, -1);             // neither the header nor the map of a forged member
  EXPECT_EQ(r.cohort, -1);
  identity_.method = Identity::Method::kJwt;  // verified claims still count
  identity_.member_id = "claim-member";
  identity_.home_region = "us-east-1";
  identity_.tier = "gold";
  r = Read();
  EXPECT_EQ(r.member, "claim-member");
  EXPECT_EQ(r.home, 0);
  EXPECT_EQ(r.cohort, 1);
}

TEST_F(SteeringInputsTest, Cohorts) {
  EXPECT_EQ(Read().cohort, -1);
  head_->headers.Add("X-Client-Country", "br");
  EXPECT_EQ(Read().cohort, 0);
  head_->headers.Set("X-Client-Country", "DE");
  identity_.method = Identity::Method::kJwt;
  identity_.tier = "gold";
  EXPECT_EQ(Read().cohort, 1);  // the first rule had no match; the second has
}

constexpr char kCidrFile[] = R"(
200.0.0.0/8      south-america
200.160.0.0/16   brazil
192.0.2.0/24     vip
2001:db8::/32    latam
)";

TEST_F(SteeringInputsTest, CohortFromACidrFileByTheClientAddress) {
  UseCidrFile(kCidrFile);
  client_ = *SocketAddress::Parse("200.1.2.3:40000");
  EXPECT_EQ(Read().cohort, 2);
  client_ = *SocketAddress::Parse("200.160.9.9:40000");
  EXPECT_EQ(Read().cohort, 3);  // the longer prefix
  client_ = *SocketAddress::Parse("[2001:db8:0:1::5]:40000");
  EXPECT_EQ(Read().cohort, 0);
  client_ = *SocketAddress::Parse("[::ffff:200.160.1.1]:40000");  // a dual-stack listener's
  EXPECT_EQ(Read().cohort, 3);
  // Not in the file: the next rules decide.
  client_ = *SocketAddress::Parse("198.51.100.1:40000");
  EXPECT_EQ(Read().cohort, -1);
  head_->headers.Add("X-Client-Country", "BR");
  EXPECT_EQ(Read().cohort, 0);
  // In the file: the first rule that yields a cohort wins, whatever a later one says.
  client_ = *SocketAddress::Parse("200.1.2.3:40000");
  EXPECT_EQ(Read().cohort, 2);
  // The address stays the member id of last resort (not the cohort's network).
  EXPECT_EQ(Read().member, "200.1.2.3");
}

TEST_F(SteeringInputsTest, CohortFromACidrFileOfTheClientATrustedProxyForwardedFor) {
  UseCidrFile(kCidrFile);
  client_ = *SocketAddress::Parse("192.0.2.10:40000");  // the proxy (itself in vip)
  head_->headers.Add("X-Forwarded-For", "10.9.9.9, 200.160.4.4");
  from_trusted_proxy_ = true;
  EXPECT_EQ(Read().cohort, 3);             // the client the proxy appended, not what came before it
  EXPECT_EQ(Read().member, "192.0.2.10");  // the member id of last resort stays the peer's
  // No usable X-Forwarded-For: the proxy's own address.
  head_->headers.Set("X-Forwarded-For", "unknown");
  EXPECT_EQ(Read().cohort, 1);
  // From anyone else, X-Forwarded-For is the client's own say: the address counts.
  head_->headers.Set("X-Forwarded-For", "200.160.4.4");
  from_trusted_proxy_ = false;
  EXPECT_EQ(Read().cohort, 1);
}

TEST_F(SteeringInputsTest, CohortFromACidrFileOfATunneledClient) {
  UseCidrFile(kCidrFile);
  // A request a peer region tunneled here: the forwarder puts the client that region forwarded
  // for in the context (TunneledClient), so the file sees that client, not the peer sluice.
  head_->headers.Add("X-Forwarded-For", "203.0.113.50, 200.9.8.7");
  SocketAddress tunneled;
  ASSERT_TRUE(TunneledClient(head_->headers, &tunneled));
  client_ = tunneled;
  EXPECT_EQ(Read().cohort, 2);
}

TEST_F(SteeringInputsTest, AWorkersNewerCidrMapReplacesTheConfigurations) {
  UseCidrFile(kCidrFile);
  client_ = *SocketAddress::Parse("200.1.2.3:40000");
  std::vector<std::string> cohorts = table_->cohorts();
  auto newer = CohortCidrMap::Parse("200.0.0.0/8 vip\n", "cohorts.cidr", &cohorts,
                                    CohortCidrMap::NewCohorts::kRefuse);
  ASSERT_TRUE(newer.ok()) << newer.status();
  cidr_maps_.assign(config_.cohort_rules.size(), nullptr);  // null: the configuration's own
  EXPECT_EQ(Read().cohort, 2);
  cidr_maps_[0] = *newer;
  EXPECT_EQ(Read().cohort, 1);
}

}  // namespace
}  // namespace sluice
