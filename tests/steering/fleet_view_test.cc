#include "steering/fleet_view.h"

#include <functional>
#include <optional>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

// Whether a node can lead: absent from an older node's view (unknown), strict when present.
TEST(FleetViewTest, CanLeadIsOptionalAndStrict) {
  NodeView v = View("n", "us-east-1", 10, 1, 10, 0);
  absl::StatusOr<NodeView> back = DecodeNodeView(EncodeNodeView(v));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->can_lead.has_value());
  for (bool can : {true, false}) {
    v.can_lead = can;
    back = DecodeNodeView(EncodeNodeView(v));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->can_lead, std::optional<bool>(can));
  }
  nlohmann::json j = nlohmann::json::parse(EncodeNodeView(v));
  j["can_lead"] = "yes";
  back = DecodeNodeView(j.dump());
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().message(), "can_lead: must be a boolean");
}

// Nodes that could campaign: every view with a region but those that say they cannot lead.
TEST(FleetViewTest, CountsTheCandidates) {
  std::vector<NodeView> views;
  for (int i = 0; i < 5; ++i) views.push_back(View(absl::StrCat("n", i), "us-east-1", 1, 0, 1, 0));
  views[0].can_lead = true;
  views[1].can_lead = false;              // does not fit the state, or stops
  views[3].region = "";                   // summed nowhere, counted nowhere
  EXPECT_EQ(CountCandidates(views), 3u);  // n0, n2 (an older release: may), n4
  EXPECT_EQ(CountCandidates({}), 0u);
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

// A node with a configured capacity of 1,000 rps that serves with its one standby (1,500 rps
// with it), at table version 9.
void ServeWithItsStandby(NodeView* v) {
  v->capacity.known = true;
  v->capacity.capacity_rps = 1000;
  v->capacity.standby_capacity_rps = 1500;
  v->capacity.source = "configured";
  v->capacity.load_rps = 400;
  v->capacity.cohort_rps = {{"south-america", 20}};
  v->capacity.standbys = {"*"};
  v->capacity.standby_version = 9;
  v->capacity.standby_endpoints = 0;
  v->capacity.injected_endpoints = 1;
}

TEST(FleetViewTest, CapacityRoundTripsIsCheckedAndSumsByRegion) {
  NodeView a;
  a.node = "a";
  a.region = "eu-west-1";
  ServeWithItsStandby(&a);
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

namespace sluice {
namespace {

// Every field, doubles as hex floats (exact), so two sums compare field by field and a
// difference reads as one.
std::string Describe(const std::optional<RegionHealth>& h) {
  if (!h) return "none";
  return absl::StrFormat(
      "reachable=%d requests=%d error_rate=%a shed_rate=%a p99=%dns+%a origins_down=%d "
      "detail=\"%s\"",
      h->reachable, h->requests, h->error_rate, h->shed_rate, absl::ToInt64Nanoseconds(h->p99),
      absl::ToDoubleNanoseconds(h->p99 - absl::Nanoseconds(absl::ToInt64Nanoseconds(h->p99))),
      h->origins_down, h->detail);
}

std::string Describe(const std::map<std::string, SignalPoint>& signals,
                     const std::map<std::string, size_t>& reported) {
  std::string out;
  for (const auto& [region, p] : signals) {
    absl::StrAppendFormat(&out, "%s: entry=%a serving=%a requests=%a\n", region, p.entry_sps,
                          p.serving_sps, p.requests_per_second);
  }
  for (const auto& [region, n] : reported)
    absl::StrAppendFormat(&out, "reported %s=%d\n", region, n);
  return out;
}

std::string Describe(const std::map<std::string, RegionCapacity>& capacity) {
  std::string out;
  for (const auto& [region, c] : capacity) {
    absl::StrAppendFormat(&out,
                          "%s: nodes=%d reporting=%d unknown=%d capacity=%a standby=%a load=%a "
                          "waiting=%d injected=%d applied=%d cohorts:",
                          region, c.nodes, c.reporting, c.unknown, c.capacity_rps,
                          c.standby_capacity_rps, c.load_rps, c.standby_endpoints,
                          c.injected_endpoints, c.applied);
    for (const auto& [cohort, rate] : c.cohort_rps)
      absl::StrAppendFormat(&out, " %s=%a", cohort, rate);
    out += "\n";
  }
  return out;
}

const std::vector<std::string> kSummedRegions = {"us-east-1", "eu-west-1", "ap-south-1",
                                                 "sa-east-1"};

// What the per-view functions answer of `views`, and what the sums answer, must be the same.
void ExpectSameAsViews(const std::vector<NodeView>& views,
                       const std::map<std::string, RegionSum>& sums, const std::string& trace) {
  SCOPED_TRACE(trace);
  std::vector<std::string> regions = kSummedRegions;
  regions.push_back("nowhere");
  for (const std::string& region : regions) {
    for (uint64_t min : {uint64_t{0}, uint64_t{1}, uint64_t{20}, kMinTunnelRequests * 5}) {
      std::optional<RegionHealth> want = FleetRegionHealth(views, region, min);
      std::optional<RegionHealth> got = RegionHealthFromSums(sums, region, min);
      ASSERT_EQ(Describe(got), Describe(want)) << region << " min " << min;
      if (want) {
        EXPECT_EQ(got->p99, want->p99);
      }
    }
  }
  std::map<std::string, size_t> want_reported = {{"stale", 1}};
  std::map<std::string, size_t> got_reported = {{"stale", 1}};
  std::map<std::string, SignalPoint> want = SumSignals(views, &want_reported);
  std::map<std::string, SignalPoint> got = SignalsFromSums(sums, &got_reported);
  EXPECT_EQ(Describe(got, got_reported), Describe(want, want_reported));
  EXPECT_EQ(Describe(SignalsFromSums(sums, nullptr), {}), Describe(want, {}));
  EXPECT_EQ(Describe(CapacityFromSums(sums)), Describe(SumCapacity(views, 0)));
}

// A random fleet: nodes of four regions and some without one, silent or not, with origins
// down, tunnels and serving starts naming regions with and without nodes, capacity known or
// not, standbys in or waiting.
std::vector<NodeView> RandomFleet(std::mt19937_64& rng) {
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  auto chance = [&](int percent) { return pick(100) < static_cast<size_t>(percent); };
  auto rate = [&] {
    return chance(10) ? 0.0 : std::uniform_real_distribution<double>(0, 1000)(rng);
  };
  auto totals = [&] {
    TrafficTotals t;
    t.requests = pick(4) == 0 ? 0 : pick(30);
    t.errors = chance(30) ? t.requests : (t.requests ? pick(t.requests + 1) : 0);
    t.sheds = pick(5);
    t.starts = pick(50);
    for (uint64_t& bucket : t.latency) bucket = chance(30) ? pick(20) : 0;
    return t;
  };
  const std::vector<std::string> own = {"", "us-east-1", "eu-west-1", "ap-south-1"};
  std::vector<NodeView> views(pick(41));
  for (size_t i = 0; i < views.size(); ++i) {
    NodeView& v = views[i];
    v.node = absl::StrFormat("node-%d", i);
    v.region = own[pick(own.size())];
    v.version = 5 + pick(3);
    v.local = totals();
    for (int t = static_cast<int>(pick(3)); t > 0; --t) {
      v.tunnels[kSummedRegions[pick(kSummedRegions.size())]] += totals();
    }
    if (chance(20)) {
      v.origins_down = true;
      v.origins_detail = absl::StrFormat("checks of node %d fail", i);
    }
    if (chance(70)) {
      v.has_signal = true;
      v.entry_sps = rate();
      v.requests_per_second = rate();
      for (int s = static_cast<int>(pick(3)); s > 0; --s) {
        v.serving_sps[kSummedRegions[pick(kSummedRegions.size())]] = rate();
      }
    } else if (chance(30)) {
      v.serving_sps["sa-east-1"] = rate();  // a silent node's leftovers count nowhere
    }
    if (chance(60)) {
      NodeCapacity& c = v.capacity;
      c.known = true;
      c.capacity_rps = chance(25) ? 0 : rate();
      c.standby_capacity_rps = chance(50) ? 0 : rate();
      c.source = c.capacity_rps > 0 ? "configured" : "none";
      c.load_rps = rate();
      for (const char* cohort : {"south-america", "india"}) {
        if (chance(50)) c.cohort_rps[cohort] = rate();
      }
      if (chance(40)) c.standbys.push_back(chance(50) ? "*" : "app");
      c.standby_version = pick(3);
      c.standby_endpoints = static_cast<uint32_t>(pick(3));
      c.injected_endpoints = static_cast<uint32_t>(pick(3));
    }
  }
  return views;
}

TEST(RegionSumTest, AnswersExactlyWhatTheViewsAnswerForRandomFleets) {
  std::mt19937_64 rng(20240611);
  for (int fleet = 0; fleet < 500; ++fleet) {
    std::vector<NodeView> views = RandomFleet(rng);
    std::map<std::string, RegionSum> sums = SumRegions(views);
    ExpectSameAsViews(views, sums, absl::StrFormat("fleet %d of %d views", fleet, views.size()));
    // And after the store: a follower reads the same.
    FleetRegions doc;
    doc.leader = "node-0";
    doc.updated = absl::FromUnixMillis(1800000000123 + fleet);
    doc.revision = 1000 + fleet;
    doc.regions = sums;
    std::string text = EncodeFleetRegions(doc);
    absl::StatusOr<FleetRegions> back = DecodeFleetRegions(text);
    ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
    EXPECT_EQ(back->leader, doc.leader);
    EXPECT_EQ(back->updated, doc.updated);
    EXPECT_EQ(back->revision, doc.revision);
    ExpectSameAsViews(views, back->regions, absl::StrFormat("fleet %d decoded", fleet));
    EXPECT_EQ(EncodeFleetRegions(*back), text);  // the fields no function reads too
    if (HasFatalFailure() || HasFailure()) break;
  }
}

NodeView Node(const std::string& node, const std::string& region) {
  NodeView v;
  v.node = node;
  v.region = region;
  v.version = 7;
  return v;
}

TEST(RegionSumTest, ViewsWithoutARegionCountNowhereButTheirTunnelsDo) {
  std::vector<NodeView> views = {Node("a", "us-east-1"), Node("lost", "")};
  views[1].local.requests = views[1].local.errors = 100;
  views[1].has_signal = true;
  views[1].entry_sps = 3;
  views[1].capacity.known = true;
  views[1].capacity.capacity_rps = 50;
  views[1].tunnels["us-east-1"].requests = 40;
  views[1].tunnels["us-east-1"].errors = 40;
  std::map<std::string, RegionSum> sums = SumRegions(views);
  EXPECT_EQ(sums.count(""), 0u);
  ASSERT_EQ(sums.size(), 1u);
  EXPECT_EQ(sums["us-east-1"].nodes, 1u);
  EXPECT_EQ(sums["us-east-1"].tunneled.requests, 40u);
  ExpectSameAsViews(views, sums, "no region");
  EXPECT_DOUBLE_EQ(RegionHealthFromSums(sums, "us-east-1", 20)->error_rate, 1.0);
  EXPECT_EQ(CapacityFromSums(sums).size(), 1u);
  std::map<std::string, size_t> reported;
  EXPECT_EQ(SignalsFromSums(sums, &reported).size(), 0u);  // us-east-1's node is silent
  EXPECT_TRUE(reported.empty());
  // FleetRegionHealth of "" sums the views without a region; the sums hold no such region.
  EXPECT_TRUE(FleetRegionHealth(views, "", 20).has_value());
  EXPECT_FALSE(RegionHealthFromSums(sums, "", 20).has_value());
}

TEST(RegionSumTest, ARegionOnlyServedHasASignalButNoHealthOrCapacity) {
  NodeView a = Node("a", "us-east-1");
  a.has_signal = true;
  a.entry_sps = 10;
  a.serving_sps = {{"us-east-1", 6}, {"eu-west-1", 4}};
  std::map<std::string, RegionSum> sums = SumRegions({a});
  ASSERT_EQ(sums.count("eu-west-1"), 1u);
  EXPECT_EQ(sums["eu-west-1"].nodes, 0u);
  EXPECT_TRUE(sums["eu-west-1"].served);
  std::map<std::string, size_t> reported;
  std::map<std::string, SignalPoint> signals = SignalsFromSums(sums, &reported);
  ASSERT_EQ(signals.count("eu-west-1"), 1u);
  EXPECT_DOUBLE_EQ(signals["eu-west-1"].serving_sps, 4);
  EXPECT_EQ(reported, (std::map<std::string, size_t>{{"us-east-1", 1}}));
  EXPECT_FALSE(RegionHealthFromSums(sums, "eu-west-1", 20).has_value());
  EXPECT_EQ(CapacityFromSums(sums).count("eu-west-1"), 0u);
  // Served at a rate of 0 still makes an entry, as in SumSignals.
  a.serving_sps = {{"eu-west-1", 0}};
  EXPECT_EQ(SignalsFromSums(SumRegions({a}), nullptr).count("eu-west-1"), 1u);
  ExpectSameAsViews({a}, SumRegions({a}), "served at 0");
}

TEST(RegionSumTest, ARegionWhoseNodesAreAllSilentHasNoSignalEntry) {
  std::vector<NodeView> views = {Node("a", "us-east-1"), Node("b", "us-east-1")};
  std::map<std::string, RegionSum> sums = SumRegions(views);
  EXPECT_EQ(sums["us-east-1"].silent_nodes, 2u);
  std::map<std::string, size_t> reported;
  EXPECT_TRUE(SignalsFromSums(sums, &reported).empty());
  EXPECT_TRUE(reported.empty());
  EXPECT_TRUE(SumSignals(views, nullptr).empty());
  // ... unless a node elsewhere says it served starts there.
  NodeView w = Node("w", "eu-west-1");
  w.has_signal = true;
  w.serving_sps["us-east-1"] = 2;
  views.push_back(w);
  sums = SumRegions(views);
  EXPECT_EQ(SignalsFromSums(sums, &reported).count("us-east-1"), 1u);
  EXPECT_EQ(reported, (std::map<std::string, size_t>{{"eu-west-1", 1}}));
  ExpectSameAsViews(views, sums, "silent");
}

TEST(RegionSumTest, ARegionWithASilentNodeIsNotReported) {
  NodeView a = Node("a", "us-east-1");
  a.has_signal = true;
  a.entry_sps = 5;
  NodeView b = Node("b", "us-east-1");  // an older release
  std::map<std::string, RegionSum> sums = SumRegions({a, b});
  EXPECT_EQ(sums["us-east-1"].signal_nodes, 1u);
  EXPECT_EQ(sums["us-east-1"].silent_nodes, 1u);
  std::map<std::string, size_t> reported = {{"stale", 3}};
  std::map<std::string, SignalPoint> signals = SignalsFromSums(sums, &reported);
  EXPECT_DOUBLE_EQ(signals.at("us-east-1").entry_sps, 5);  // there, but short
  EXPECT_TRUE(reported.empty());
  ExpectSameAsViews({a, b}, sums, "one silent");
}

TEST(RegionSumTest, NamesTheLastNodeWhoseOriginsAreDown) {
  std::vector<NodeView> views = {Node("a", "us-east-1"), Node("b", "us-east-1"),
                                 Node("c", "us-east-1"), Node("d", "eu-west-1")};
  views[0].origins_down = true;
  views[0].origins_detail = "first";
  views[1].origins_down = true;
  views[1].origins_detail = "second";
  views[3].origins_down = true;
  views[3].origins_detail = "elsewhere";
  std::map<std::string, RegionSum> sums = SumRegions(views);
  EXPECT_EQ(sums["us-east-1"].origins_node, "b");
  std::optional<RegionHealth> h = RegionHealthFromSums(sums, "us-east-1", 20);
  ASSERT_TRUE(h.has_value());
  EXPECT_TRUE(h->origins_down);
  EXPECT_EQ(h->detail, "second (node b)");
  ExpectSameAsViews(views, sums, "down");
  // One success in the region: not down, whatever the checks say.
  views[2].local.requests = 2;
  views[2].local.errors = 1;
  sums = SumRegions(views);
  EXPECT_FALSE(RegionHealthFromSums(sums, "us-east-1", 20)->origins_down);
  ExpectSameAsViews(views, sums, "one success");
}

TEST(RegionSumTest, TunnelsIntoARegionWithAndWithoutNodes) {
  std::vector<NodeView> views = {Node("a", "us-east-1"), Node("b", "eu-west-1")};
  views[0].tunnels["eu-west-1"].requests = 30;
  views[0].tunnels["eu-west-1"].errors = 15;
  views[0].tunnels["sa-east-1"].requests = 30;  // a savior without a node of its own
  views[1].tunnels["eu-west-1"].requests = 10;  // into its own region: counts too
  std::map<std::string, RegionSum> sums = SumRegions(views);
  EXPECT_EQ(sums["eu-west-1"].tunneled.requests, 40u);
  EXPECT_DOUBLE_EQ(RegionHealthFromSums(sums, "eu-west-1", 20)->error_rate, 15.0 / 40);
  EXPECT_EQ(sums["sa-east-1"].nodes, 0u);
  EXPECT_FALSE(RegionHealthFromSums(sums, "sa-east-1", 20).has_value());
  EXPECT_EQ(SignalsFromSums(sums, nullptr).count("sa-east-1"), 0u);
  EXPECT_EQ(CapacityFromSums(sums).count("sa-east-1"), 0u);
  ExpectSameAsViews(views, sums, "tunnels");
}

TEST(RegionSumTest, CapacitySumsPerRegionAndCountsVersions) {
  NodeView a = Node("a", "eu-west-1");
  ServeWithItsStandby(&a);
  NodeView b = a;
  b.node = "b";
  b.version = 8;
  b.capacity.standbys = {};
  b.capacity.capacity_rps = 0;  // does not know its own
  b.capacity.standby_endpoints = 1;
  NodeView old = Node("old", "eu-west-1");  // no capacity
  std::map<std::string, RegionSum> sums = SumRegions({a, b, old});
  const RegionCapacity& eu = sums["eu-west-1"].capacity;
  EXPECT_EQ(eu.nodes, 3u);
  EXPECT_EQ(eu.reporting, 2u);
  EXPECT_EQ(eu.unknown, 1u);
  EXPECT_EQ(eu.applied, 1u);
  EXPECT_DOUBLE_EQ(eu.standby_capacity_rps, 3000);
  EXPECT_DOUBLE_EQ(eu.cohort_rps.at("south-america"), 40);
  EXPECT_EQ(eu.standby_endpoints, 1u);
  EXPECT_EQ(eu.injected_endpoints, 2u);
  EXPECT_EQ(sums["eu-west-1"].versions, (std::map<uint64_t, uint32_t>{{7, 2}, {8, 1}}));
  ExpectSameAsViews({a, b, old}, sums, "capacity");
}

TEST(RegionSumTest, EmptyFleet) {
  EXPECT_TRUE(SumRegions({}).empty());
  ExpectSameAsViews({}, {}, "empty");
  FleetRegions doc;
  doc.leader = "a";
  absl::StatusOr<FleetRegions> back = DecodeFleetRegions(EncodeFleetRegions(doc));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->regions.empty());
}

// The standbys round-trip in their order; an older leader's document, without them, names none.
TEST(RegionSumTest, TheDocumentNamesTheStandbysInOrder) {
  FleetRegions doc;
  doc.leader = "a";
  doc.standbys = {"node-z", "node-b"};
  absl::StatusOr<FleetRegions> back = DecodeFleetRegions(EncodeFleetRegions(doc));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->standbys, (std::vector<std::string>{"node-z", "node-b"}));
  // A later release's longer list: the first ones this one takes.
  doc.standbys.clear();
  for (size_t i = 0; i <= kMaxFleetStandbys; ++i) doc.standbys.push_back(std::to_string(i));
  back = DecodeFleetRegions(EncodeFleetRegions(doc));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->standbys.size(), kMaxFleetStandbys);
  EXPECT_EQ(back->standbys.front(), "0");
  nlohmann::json older = nlohmann::json::parse(EncodeFleetRegions(doc));
  older.erase("standbys");
  back = DecodeFleetRegions(older.dump());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->standbys.empty());
}

