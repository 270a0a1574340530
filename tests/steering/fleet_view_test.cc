#include "steering/fleet_view.h"

#include <nlohmann/json.hpp>

#include "gtest/gtest.h"

namespace sluice {
namespace {

NodeView View(const std::string& node, const std::string& region, uint64_t requests,
              uint64_t errors, uint64_t fast, uint64_t slow) {
  NodeView v;
  v.node = node;
  v.region = region;
  v.admin = "127.0.0.1:9901";
  v.version = 7;
  v.revision = 42;
  v.updated = absl::FromUnixMillis(1800000000123);
  v.local.requests = requests;
  v.local.errors = errors;
  v.local.latency[3] = fast;   // <= 10 ms
  v.local.latency[10] = slow;  // <= 2.5 s
  return v;
}

TEST(FleetViewTest, RoundTrips) {
  NodeView v = View("us-east-1-a", "us-east-1", 1000, 10, 990, 10);
  v.local.sheds = 3;
  v.local.starts = 120;
  v.tunnels["eu-west-1"].requests = 50;
  v.tunnels["eu-west-1"].errors = 1;
  v.starts_per_second["us-east-1"] = 4.5;
  absl::StatusOr<NodeView> back = DecodeNodeView(EncodeNodeView(v));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->node, v.node);
  EXPECT_EQ(back->region, v.region);
  EXPECT_EQ(back->admin, v.admin);
  EXPECT_EQ(back->version, 7u);
  EXPECT_EQ(back->revision, 42);
  EXPECT_EQ(back->updated, v.updated);
  EXPECT_EQ(back->local.requests, 1000u);
  EXPECT_EQ(back->local.sheds, 3u);
  EXPECT_EQ(back->local.latency[10], 10u);
  EXPECT_EQ(back->tunnels.at("eu-west-1").errors, 1u);
  EXPECT_DOUBLE_EQ(back->starts_per_second.at("us-east-1"), 4.5);
}

TEST(FleetViewTest, RejectsDamagedViewsNamingTheField) {
  std::string good = EncodeNodeView(View("n", "us-east-1", 10, 1, 10, 0));
  EXPECT_TRUE(DecodeNodeView(good).ok());
  auto error = [](const std::string& text) {
    absl::StatusOr<NodeView> v = DecodeNodeView(text);
    return v.ok() ? std::string("accepted") : std::string(v.status().message());
  };
  EXPECT_EQ(error("[]"), "a node view must be a JSON object");
  std::string other = good;
  other.replace(other.find("sluice-node-view/1"), 18, "sluice-node-view/9");
  EXPECT_NE(error(other).find("format"), std::string::npos);
  std::string negative = good;
  negative.replace(negative.find("\"requests\":10"), 13, "\"requests\":-1");
  EXPECT_NE(error(negative).find("local.requests"), std::string::npos) << error(negative);
  std::string more_errors = good;
  more_errors.replace(more_errors.find("\"errors\":1"), 10, "\"errors\":11");
  EXPECT_NE(error(more_errors).find("more failed attempts than attempts"), std::string::npos);
  std::string short_latency = good;
  short_latency.replace(short_latency.find("[0,0,0,10"), 9, "[0,0,10");
  EXPECT_NE(error(short_latency).find("local.latency"), std::string::npos);
  std::string bad_region = good;
  bad_region.replace(bad_region.find("us-east-1"), 9, "US EAST!!");
  EXPECT_NE(error(bad_region).find("region"), std::string::npos);
}

TEST(FleetViewTest, SumsTheNodesOfARegion) {
  std::vector<NodeView> views = {
      View("a", "us-east-1", 1000, 10, 1000, 0),
      View("b", "us-east-1", 1000, 90, 970, 30),  // its slow tail is the region's p99
      View("c", "eu-west-1", 5000, 0, 5000, 0),
  };
  std::optional<RegionHealth> east = FleetRegionHealth(views, "us-east-1", 20);
  ASSERT_TRUE(east.has_value());
  EXPECT_EQ(east->requests, 2000u);
  EXPECT_DOUBLE_EQ(east->error_rate, 0.05);
  // The 1980th of 2000 is a third of the way into the 1..2.5 s bucket.
  EXPECT_NEAR(absl::ToDoubleMilliseconds(east->p99), 1500, 1e-6);
  std::optional<RegionHealth> eu = FleetRegionHealth(views, "eu-west-1", 20);
  ASSERT_TRUE(eu.has_value());
  EXPECT_NEAR(absl::ToDoubleMilliseconds(eu->p99), 9.95, 1e-6);
  EXPECT_FALSE(FleetRegionHealth(views, "us-west-2", 20).has_value());
}

TEST(FleetViewTest, ARegionsOriginsAreDownByItsChecksOrByEnoughFailedAttempts) {
  // us-east-1 is evacuated: no traffic, but its node's checks fail everywhere.
  std::vector<NodeView> views = {View("a", "us-east-1", 0, 0, 0, 0),
                                 View("b", "us-east-1", 0, 0, 0, 0)};
  EXPECT_FALSE(FleetRegionHealth(views, "us-east-1", 20)->origins_down);
  views[1].origins_down = true;
  views[1].origins_detail = "every endpoint of app fails its health checks";
  // The view survives the store's encoding (and an older node's view without it reads false).
  auto decoded = DecodeNodeView(EncodeNodeView(views[1]));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->origins_down);
  EXPECT_EQ(decoded->origins_detail, views[1].origins_detail);
  std::optional<RegionHealth> h = FleetRegionHealth(views, "us-east-1", 20);
  ASSERT_TRUE(h.has_value());
  EXPECT_TRUE(h->origins_down);
  EXPECT_NE(h->detail.find("(node b)"), std::string::npos) << h->detail;
  // One success anywhere in the region: not down.
  views[0].local.requests = 5;
  views[0].local.errors = 4;
  EXPECT_FALSE(FleetRegionHealth(views, "us-east-1", 20)->origins_down);
  // Without checks: 20 failed attempts and none that succeeded; not 3.
  std::vector<NodeView> counted = {View("a", "us-east-1", 3, 3, 0, 0)};
  EXPECT_FALSE(FleetRegionHealth(counted, "us-east-1", 20)->origins_down);
  counted[0].local.requests = counted[0].local.errors = 25;
  EXPECT_TRUE(FleetRegionHealth(counted, "us-east-1", 20)->origins_down);
}

