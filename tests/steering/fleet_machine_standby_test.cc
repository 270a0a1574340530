// FleetMachine's standbys: the leader names one node (or as many as fleet.standbys says, of
// other regions first) in its sums; they follow the views beside it and campaign first when its key
// goes, so the new leader leads as soon as etcd answers its campaign instead of reading every view
// after it.
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "steering/fleet_machine.h"
#include "steering/fleet_view.h"
#include "tests/steering/fleet_machine_testing.h"

namespace sluice {
namespace {

using namespace fleet_testing;  // NOLINT(build/namespaces): the shared helpers

NodeView ViewOf(const std::string& node, const std::string& region) {
  NodeView view;
  view.node = node;
  view.region = region;
  view.updated = kStart;
  view.can_lead = true;
  return view;
}

FleetRecord ViewRecord(const NodeView& view, int64_t revision) {
  return FleetRecord{"/sluice/nodes/" + view.node, EncodeNodeView(view), revision, revision};
}

// The leader's sums of `views`, naming `standbys`, as a record at `revision`.
FleetRecord Sums(const std::vector<NodeView>& views, const std::vector<std::string>& standbys,
                 int64_t revision) {
  FleetRegions doc;
  doc.leader = "node-a";
  doc.updated = kStart;
  doc.revision = revision;
  doc.regions = SumRegions(views);
  doc.standbys = standbys;
  return FleetRecord{"/sluice/regions", EncodeFleetRegions(doc), 8, revision};
}

std::vector<NodeView> TwoNodes() {
  return {ViewOf("node-a", "us-east-1"), ViewOf("node-c", "us-west-2")};
}

std::vector<FleetRecord> Records(const std::vector<NodeView>& views) {
  std::vector<FleetRecord> records;
  for (const NodeView& view : views) records.push_back(ViewRecord(view, 12));
  return records;
}

// node-c joins a fleet led by node-a whose sums name it the standby, and reads `views`.
void JoinAsStandby(Node* c, const std::vector<NodeView>& views) {
  c->Join(kStart, {Leader("node-a", 9, 11)}, 11);
  c->m.WatchMessage(kStart, Events(13, {{false, Sums(views, {"node-c"}, 13)}}));
  c->m.ViewsAnswered(kStart, FleetViews{13, Records(views)});
  c->rec.Take();
}

absl::Time WakeTime(const std::string& line) {
  absl::Time at = absl::InfinitePast();
  EXPECT_EQ(line.rfind("wake at ", 0), 0u) << line;
  if (line.rfind("wake at ", 0) == 0) {
    std::string error;
    EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, line.substr(8), &at, &error)) << error;
  }
  return at;
}

// One per other region first (the leader's is us-east-1), smallest name first; those named
// stay while their views live; a fleet in one region gets standbys from it.
TEST(FleetMachineStandbyTest, TheLeaderNamesStandbysFromOtherRegionsAndKeepsThem) {
  Node a("node-a");
  a.JoinAndLead(kStart);
  a.m.set_standby_count(2);
  EXPECT_TRUE(a.m.standbys().empty());  // no views but its own yet
  a.m.WatchMessage(kStart, Events(20, {{false, ViewRecord(ViewOf("node-a", "us-east-1"), 20)},
                                       {false, ViewRecord(ViewOf("node-b", "us-east-1"), 20)},
                                       {false, ViewRecord(ViewOf("node-c", "us-west-2"), 20)},
                                       {false, ViewRecord(ViewOf("node-d", "us-west-2"), 20)},
                                       {false, ViewRecord(ViewOf("node-e", "eu-west-1"), 20)}}));
  absl::Time now = kStart + absl::Seconds(1);
  a.m.KeepAliveAnswered(now, now, kLease, FleetLease{kLease, 3});
  a.m.Tick(now);
  EXPECT_EQ(a.m.standbys(), (std::vector<std::string>{"node-c", "node-e"}));
  EXPECT_EQ(a.m.standby_rank(), 0u);

  // node-c's lease expired: node-e stays first, node-d takes us-west-2's place.
  a.m.PublishRegionsAnswered(now, kLease, 21);
  a.m.WatchMessage(now, Events(21, {{true, Deleted("/sluice/nodes/node-c", 21)}}));
  now += absl::Seconds(1);
  a.m.KeepAliveAnswered(now, now, kLease, FleetLease{kLease, 3});
  a.m.Tick(now);
  EXPECT_EQ(a.m.standbys(), (std::vector<std::string>{"node-e", "node-d"}));

  // Only its own region left: node-b.
  a.m.PublishRegionsAnswered(now, kLease, 22);
  a.m.WatchMessage(now, Events(22, {{true, Deleted("/sluice/nodes/node-d", 22)},
                                    {true, Deleted("/sluice/nodes/node-e", 22)}}));
  now += absl::Seconds(1);
  a.m.KeepAliveAnswered(now, now, kLease, FleetLease{kLease, 3});
  a.m.Tick(now);
  EXPECT_EQ(a.m.standbys(), (std::vector<std::string>{"node-b"}));

  // fleet.standbys: 0 names none.
  a.m.set_standby_count(0);
  a.m.PublishRegionsAnswered(now, kLease, 23);
  now += absl::Seconds(1);
  a.m.KeepAliveAnswered(now, now, kLease, FleetLease{kLease, 3});
  a.m.Tick(now);
  EXPECT_TRUE(a.m.standbys().empty());
}