// The count of nodes that could campaign round-trips; an older leader's document has none; a
// count above the nodes summed counts as the nodes; one that is not a count is refused.
TEST(RegionSumTest, TheDocumentCountsTheCandidates) {
  std::vector<NodeView> views;
  for (int i = 0; i < 4; ++i) views.push_back(View(absl::StrCat("n", i), "us-east-1", 1, 0, 1, 0));
  views[2].can_lead = false;
  FleetRegions doc;
  doc.leader = "n0";
  doc.regions = SumRegions(views);
  doc.candidates = CountCandidates(views);
  absl::StatusOr<FleetRegions> back = DecodeFleetRegions(EncodeFleetRegions(doc));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->candidates, std::optional<uint32_t>(3));
  doc.candidates.reset();
  back = DecodeFleetRegions(EncodeFleetRegions(doc));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->candidates.has_value());
  nlohmann::json more = nlohmann::json::parse(EncodeFleetRegions(doc));
  more["candidates"] = 9;
  back = DecodeFleetRegions(more.dump());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->candidates, std::optional<uint32_t>(4));
  for (const char* bad : {"-1", "\"3\"", "1.5"}) {
    nlohmann::json j = nlohmann::json::parse(EncodeFleetRegions(doc));
    j["candidates"] = nlohmann::json::parse(bad);
    back = DecodeFleetRegions(j.dump());
    ASSERT_FALSE(back.ok()) << bad;
    EXPECT_NE(back.status().message().find("candidates"), std::string_view::npos) << back.status();
  }
}