TEST(FleetViewTest, TunnelsIntoARegionCountOnceThereAreEnough) {
  std::vector<NodeView> views = {View("c", "eu-west-1", 1000, 0, 1000, 0),
                                 View("a", "us-east-1", 0, 0, 0, 0),
                                 View("b", "us-west-2", 0, 0, 0, 0)};
  views[1].tunnels["eu-west-1"].requests = 10;
  views[1].tunnels["eu-west-1"].errors = 5;
  // 10 tunneled requests say nothing yet.
  EXPECT_DOUBLE_EQ(FleetRegionHealth(views, "eu-west-1", 20)->error_rate, 0);
  // 30 over two nodes do: 15 of them failed.
  views[2].tunnels["eu-west-1"].requests = 20;
  views[2].tunnels["eu-west-1"].errors = 10;
  EXPECT_DOUBLE_EQ(FleetRegionHealth(views, "eu-west-1", 20)->error_rate, 0.5);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

NodeView Signal(const std::string& node, const std::string& region, double entry, double requests,
                std::map<std::string, double> serving) {
  NodeView v = View(node, region, 0, 0, 0, 0);
  v.has_signal = true;
  v.entry_sps = entry;
  v.requests_per_second = requests;
  v.serving_sps = std::move(serving);
  return v;
}

TEST(FleetViewTest, TheSignalRoundTripsAndIsOptional) {
  NodeView v = Signal("a", "us-east-1", 12.5, 60, {{"us-east-1", 10}, {"eu-west-1", 2.5}});
  absl::StatusOr<NodeView> back = DecodeNodeView(EncodeNodeView(v));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->has_signal);
  EXPECT_DOUBLE_EQ(back->entry_sps, 12.5);
  EXPECT_DOUBLE_EQ(back->requests_per_second, 60);
  EXPECT_EQ(back->serving_sps, v.serving_sps);
  // A view from an older node has none.
  absl::StatusOr<NodeView> old = DecodeNodeView(EncodeNodeView(View("b", "us-east-1", 1, 0, 1, 0)));
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->has_signal);
  // A bad one is refused.
  std::string text = EncodeNodeView(v);
  text.replace(text.find("\"entry_sps\":12.5"), 16, "\"entry_sps\":-1.0");
  EXPECT_FALSE(DecodeNodeView(text).ok());
}