// Only a node whose view says it can lead is named; a standby whose view stops saying so is
// replaced; the leader counts the views that could campaign (an older release's may).
TEST(FleetMachineStandbyTest, TheLeaderNamesOnlyNodesThatCanLead) {
  Node a("node-a");
  a.JoinAndLead(kStart);
  NodeView c = ViewOf("node-c", "us-west-2");
  NodeView d = ViewOf("node-d", "us-west-2");
  NodeView e = ViewOf("node-e", "eu-west-1");
  c.can_lead = false;  // does not fit the state
  e.can_lead.reset();  // an older release
  a.m.WatchMessage(kStart, Events(20, {{false, ViewRecord(ViewOf("node-a", "us-east-1"), 20)},
                                       {false, ViewRecord(c, 20)},
                                       {false, ViewRecord(d, 20)},
                                       {false, ViewRecord(e, 20)}}));
  absl::Time now = kStart + absl::Seconds(1);
  a.m.KeepAliveAnswered(now, now, kLease, FleetLease{kLease, 3});
  a.m.Tick(now);
  EXPECT_EQ(a.m.standbys(), (std::vector<std::string>{"node-d"}));
  EXPECT_EQ(a.m.candidates(), 3u);  // node-a, node-d, node-e
  EXPECT_EQ(a.m.fleet_size(), 4u);

  // node-d stops (its last view says so): node-c, able again, takes its place.
  a.m.PublishRegionsAnswered(now, kLease, 21);
  d.can_lead = false;
  c.can_lead = true;
  a.m.WatchMessage(now, Events(21, {{false, ViewRecord(d, 21)}, {false, ViewRecord(c, 21)}}));
  now += absl::Seconds(1);
  a.m.KeepAliveAnswered(now, now, kLease, FleetLease{kLease, 3});
  a.m.Tick(now);
  EXPECT_EQ(a.m.standbys(), (std::vector<std::string>{"node-c"}));
  EXPECT_EQ(a.m.candidates(), 3u);  // node-a, node-c, node-e
}

// A follower spreads its campaign over the nodes that could campaign, as the leader's sums
// count them (over every node with an older leader's sums), and keeps the count once the sums
// go with the leader's lease.
TEST(FleetMachineStandbyTest, CampaignsSpreadOverTheCandidates) {
  std::vector<NodeView> views;
  for (int i = 0; i < 400; ++i) {
    views.push_back(ViewOf(absl::StrFormat("node-%03d", i), "us-west-2"));
    views.back().can_lead = i < 20;
  }
  for (bool older : {false, true}) {
    Node b("node-b");
    b.Join(kStart, {Leader("node-a", 9, 11)}, 11);
    FleetRegions doc;
    doc.leader = "node-a";
    doc.updated = kStart;
    doc.revision = 13;
    doc.regions = SumRegions(views);
    if (!older) doc.candidates = CountCandidates(views);
    b.m.WatchMessage(
        kStart,
        Events(13, {{false, FleetRecord{"/sluice/regions", EncodeFleetRegions(doc), 8, 13}}}));
    EXPECT_EQ(b.m.fleet_size(), 400u);
    EXPECT_EQ(b.m.candidates(), older ? 400u : 20u);
    b.rec.Take();
    b.m.WatchMessage(kStart, Events(14, {{true, Deleted("/sluice/regions", 14)},
                                         {true, Deleted("/sluice/leader", 14)}}));
    EXPECT_EQ(b.m.candidates(), older ? 400u : 20u);
    // No standby named: a random part of 50 ms per candidate.
    absl::Time at = absl::InfinitePast();
    for (const std::string& line : b.rec.Take()) {
      if (line.rfind("wake at ", 0) == 0) at = WakeTime(line);
    }
    ASSERT_NE(at, absl::InfinitePast()) << "no campaign wait (older: " << older << ")";
    EXPECT_LE(at - kStart, absl::Milliseconds(50) * (older ? 400 : 20));
  }
}