TEST(RegionSumTest, TheDocumentCutsALongDetailAndRoundTripsTheRest) {
  NodeView a = Node("a", "us-east-1");
  a.origins_down = true;
  a.origins_detail = std::string(kMaxOriginsDetail - 1, 'x') + "\xC3\xA9";  // é across the cut
  FleetRegions doc;
  doc.leader = "a";
  doc.regions = SumRegions({a});
  absl::StatusOr<FleetRegions> back = DecodeFleetRegions(EncodeFleetRegions(doc));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->regions["us-east-1"].origins_detail, std::string(kMaxOriginsDetail - 1, 'x'));
  EXPECT_EQ(back->regions["us-east-1"].origins_node, "a");
  EXPECT_TRUE(back->regions["us-east-1"].origins_down);
}

// A 3,000-node fleet in three regions, every node with a signal and a capacity.
TEST(RegionSumTest, TheDocumentOfAFleetStaysSmall) {
  std::vector<NodeView> views;
  const std::vector<std::string> regions = {"us-east-1", "eu-west-1", "ap-south-1"};
  for (int i = 0; i < 3000; ++i) {
    NodeView v = Node(absl::StrFormat("node-%04d", i), regions[i % 3]);
    v.version = 1000000 + i % 2;
    v.local.requests = 123456789;
    v.local.errors = 1234;
    v.local.sheds = 99;
    v.local.starts = 987654;
    for (uint64_t& bucket : v.local.latency) bucket = 1234567;
    for (const std::string& savior : regions) {
      if (savior != v.region) v.tunnels[savior] = v.local;
    }
    v.origins_down = i == 17;
    v.origins_detail = v.origins_down ? "every endpoint of app fails its health checks" : "";
    v.has_signal = true;
    v.entry_sps = 1234.56789 + i;
    v.requests_per_second = 9876.54321 + i;
    for (const std::string& serving : regions) v.serving_sps[serving] = 333.333333 + i;
    v.capacity.known = true;
    v.capacity.capacity_rps = 5000.123 + i;
    v.capacity.standby_capacity_rps = 6000.456 + i;
    v.capacity.source = "learned";
    v.capacity.load_rps = 1000.789 + i;
    v.capacity.cohort_rps = {{"south-america", 12.3456 + i}, {"india", 65.4321 + i}};
    v.capacity.standbys = {"*"};
    v.capacity.standby_endpoints = 2;
    views.push_back(std::move(v));
  }
  FleetRegions doc;
  doc.leader = "node-0000";
  doc.updated = absl::FromUnixMillis(1800000000123);
  doc.revision = 123456789;
  doc.regions = SumRegions(views);
  std::string text = EncodeFleetRegions(doc);
  EXPECT_LT(text.size(), 8u * 1024) << text;
  RecordProperty("encoded_bytes", static_cast<int>(text.size()));
  absl::StatusOr<FleetRegions> back = DecodeFleetRegions(text);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameAsViews(views, back->regions, "3,000 nodes");
}