TEST(FleetViewTest, SignalsSumByEntryAndByServingRegion) {
  std::vector<NodeView> views = {
      Signal("e1", "us-east-1", 10, 50, {{"us-east-1", 6}, {"eu-west-1", 4}}),
      Signal("e2", "us-east-1", 20, 70, {{"us-east-1", 20}}),
      Signal("w1", "eu-west-1", 5, 30, {{"eu-west-1", 5}}),
      View("x1", "us-west-2", 1, 0, 1, 0),  // no signal: us-west-2 does not report
  };
  std::map<std::string, size_t> reported;
  std::map<std::string, SignalPoint> sums = SumSignals(views, &reported);
  EXPECT_EQ(reported, (std::map<std::string, size_t>{{"eu-west-1", 1}, {"us-east-1", 2}}));
  EXPECT_DOUBLE_EQ(sums["us-east-1"].entry_sps, 30);
  EXPECT_DOUBLE_EQ(sums["us-east-1"].requests_per_second, 120);
  EXPECT_DOUBLE_EQ(sums["us-east-1"].serving_sps, 26);
  EXPECT_DOUBLE_EQ(sums["eu-west-1"].entry_sps, 5);
  EXPECT_DOUBLE_EQ(sums["eu-west-1"].serving_sps, 9);
  // A node of us-east-1 that says nothing (an older release): us-east-1 is not reported, its
  // sum would be short.
  views.push_back(View("e3", "us-east-1", 1, 0, 1, 0));
  SumSignals(views, &reported);
  EXPECT_EQ(reported, (std::map<std::string, size_t>{{"eu-west-1", 1}}));
}

TEST(FleetViewTest, CapacityRoundTripsIsCheckedAndSumsByRegion) {
  NodeView a;
  a.node = "a";
  a.region = "eu-west-1";
  a.capacity.known = true;
  a.capacity.capacity_rps = 1000;
  a.capacity.standby_capacity_rps = 1500;
  a.capacity.source = "configured";
  a.capacity.load_rps = 400;
  a.capacity.cohort_rps = {{"south-america", 20}};
  a.capacity.standbys = {"*"};
  a.capacity.standby_version = 9;
  a.capacity.standby_endpoints = 0;
  a.capacity.injected_endpoints = 1;
  absl::StatusOr<NodeView> back = DecodeNodeView(EncodeNodeView(a));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(EncodeNodeView(*back), EncodeNodeView(a));
  EXPECT_EQ(back->capacity.standbys, std::vector<std::string>{"*"});
  NodeView b = a;
  b.node = "b";
  b.capacity.standbys = {};
  b.capacity.standby_capacity_rps = 1000;  // its standby not in yet
  b.capacity.standby_endpoints = 1;
  b.capacity.injected_endpoints = 0;
  NodeView old = a;
  old.node = "old";
  old.capacity = NodeCapacity{};  // an older release: no capacity
  std::map<std::string, RegionCapacity> sums = SumCapacity({a, b, old}, 0);
  const RegionCapacity& eu = sums["eu-west-1"];
  EXPECT_EQ(eu.nodes, 3u);
  EXPECT_EQ(eu.reporting, 2u);
  EXPECT_EQ(eu.applied, 1u);
  EXPECT_DOUBLE_EQ(eu.capacity_rps, 2000);
  EXPECT_DOUBLE_EQ(eu.standby_capacity_rps, 2500);
  EXPECT_DOUBLE_EQ(eu.load_rps, 800);
  EXPECT_DOUBLE_EQ(eu.cohort_rps.at("south-america"), 40);
  // A node that applied only an older table's standbys does not count for a newer version.
  EXPECT_EQ(SumCapacity({a}, 10)["eu-west-1"].applied, 0u);
  // A node without any standby endpoint has nothing to wait for, whatever it applied.
  NodeView bare = b;
  bare.capacity.standby_endpoints = 0;
  EXPECT_EQ(SumCapacity({bare}, 10)["eu-west-1"].applied, 1u);
  // Damaged capacity is refused, naming the field.
  for (const char* bad : {R"({"capacity_rps": -1})", R"("x")"}) {
    NodeCapacity c;
    absl::Status s = CapacityFromJson(nlohmann::json::parse(bad), &c);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("capacity"), std::string::npos) << s;
  }
  nlohmann::json j = CapacityToJson(a.capacity);
  j["standbys"] = {"bad name"};
  NodeCapacity c;
  EXPECT_NE(CapacityFromJson(j, &c).message().find("standbys"), std::string_view::npos);
  j = CapacityToJson(a.capacity);
  j["source"] = "guessed";
  EXPECT_NE(CapacityFromJson(j, &c).message().find("source"), std::string_view::npos);
}

}  // namespace
}  // namespace sluice