// The first standby follows the views, campaigns the moment the key goes without reading them,
// and leads with the answer; the second waits one head start, every other node both and more.
TEST(FleetMachineStandbyTest, TheFirstStandbyLeadsAsSoonAsItsCampaignIsAnswered) {
  const std::vector<NodeView> views = {ViewOf("node-a", "us-east-1"), ViewOf("node-c", "us-west-2"),
                                       ViewOf("node-e", "eu-west-1"),
                                       ViewOf("node-b", "us-east-1")};
  const FleetRecord sums = Sums(views, {"node-c", "node-e"}, 13);
  const absl::Time gone = kStart + absl::Seconds(1);
  auto leader_gone = [&](Node* n) {
    n->m.WatchMessage(gone, Events(14, {{true, Deleted("/sluice/leader", 14)},
                                        {true, Deleted("/sluice/regions", 14)},
                                        {true, Deleted("/sluice/nodes/node-a", 14)}}));
  };

  Node c("node-c");
  c.m.set_standby_count(2);
  c.Join(kStart, {Leader("node-a", 9, 11)}, 11);
  c.rec.Take();
  c.m.WatchMessage(kStart, Events(13, {{false, sums}}));
  EXPECT_EQ(c.rec.Take(), Lines{"load views"});
  EXPECT_EQ(c.m.standby_rank(), 1u);
  EXPECT_FALSE(c.m.has_views());
  const std::vector<FleetRecord> records = Records(views);
  c.m.ViewsAnswered(kStart, FleetViews{13, records});
  EXPECT_EQ(c.rec.Take(), Lines{"watch views from 14"});
  EXPECT_TRUE(c.m.has_views());
  EXPECT_FALSE(c.m.Leads(kStart));               // it follows them; it does not lead
  EXPECT_FALSE(c.m.regions()->regions.empty());  // and still reads the leader's sums

  leader_gone(&c);
  EXPECT_EQ(c.rec.Take(), Lines{"campaign 7 (has the views)"});
  EXPECT_EQ(c.m.views().size(), 3u);  // node-a's view went with its lease
  FleetCampaign won;
  won.revision = 15;
  won.won = true;
  c.m.CampaignAnswered(gone, kLease, "us-west-2", "c:9901", won);
  EXPECT_EQ(c.rec.Take(), (Lines{"leads", "publish regions 7 at 15"}));
  EXPECT_TRUE(c.m.Leads(gone));
  // Its own standbys: node-e stays, node-b (another region than us-west-2) joins it.
  EXPECT_EQ(c.m.standbys(), (std::vector<std::string>{"node-e", "node-b"}));

  Node e("node-e");
  e.Join(kStart, {Leader("node-a", 9, 11)}, 11);
  e.m.WatchMessage(kStart, Events(13, {{false, sums}}));
  e.m.ViewsAnswered(kStart, FleetViews{13, records});
  e.rec.Take();
  EXPECT_EQ(e.m.standby_rank(), 2u);
  leader_gone(&e);
  Lines sent = e.rec.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(WakeTime(sent[0]), gone + FleetMachine::kStandbyHeadStart);

  for (const char* name : {"node-b", "node-f", "node-g"}) {
    SCOPED_TRACE(name);
    Node b(name);
    b.Join(kStart, {Leader("node-a", 9, 11)}, 11);
    b.m.WatchMessage(kStart, Events(13, {{false, sums}}));
    EXPECT_EQ(b.rec.Take(), (Lines{"watch from 12", "publish 7 at 11"}));  // no views
    leader_gone(&b);
    sent = b.rec.Take();
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_GE(WakeTime(sent[0]), gone + 2 * FleetMachine::kStandbyHeadStart);
    EXPECT_LT(WakeTime(sent[0]), gone + 2 * FleetMachine::kStandbyHeadStart +
                                     FleetMachine::kCampaignSpreadPerNode * 4);
    // The new leader's key comes first: nothing is sent.
    b.m.WatchMessage(gone, Events(15, {{false, Leader("node-c", 9, 15)}}));
    b.m.Wake(gone + absl::Seconds(2));
    EXPECT_EQ(b.rec.Take(), Lines{});
  }
}