TEST(RegionSumTest, DecodeRefusesDamagedDocumentsNamingTheField) {
  NodeView a = Node("a", "us-east-1");
  a.local.requests = 10;
  a.local.errors = 1;
  a.has_signal = true;
  a.entry_sps = 2.5;
  a.capacity.known = true;
  a.capacity.source = "none";
  a.capacity.cohort_rps = {{"india", 1}};
  FleetRegions doc;
  doc.leader = "a";
  doc.revision = 5;
  doc.regions = SumRegions({a});
  const nlohmann::json good = nlohmann::json::parse(EncodeFleetRegions(doc));
  ASSERT_TRUE(DecodeFleetRegions(good.dump()).ok());
  auto error = [](const nlohmann::json& j) {
    absl::StatusOr<FleetRegions> r = DecodeFleetRegions(j.dump());
    return r.ok() ? std::string("accepted") : std::string(r.status().message());
  };
  auto damaged = [&](const std::function<void(nlohmann::json&)>& damage) {
    nlohmann::json j = good;
    damage(j);
    return error(j);
  };
  EXPECT_EQ(DecodeFleetRegions("{").status().message(), "a fleet's regions must be a JSON object");
  EXPECT_EQ(DecodeFleetRegions("[1]").status().message(),
            "a fleet's regions must be a JSON object");
  const std::string r = "regions.us-east-1";
  struct Case {
    std::string field;  // what the message must name
    std::function<void(nlohmann::json&)> damage;
  };
  const std::vector<Case> cases = {
      {"format", [](nlohmann::json& j) { j["format"] = "sluice-fleet-regions/2"; }},
      {"format", [](nlohmann::json& j) { j.erase("format"); }},
      {"document.leader", [](nlohmann::json& j) { j["leader"] = 7; }},
      {"document.leader", [](nlohmann::json& j) { j["leader"] = ""; }},
      {"document.leader", [](nlohmann::json& j) { j["leader"] = std::string(300, 'a'); }},
      {"document.updated_ms", [](nlohmann::json& j) { j["updated_ms"] = -1; }},
      {"document.updated_ms", [](nlohmann::json& j) { j["updated_ms"] = uint64_t{1} << 60; }},
      {"document.revision", [](nlohmann::json& j) { j["revision"] = -5; }},
      {"document.revision", [](nlohmann::json& j) { j["revision"] = uint64_t{1} << 63; }},
      {"document.revision", [](nlohmann::json& j) { j["revision"] = "5"; }},
      {"regions", [](nlohmann::json& j) { j["regions"] = nlohmann::json::array(); }},
      {"document.standbys", [](nlohmann::json& j) { j["standbys"] = "b"; }},
      {"document.standbys",
       [](nlohmann::json& j) {
         j["standbys"] = {"b", 7};
       }},
      {"document.standbys",
       [](nlohmann::json& j) {
         j["standbys"] = {"b", ""};
       }},
      {"document.standbys",
       [](nlohmann::json& j) {
         j["standbys"] = {"b", "b"};
       }},
      {"document.standbys",
       [](nlohmann::json& j) {
         j["standbys"] = {"b", std::string(300, 'b')};
       }},

      {"regions", [](nlohmann::json& j) { j.erase("regions"); }},
      {"regions: a region name must not be empty",
       [](nlohmann::json& j) { j["regions"][""] = j["regions"]["us-east-1"]; }},
      {"regions: \"US East\" is not a region name",
       [](nlohmann::json& j) { j["regions"]["US East"] = j["regions"]["us-east-1"]; }},
      {r + ": must be an object", [](nlohmann::json& j) { j["regions"]["us-east-1"] = 1; }},
      {r + ".nodes", [](nlohmann::json& j) { j["regions"]["us-east-1"]["nodes"] = -1; }},
      {r + ".nodes", [](nlohmann::json& j) { j["regions"]["us-east-1"]["nodes"] = 1.5; }},
      {r + ".nodes",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["nodes"] = uint64_t{1} << 32; }},
      {r + ".signal_nodes",
       [](nlohmann::json& j) { j["regions"]["us-east-1"].erase("signal_nodes"); }},
      {r + ": signal_nodes and silent_nodes must add up to nodes",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["silent_nodes"] = 1; }},
      {r + ".versions", [](nlohmann::json& j) { j["regions"]["us-east-1"]["versions"] = 7; }},
      {r + ".versions: \"07\" is not a table version",
       [](nlohmann::json& j) {
         j["regions"]["us-east-1"]["versions"] = {{"07", 1}};
       }},
      {r + ".versions: \"x\" is not a table version",
       [](nlohmann::json& j) {
         j["regions"]["us-east-1"]["versions"] = {{"x", 1}};
       }},
      {r + ".versions.7: must be at least 1",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["versions"]["7"] = 0; }},
      {r + ".versions.7",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["versions"]["7"] = -1; }},
      {r + ".versions: must count every node once",
       [](nlohmann::json& j) {
         j["regions"]["us-east-1"]["nodes"] = 2;
         j["regions"]["us-east-1"]["signal_nodes"] = 2;
         j["regions"]["us-east-1"]["capacity"]["nodes"] = 2;
       }},
      {r + ".local.requests",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["local"]["requests"] = -1; }},
      {r + ".local: more failed attempts than attempts",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["local"]["errors"] = 11; }},
      {r + ".tunneled.latency",
       [](nlohmann::json& j) {
         j["regions"]["us-east-1"]["tunneled"]["latency"] = {1, 2};
       }},
      {r + ".tunneled: must be an object",
       [](nlohmann::json& j) { j["regions"]["us-east-1"].erase("tunneled"); }},
      {r + ".origins_down",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["origins_down"] = 1; }},
      {r + ".origins_node",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["origins_node"] = 1; }},
      {r + ".origins_detail",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["origins_detail"] = nullptr; }},
      {r + ".origins_detail",
       [](nlohmann::json& j) {
         j["regions"]["us-east-1"]["origins_detail"] = std::string(4 * kMaxOriginsDetail, 'x');
       }},
      {r + ".entry_sps", [](nlohmann::json& j) { j["regions"]["us-east-1"]["entry_sps"] = -0.5; }},
      {r + ".requests_per_second",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["requests_per_second"] = "1"; }},
      {r + ".serving_sps",
       [](nlohmann::json& j) { j["regions"]["us-east-1"].erase("serving_sps"); }},
      {r + ".served", [](nlohmann::json& j) { j["regions"]["us-east-1"]["served"] = "yes"; }},
      {r + ".capacity: must be an object",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["capacity"] = 1; }},
      {r + ".capacity.nodes: must equal nodes",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["capacity"]["nodes"] = 2; }},
      {r + ".capacity.capacity_rps",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["capacity"]["capacity_rps"] = -1; }},
      {r + ".capacity.applied",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["capacity"]["applied"] = -1; }},
      {r + ".capacity: reporting must be at most nodes",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["capacity"]["reporting"] = 2; }},
      {r + ".capacity: reporting must be at most nodes",
       [](nlohmann::json& j) { j["regions"]["us-east-1"]["capacity"]["unknown"] = 2; }},
      {r + ".capacity.cohort_rps",
       [](nlohmann::json& j) {
         j["regions"]["us-east-1"]["capacity"]["cohort_rps"] = {{"Bad Name", 1}};
       }},
      {r + ".capacity.cohort_rps.india",
       [](nlohmann::json& j) {
         j["regions"]["us-east-1"]["capacity"]["cohort_rps"]["india"] = -1;
       }},
      {r + ".origins_down: a region without nodes",
       [](nlohmann::json& j) {
         nlohmann::json& e = j["regions"]["us-east-1"];
         e["nodes"] = e["signal_nodes"] = e["capacity"]["nodes"] = e["capacity"]["reporting"] = 0;
         e["capacity"]["unknown"] = e["capacity"]["applied"] = 0;
         e["versions"] = nlohmann::json::object();
         e["origins_down"] = true;
       }},
  };
  for (const Case& c : cases) {
    std::string message = damaged(c.damage);
    EXPECT_EQ(message.rfind(c.field, 0), 0u)
        << "want \"" << c.field << "...\", got \"" << message << "\"";
  }
  // Too many regions.
  nlohmann::json many = good;
  for (size_t i = 0; i <= kMaxFleetRegions; ++i) {
    many["regions"][absl::StrFormat("r%d", i)] = good["regions"]["us-east-1"];
  }
  EXPECT_EQ(error(many), "regions: must be an object of at most 10000 regions");
}

// A fleet's views go out every publish interval up to 500 nodes a second; beyond that each node
// waits its share, so etcd takes about 500 a second at any size.
TEST(FleetViewIntervalTest, GrowsWithTheFleetBeyondItsRate) {
  const absl::Duration second = absl::Seconds(1);
  EXPECT_EQ(FleetViewInterval(second, 0), second);
  EXPECT_EQ(FleetViewInterval(second, 3), second);
  EXPECT_EQ(FleetViewInterval(second, 500), second);
  EXPECT_EQ(FleetViewInterval(second, 1000), absl::Seconds(2));
  EXPECT_EQ(FleetViewInterval(second, 3000), absl::Seconds(6));
  EXPECT_EQ(FleetViewInterval(absl::Seconds(10), 3000), absl::Seconds(10));
  for (size_t nodes : {600, 1000, 3000, 30000}) {
    const double per_second =
        static_cast<double>(nodes) / absl::ToDoubleSeconds(FleetViewInterval(second, nodes));
    EXPECT_NEAR(per_second, kFleetViewsPerSecond, 1e-6) << nodes;
  }
}

}  // namespace
}  // namespace sluice