// Sums that no longer name it end a standby's views (their count stays the fleet's size); one
// that cannot use the fleet's state neither follows them nor campaigns first.
TEST(FleetMachineStandbyTest, AStandbyLetsTheViewsGoWhenItIsNoLongerOneOrCannotLead) {
  const std::vector<NodeView> views = TwoNodes();
  Node c("node-c");
  JoinAsStandby(&c, views);
  ASSERT_TRUE(c.m.has_views());
  c.m.WatchMessage(kStart, Events(14, {{false, Sums(views, {"node-x"}, 14)}}));
  EXPECT_EQ(c.rec.Take(), Lines{"cancel views"});
  EXPECT_FALSE(c.m.has_views());
  EXPECT_TRUE(c.m.views().empty());
  EXPECT_EQ(c.m.fleet_size(), 2u);

  // Named again, then not eligible: the views go, and it waits for the others' head start.
  c.m.WatchMessage(kStart, Events(15, {{false, Sums(views, {"node-c"}, 15)}}));
  EXPECT_EQ(c.rec.Take(), Lines{"load views"});
  c.m.SetEligible(false, kStart);
  EXPECT_EQ(c.rec.Take(), Lines{"cancel views"});
  c.m.WatchMessage(kStart, Events(16, {{true, Deleted("/sluice/leader", 16)}}));
  Lines sent = c.rec.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_GE(WakeTime(sent[0]), kStart + FleetMachine::kStandbyHeadStart);
  c.m.Wake(kStart + absl::Seconds(2));
  EXPECT_EQ(c.rec.Take(), Lines{});  // not eligible: no campaign
  // Eligible again: it follows the views once more (and campaigns, with no leader).
  c.m.SetEligible(true, kStart + absl::Seconds(2));
  EXPECT_EQ(c.rec.Take(), (Lines{"load views", "campaign 7"}));
}

// A standby back from an outage that took the leader's lease too: its resync starts reading
// the views and it campaigns at once, reading them with the campaign too; the win's views end
// the wait (not a second read of every view), and it no longer names itself.
TEST(FleetMachineStandbyTest, AStandbyBackFromAnOutageLeadsWithTheViewsItsCampaignRead) {
  const std::vector<NodeView> views = TwoNodes();
  const std::vector<FleetRecord> records = Records(views);
  Node c("node-c");
  JoinAsStandby(&c, views);
  const absl::Time back = kStart + absl::Seconds(1);
  c.m.WatchEnded(absl::UnavailableError("etcd went away"));
  c.m.Tick(back);
  c.m.KeepAliveAnswered(back, back, kLease, FleetLease{kLease, 3});
  c.rec.Take();
  c.m.ResyncAnswered(back, FleetResync{30, false, {State(5)}});  // no leader key, no sums
  Lines sent = c.rec.Take();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent.front(), "load views");
  EXPECT_EQ(sent.back(), "campaign 7");  // it reads them with the campaign too
  FleetCampaign won;
  won.revision = 31;
  won.won = true;
  won.views = FleetViews{31, records};
  c.m.CampaignAnswered(back, kLease, "us-west-2", "c:9901", won);
  EXPECT_EQ(c.rec.Take(),
            (Lines{"cancel views", "watch views from 32", "leads", "publish regions 7 at 31"}));
  EXPECT_TRUE(c.m.Leads(back));
  EXPECT_EQ(c.m.standby_rank(), 0u);
  EXPECT_EQ(c.m.standbys(), std::vector<std::string>{"node-a"});
}

// A standby that stops lets the views go, and sums that still name it start nothing.
TEST(FleetMachineStandbyTest, AStandbyThatLeavesFollowsNothing) {
  const std::vector<NodeView> views = {ViewOf("node-a", "us-east-1"),
                                       ViewOf("node-c", "us-west-2")};
  Node c("node-c");
  c.Join(kStart, {Leader("node-a", 9, 11)}, 11);
  c.m.WatchMessage(kStart, Events(13, {{false, Sums(views, {"node-c"}, 13)}}));
  c.m.ViewsAnswered(kStart, FleetViews{13, {ViewRecord(views[0], 12)}});
  c.rec.Take();
  c.m.Leave();
  EXPECT_EQ(c.rec.Take(), (Lines{"cancel views", "revoke 7"}));
  EXPECT_FALSE(c.m.has_views());
  c.m.WatchMessage(kStart, Events(14, {{false, Sums(views, {"x", "node-c"}, 14)}}));
  EXPECT_EQ(c.rec.Take(), Lines{});
}

}  // namespace
}  // namespace sluice
