// FleetMachine's views and sums, and what keeps a fleet's load on etcd growing with N: only the
// leader reads the views (and followers the leader's sums), keep-alives each third of the TTL,
// campaigns spread when thousands of nodes see the leader key go at once, resyncs that back
// off, and a winner that reads the views with its campaign.
#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "steering/fleet_machine.h"
#include "steering/fleet_view.h"
#include "tests/steering/fleet_machine_testing.h"

namespace sluice {
namespace {

using namespace fleet_testing;  // NOLINT(build/namespaces): the shared helpers

// A campaign's transaction reads the views too: the winner leads at once with them, without a
// second read; a watch of the views goes on from the transaction's revision.
TEST(FleetMachineTest, AWinnerLeadsWithTheViewsItsCampaignRead) {
  Node a("node-a");
  a.Join(kStart, {});
  EXPECT_EQ(a.rec.Take(), (Lines{"watch from 11", "publish 7 at 10", "campaign 7"}));
  FleetCampaign won;
  won.revision = 12;
  won.won = true;
  won.views = FleetViews{12, {View("node-b", 9), View("node-c", 10)}};
  a.m.CampaignAnswered(kStart, kLease, "us-east-1", "a:9901", won);
  EXPECT_EQ(a.rec.Take(), (Lines{"watch views from 13", "leads", "publish regions 7 at 12"}));
  EXPECT_TRUE(a.m.Leads(kStart));
  EXPECT_EQ(a.m.views().size(), 2u);
}

// The leader keeps its lease alive every tick (it stops acting when the lease could have
// expired); every other node each third of the TTL, which is enough for its view's key to live.
TEST(FleetMachineTest, FollowersKeepTheirLeaseAliveEachThirdOfItsTtl) {
  Node a("node-a");
  Node b("node-b");
  a.JoinAndLead(kStart);
  b.Join(kStart, {Leader("node-a", kLease, 11)}, 11);
  b.rec.Take();
  a.m.PublishAnswered(kStart, kLease, 12);
  b.m.PublishAnswered(kStart, kLease, 13);
  int leader_keep_alives = 0;
  std::vector<absl::Time> follower_keep_alives;
  for (absl::Time t = kStart + kInterval; t <= kStart + absl::Seconds(6); t += kInterval) {
    a.m.Tick(t);
    b.m.Tick(t);
    for (const std::string& line : a.rec.Take()) {
      if (line != "keep alive 7") continue;
      ++leader_keep_alives;
      a.m.KeepAliveAnswered(t, t, kLease, FleetLease{kLease, 3});
    }
    for (const std::string& line : b.rec.Take()) {
      if (line != "keep alive 7") continue;
      follower_keep_alives.push_back(t);
      b.m.KeepAliveAnswered(t, t, kLease, FleetLease{kLease, 3});
    }
    EXPECT_TRUE(a.m.Leads(t));
  }
  EXPECT_EQ(leader_keep_alives, 12);
  // A TTL of 3 s: at 1 s, 2 s, ... 6 s, never two within a third of it.
  ASSERT_EQ(follower_keep_alives.size(), 6u);
  for (size_t i = 1; i < follower_keep_alives.size(); ++i) {
    EXPECT_EQ(follower_keep_alives[i] - follower_keep_alives[i - 1], kTtl / 3);
  }
  // Once it leads, every tick.
  b.m.WatchMessage(kStart + absl::Seconds(6), Events(30, {{true, Leader("node-a", kLease, 11)}}));
  b.rec.Take();
  b.m.CampaignAnswered(kStart + absl::Seconds(6), kLease, "us-west-2", "b:9901",
                       FleetCampaign{31, true, {}, {}});
  b.m.ViewsAnswered(kStart + absl::Seconds(6), FleetViews{31, {}});
  b.rec.Take();
  b.m.Tick(kStart + absl::Seconds(6) + kInterval);
  Lines sent = b.rec.Take();
  EXPECT_NE(std::find(sent.begin(), sent.end(), "keep alive 7"), sent.end());
}

// When a fleet's leader goes, its nodes do not all campaign at once: each waits a random part
// of 50 ms per node (as the leader's sums counted them, kept after they go with the leader's
// lease), about 20 campaigns a second, and one that sees a new leader key meanwhile does not
// campaign at all. A node that never knew the fleet's size: at once.
TEST(FleetMachineTest, ALargeFleetSpreadsItsCampaigns) {
  std::vector<NodeView> views;
  for (int i = 0; i < 3000; ++i) {
    NodeView view;
    view.node = "node-" + std::to_string(i);
    view.region = i % 2 == 0 ? "us-east-1" : "us-west-2";
    view.updated = kStart;
    views.push_back(view);
  }
  FleetRegions sums;
  sums.leader = "node-a";
  sums.updated = kStart;
  sums.revision = 12;
  sums.regions = SumRegions(views);
  const std::string doc = EncodeFleetRegions(sums);
  std::vector<absl::Time> waits;
  for (const char* name : {"node-b", "node-c", "node-d", "node-e"}) {
    SCOPED_TRACE(name);
    Node b(name);
    b.Join(kStart, {Leader("node-a", 9, 11)}, 11);
    b.rec.Take();
    b.m.WatchMessage(kStart, Events(13, {{false, {"/sluice/regions", doc, 11, 13}}}));
    const absl::Time gone = kStart + absl::Seconds(1);
    b.m.WatchMessage(gone, Events(14, {{true, Deleted("/sluice/leader", 14)},
                                       {true, Deleted("/sluice/regions", 14)}}));
    Lines sent = b.rec.Take();
    ASSERT_EQ(sent.size(), 1u);
    ASSERT_EQ(sent[0].rfind("wake at ", 0), 0u) << sent[0];
    EXPECT_EQ(b.m.fleet_size(), 3000u);  // the sums went with the leader's lease
    absl::Time at;
    std::string error;
    ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, sent[0].substr(8), &at, &error)) << error;
    EXPECT_GE(at, gone);
    EXPECT_LE(at, gone + absl::Seconds(150));
    waits.push_back(at);
    // Not before its time, whether a tick or an early wake.
    b.m.Tick(gone);
    for (const std::string& line : b.rec.Take()) EXPECT_NE(line, "campaign 7");
    // (The lease kept alive meanwhile.)
    b.m.KeepAliveAnswered(at, at, kLease, FleetLease{kLease, 3});
    if (at > gone) {
      // A timer that fires early asks again for the same time.
      b.m.Wake(at - absl::Microseconds(1));
      EXPECT_EQ(b.rec.Take(), Lines{sent[0]});
    }
    b.m.Wake(at);
    EXPECT_EQ(b.rec.Take(), Lines{"campaign 7"});
  }
  std::sort(waits.begin(), waits.end());
  EXPECT_LT(waits.front(), waits.back());
  // Over the whole fleet: about 20 in the first second, the first within a fraction of one.
  int first_second = 0;
  absl::Duration first = absl::InfiniteDuration();
  for (int i = 0; i < 3000; ++i) {
    Node n("node-" + std::to_string(i));
    n.Join(kStart, {Leader("node-a", 9, 11)}, 11);
    n.m.WatchMessage(kStart, Events(13, {{false, {"/sluice/regions", doc, 11, 13}}}));
    n.rec.Take();
    n.m.WatchMessage(kStart, Events(14, {{true, Deleted("/sluice/leader", 14)}}));
    Lines sent = n.rec.Take();
    ASSERT_EQ(sent.size(), 1u);
    absl::Time at;
    ASSERT_TRUE(absl::ParseTime(absl::RFC3339_full, sent[0].substr(8), &at, nullptr));
    first_second += at - kStart < absl::Seconds(1) ? 1 : 0;
    first = std::min(first, at - kStart);
  }
  EXPECT_GE(first_second, 8);
  EXPECT_LE(first_second, 40);
  EXPECT_LT(first, absl::Milliseconds(300));

  // Another node's key came first: the wake sends nothing.
  Node c("node-c");
  c.Join(kStart, {Leader("node-a", 9, 11)}, 11);
  c.rec.Take();
  c.m.WatchMessage(kStart, Events(13, {{false, {"/sluice/regions", doc, 11, 13}}}));
  c.m.WatchMessage(kStart, Events(14, {{true, Deleted("/sluice/leader", 14)}}));
  c.rec.Take();
  c.m.WatchMessage(kStart, Events(15, {{false, Leader("node-x", 12, 15)}}));
  c.m.Wake(kStart + absl::Seconds(2));
  c.m.Tick(kStart + absl::Seconds(2));
  for (const std::string& line : c.rec.Take()) EXPECT_NE(line, "campaign 7");

  // A resync that finds no leader key (it went while the watch was away) waits the same way;
  // the wait for the key that went before was over once a leader came.
  c.m.WatchEnded(absl::UnavailableError("etcd ended the watch"));
  c.rec.Take();
  const absl::Time back = kStart + absl::Seconds(3);
  c.m.Tick(back);
  c.m.KeepAliveAnswered(back, back, kLease, FleetLease{kLease, 3});
  c.rec.Take();
  c.m.ResyncAnswered(back, FleetResync{30, false, {State(5)}});
  Lines resynced = c.rec.Take();
  ASSERT_FALSE(resynced.empty());
  EXPECT_EQ(resynced.back().rfind("wake at ", 0), 0u) << resynced.back();
  for (const std::string& line : resynced) EXPECT_NE(line, "campaign 7");

  // Never read any sums (a fleet that starts, or a node that joined just now): at once.
  Node d("node-d");
  d.Join(kStart, {Leader("node-a", 9, 11)}, 11);
  d.rec.Take();
  d.m.WatchMessage(kStart, Events(14, {{true, Deleted("/sluice/leader", 14)}}));
  EXPECT_EQ(d.rec.Take(), Lines{"campaign 7"});
}
// A leader that steps down remembers how many views it had: its next wait to campaign is as
// long as the others'.
TEST(FleetMachineTest, AFormerLeaderKnowsTheFleetsSize) {
  Node a("node-a");
  a.JoinAndLead(kStart);
  std::vector<FleetWatchEvent> views;
  for (int i = 0; i < 1000; ++i) views.push_back({false, View("node-" + std::to_string(i), 20)});
  a.m.WatchMessage(kStart, Events(20, views));
  EXPECT_EQ(a.m.fleet_size(), 1000u);
  a.m.WatchMessage(kStart, Events(21, {{false, Leader("node-b", 9, 21)}}));
  EXPECT_FALSE(a.m.has_views());
  EXPECT_EQ(a.m.fleet_size(), 1000u);
  a.rec.Take();
  a.m.WatchMessage(kStart, Events(22, {{true, Deleted("/sluice/leader", 22)}}));
  Lines sent = a.rec.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].rfind("wake at ", 0), 0u) << sent[0];
}

// A campaign answered when the lease is too near its end to act on: the node holds the key
// with every view but does not lead until a keep-alive renews the lease; then it does, at once.
TEST(FleetMachineTest, AWinnerWithAnExpiringLeaseLeadsOnceItIsRenewed) {
  Node a("node-a");
  a.Join(kStart, {});
  a.rec.Take();
  FleetCampaign won;
  won.revision = 12;
  won.won = true;
  won.views = FleetViews{12, {View("node-b", 9)}};
  const absl::Time late = kStart + kTtl - FleetMachine::kLeaseMargin;  // the lease: from kStart
  a.m.CampaignAnswered(late, kLease, "us-east-1", "a:9901", won);
  EXPECT_EQ(a.rec.Take(), Lines{"watch views from 13"});
  EXPECT_FALSE(a.m.Leads(late));
  a.m.KeepAliveAnswered(late, late, kLease, FleetLease{kLease, 3});
  EXPECT_EQ(a.rec.Take(), (Lines{"leads", "publish regions 7 at 12"}));
  EXPECT_TRUE(a.m.Leads(late));
}

// The watch can bring this node's new leader key before the campaign's answer: it loads the
// views once and leads once, whether the campaign is answered before the views or after.
TEST(FleetMachineTest, LeadershipIsTakenOnceWhenTheWatchBringsTheKeyFirst) {
  for (bool views_first : {false, true}) {
    SCOPED_TRACE(views_first ? "the views answered first" : "the campaign answered first");
    Node a("node-a");
    a.Join(kStart, {});
    EXPECT_EQ(a.rec.Take(), (Lines{"watch from 11", "publish 7 at 10", "campaign 7"}));
    a.m.WatchMessage(kStart, Events(11, {{false, Leader("node-a", kLease, 11)}}));
    EXPECT_EQ(a.rec.Take(), Lines{"load views"});
    auto campaign = [&] {
      a.m.CampaignAnswered(kStart, kLease, "us-east-1", "127.0.0.1:9901",
                           FleetCampaign{11, true, {}, {}});
      EXPECT_EQ(a.rec.Take(), Lines{});
    };
    if (!views_first) campaign();
    a.m.ViewsAnswered(kStart, FleetViews{11, {}});
    EXPECT_EQ(a.rec.Take(), (Lines{"watch views from 12", "leads", "publish regions 7 at 11"}));
    a.m.PublishRegionsAnswered(kStart, kLease, 11);
    if (views_first) campaign();
    EXPECT_TRUE(a.m.Leads(kStart));
    absl::StatusOr<FleetWriteCompare> write = a.m.StartWrite(kStart, true);
    ASSERT_TRUE(write.ok()) << write.status();
    EXPECT_EQ(write->leader_revision, 11);
  }
  // A campaign that read the views too: its answer ends the wait for the separate read.
  Node a("node-a");
  a.Join(kStart, {});
  a.rec.Take();
  a.m.WatchMessage(kStart, Events(11, {{false, Leader("node-a", kLease, 11)}}));
  EXPECT_EQ(a.rec.Take(), Lines{"load views"});
  a.m.CampaignAnswered(kStart, kLease, "us-east-1", "127.0.0.1:9901",
                       FleetCampaign{11, true, {}, FleetViews{11, {View("node-b", 9)}}});
  EXPECT_EQ(a.rec.Take(),
            (Lines{"cancel views", "watch views from 12", "leads", "publish regions 7 at 11"}));
  EXPECT_TRUE(a.m.Leads(kStart));
  EXPECT_EQ(a.m.views().size(), 1u);
  a.m.ViewsAnswered(kStart, FleetViews{11, {}});  // (the runtime drops it; nothing if not)
  EXPECT_EQ(a.rec.Take(), Lines{});
  EXPECT_EQ(a.m.views().size(), 1u);
}

// At fleet scale a follower receives neither the views nor their changes: the leader's sums
// per region say enough. A view that reaches it anyway (a runtime that ranges everything) is
// not kept.
TEST(FleetMachineTest, AFollowerKeepsNoViewsButTheLeadersSums) {
  Node b("node-b");
  b.Join(kStart, {State(5), Leader("node-a", 9, 6), View("node-a", 6)}, 10);
  EXPECT_EQ(b.rec.Take(), (Lines{"adopt 5", "watch from 11", "publish 7 at 10"}));
  EXPECT_TRUE(b.m.views().empty());
  EXPECT_FALSE(b.m.has_views());
  b.m.WatchMessage(kStart, Events(12, {{false, View("node-c", 12)}}));
  EXPECT_TRUE(b.m.views().empty());
  EXPECT_FALSE(b.m.regions().has_value());

  // What the leader sums of two views of us-west-2 (DecodeFleetRegions checks the counts agree).
  NodeView view;
  view.node = "node-a";
  view.region = "us-west-2";
  view.updated = kStart;
  NodeView other = view;
  other.node = "node-c";
  FleetRegions sums;
  sums.leader = "node-a";
  sums.updated = kStart;
  sums.revision = 12;
  sums.regions = SumRegions({view, other});
  b.m.WatchMessage(kStart,
                   Events(13, {{false, {"/sluice/regions", EncodeFleetRegions(sums), 8, 13}}}));
  ASSERT_TRUE(b.m.regions().has_value());
  EXPECT_EQ(b.m.regions()->leader, "node-a");
  EXPECT_EQ(b.m.regions()->regions.at("us-west-2").nodes, 2u);

  // A damaged document keeps the last good sums, with one warning a minute however often it
  // comes.
  size_t logs = b.rec.logs.size();
  for (int i = 0; i < 5; ++i) {
    b.m.WatchMessage(kStart + absl::Seconds(i),
                     Events(14 + i, {{false, {"/sluice/regions", "{\"format\": 1}", 8, 14 + i}}}));
  }
  ASSERT_EQ(b.rec.logs.size(), logs + 1);
  EXPECT_NE(b.rec.logs.back().find("/sluice/regions"), std::string::npos) << b.rec.logs.back();
  EXPECT_EQ(b.m.regions()->regions.at("us-west-2").nodes, 2u);
  b.m.WatchMessage(kStart + absl::Seconds(61),
                   Events(20, {{false, {"/sluice/regions", "[]", 8, 20}}}));
  EXPECT_EQ(b.rec.logs.size(), logs + 2);

  // The sums die with the leader's lease.
  b.m.WatchMessage(kStart + absl::Seconds(62),
                   Events(21, {{true, Deleted("/sluice/regions", 21)}}));
  EXPECT_FALSE(b.m.regions().has_value());
  // A resync without them forgets them too.
  b.m.WatchMessage(kStart,
                   Events(22, {{false, {"/sluice/regions", EncodeFleetRegions(sums), 8, 22}}}));
  ASSERT_TRUE(b.m.regions().has_value());
  b.m.WatchEnded(absl::UnavailableError("etcd ended the watch"));
  b.m.Tick(kStart + absl::Seconds(63));
  b.rec.Take();
  b.m.ResyncAnswered(kStart + absl::Seconds(63), FleetResync{30, false, {State(5)}});
  EXPECT_FALSE(b.m.regions().has_value());
}

// The sealed ticket keys are not the machine's to read: every node hands them on as they come,
// from the resync and the watch, and their deletion too; a key that merely starts the same is
// not one of them.
TEST(FleetMachineTest, TicketKeysGoToTheRuntimeAsTheyCome) {
  Node b("node-b");
  b.Join(kStart,
         {State(5), Leader("node-a", 9, 6), FleetRecord{"/sluice/tickets/us-east-1", "x", 7, 7}},
         10);
  EXPECT_EQ(b.rec.Take(), (Lines{"adopt 5", "tickets /sluice/tickets/us-east-1 at 7",
                                 "watch from 11", "publish 7 at 10"}));
  b.m.WatchMessage(kStart, Events(12, {{false, {"/sluice/tickets", "y", 12, 12}},
                                       {false, {"/sluice/ticketsx", "z", 12, 12}},
                                       {true, Deleted("/sluice/tickets/us-east-1", 12)}}));
  EXPECT_EQ(b.rec.Take(), (Lines{"tickets /sluice/tickets at 12",
                                 "tickets deleted /sluice/tickets/us-east-1 at 12"}));
  EXPECT_EQ(b.m.tickets_key(), "/sluice/tickets");
  EXPECT_EQ(b.m.leading_revision(), 0);
  // Deleted while the watch was away: the resync that no longer finds it says so.
  b.m.WatchEnded(absl::UnavailableError("etcd ended the watch"));
  b.m.Tick(kStart + absl::Seconds(1));
  b.rec.Take();
  b.m.ResyncAnswered(kStart + absl::Seconds(1), FleetResync{30, false, {State(5)}});
  Lines after = b.rec.Take();
  EXPECT_NE(std::find(after.begin(), after.end(), "tickets deleted /sluice/tickets at 0"),
            after.end());
}

// A node that just started and finds no leader spreads its campaign by the views its resync
// counted (a fleet that starts together); with none counted (or an empty count) it campaigns at
// once.
TEST(FleetMachineTest, ANodeThatJustStartedSpreadsByTheViewsCounted) {
  for (int64_t views : {int64_t{0}, int64_t{-1}, int64_t{400}}) {
    Node b("node-b");
    b.m.Tick(kStart);
    EXPECT_EQ(b.rec.Take(), (Lines{"grant", "resync"}));
    b.m.GrantAnswered(kStart, kStart, FleetLease{kLease, absl::ToInt64Seconds(kTtl)});
    FleetResync answer{10, false, {State(5)}};
    answer.views = views;
    b.m.ResyncAnswered(kStart, answer);
    Lines lines = b.rec.Take();
    const bool waits = std::any_of(lines.begin(), lines.end(), [](const std::string& line) {
      return line.rfind("wake at ", 0) == 0;
    });
    const bool campaigns = std::find(lines.begin(), lines.end(), "campaign 7") != lines.end();
    EXPECT_EQ(b.m.fleet_size(), views > 0 ? 400u : 0u) << views;
    EXPECT_EQ(b.m.candidates(), views > 0 ? 400u : 0u) << views;
    EXPECT_EQ(waits, views > 0) << views;
    EXPECT_EQ(campaigns, views <= 0) << views;
  }
}

// A node that wins the leader key reads every view first, then leads: its first gates and its
// dead-edge watch see the whole fleet. It publishes the sums every tick while it leads.
TEST(FleetMachineTest, ANewLeaderReadsTheViewsBeforeItLeads) {
  Node a("node-a");
  a.Join(kStart, {});
  EXPECT_EQ(a.rec.Take(), (Lines{"watch from 11", "publish 7 at 10", "campaign 7"}));
  a.m.CampaignAnswered(kStart, kLease, "us-east-1", "127.0.0.1:9901",
                       FleetCampaign{11, true, {}, {}});
  EXPECT_EQ(a.rec.Take(), Lines{"load views"});
  EXPECT_FALSE(a.m.Leads(kStart));
  EXPECT_TRUE(absl::IsFailedPrecondition(a.m.StartWrite(kStart, true).status()));
  // Not yet: a tick neither loads them twice nor publishes sums it does not have.
  a.m.PublishAnswered(kStart, kLease, 12);
  a.m.Tick(kStart + kInterval);
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7", "publish 7 at 12"}));
  a.m.ViewsAnswered(kStart + kInterval, FleetViews{14, {View("node-b", 12), View("node-c", 13)}});
  EXPECT_EQ(a.rec.Take(), (Lines{"watch views from 15", "leads", "publish regions 7 at 14"}));
  a.m.PublishRegionsAnswered(kStart, kLease, 14);
  EXPECT_TRUE(a.m.Leads(kStart + kInterval));
  EXPECT_TRUE(a.m.has_views());
  EXPECT_EQ(a.m.views().size(), 2u);
  // The views' changes come through their watch.
  a.m.WatchMessage(kStart + kInterval, Events(15, {{true, Deleted("/sluice/nodes/node-b", 15)},
                                                   {false, View("node-d", 15)}}));
  EXPECT_EQ(a.m.views().size(), 2u);
  EXPECT_EQ(a.m.views().count("node-d"), 1u);
  a.m.KeepAliveAnswered(kStart + kInterval, kStart + kInterval, kLease, FleetLease{kLease, 3});
  a.m.PublishAnswered(kStart + kInterval, kLease, 15);
  a.m.Tick(kStart + 2 * kInterval);
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7", "publish 7 at 15", "publish regions 7 at 15"}));
  // One at a time: not again while in flight; again once answered.
  a.m.KeepAliveAnswered(kStart + 2 * kInterval, kStart + 2 * kInterval, kLease,
                        FleetLease{kLease, 3});
  a.m.PublishAnswered(kStart + 2 * kInterval, kLease, 16);
  a.m.Tick(kStart + 3 * kInterval);
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7", "publish 7 at 16"}));
  a.m.PublishRegionsAnswered(kStart + 3 * kInterval, kLease, 17);
  a.m.KeepAliveAnswered(kStart + 3 * kInterval, kStart + 3 * kInterval, kLease,
                        FleetLease{kLease, 3});
  a.m.PublishAnswered(kStart + 3 * kInterval, kLease, 17);
  // Nothing changed: the runtime sends neither, and nothing stays in flight.
  a.rec.publish_sends = false;
  a.m.Tick(kStart + 4 * kInterval);
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7"}));
  a.rec.publish_sends = true;
  a.m.KeepAliveAnswered(kStart + 4 * kInterval, kStart + 4 * kInterval, kLease,
                        FleetLease{kLease, 3});
  a.m.Tick(kStart + 5 * kInterval);
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7", "publish 7 at 17", "publish regions 7 at 17"}));
}

// The views' watch ending does not end the lead: they are read again at the next tick.
// Losing the lead drops them.
TEST(FleetMachineTest, TheLeaderRereadsItsViewsAndDropsThemWhenItStepsDown) {
  Node a("node-a");
  a.JoinAndLead(kStart);
  a.m.ViewsWatchEnded(absl::UnavailableError("etcd ended the watch"));
  EXPECT_EQ(a.rec.Take(), Lines{});
  EXPECT_TRUE(a.m.Leads(kStart));
  a.m.PublishAnswered(kStart, kLease, 12);
  a.m.Tick(kStart + kInterval);
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7", "publish 7 at 12", "load views"}));
  a.m.ViewsAnswered(kStart + kInterval, FleetViews{20, {View("node-b", 19)}});
  EXPECT_EQ(a.rec.Take(), (Lines{"watch views from 21"}));  // it led all along
  EXPECT_EQ(a.m.views().size(), 1u);
  // Another node's key replaces its own (its lease lapsed in etcd): it steps down.
  a.m.WatchMessage(kStart + kInterval, Events(22, {{false, Leader("node-b", 9, 22)}}));
  EXPECT_EQ(a.rec.Take(), (Lines{"cancel views", "steps down"}));
  EXPECT_TRUE(a.m.views().empty());
  EXPECT_FALSE(a.m.has_views());
  // A load it cancelled is not applied when its answer comes anyway.
  a.m.ViewsAnswered(kStart + kInterval, FleetViews{23, {View("node-c", 23)}});
  EXPECT_TRUE(a.m.views().empty());
  EXPECT_EQ(a.rec.Take(), Lines{});
}

// A load of the views that fails is a store failure: no lead is announced, the node resyncs,
// and reads them again once it is in sync (still holding its key under its live lease).
TEST(FleetMachineTest, AViewsLoadThatFailsLeadsAfterTheResync) {
  Node a("node-a");
  a.Join(kStart, {});
  a.rec.Take();
  a.m.CampaignAnswered(kStart, kLease, "us-east-1", "127.0.0.1:9901",
                       FleetCampaign{11, true, {}, {}});
  EXPECT_EQ(a.rec.Take(), Lines{"load views"});
  a.m.ViewsAnswered(kStart, absl::UnavailableError("timed out"));
  EXPECT_EQ(a.rec.Take(), Lines{"cancel watch"});
  EXPECT_FALSE(a.m.connected());
  EXPECT_FALSE(a.m.Leads(kStart));
  a.m.PublishAnswered(kStart, kLease, 12);
  a.m.Tick(kStart + kInterval);
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7", "resync"}));
  // It created the state at 10; another node wrote a newer one meanwhile.
  a.m.ResyncAnswered(kStart + kInterval,
                     FleetResync{20, false, {State(15), Leader("node-a", kLease, 11)}});
  EXPECT_EQ(a.rec.Take(), (Lines{"adopt 15", "load views", "watch from 21", "publish 7 at 20"}));
  a.m.ViewsAnswered(kStart + kInterval, FleetViews{20, {}});
  EXPECT_EQ(a.rec.Take(), (Lines{"watch views from 21", "leads", "publish regions 7 at 20"}));
  a.m.PublishRegionsAnswered(kStart, kLease, 20);
  EXPECT_TRUE(a.m.Leads(kStart + kInterval));
}

// A bad view is left out of every sum with one warning a minute naming its key, never a crash.
TEST(FleetMachineTest, BadViewsAreWarnedAboutAtMostOnceAMinute) {
  Node a("node-a");
  a.JoinAndLead(kStart);
  FleetRecord bad = View("node-b", 12);
  bad.value = "{\"format\": \"sluice-node-view/1\", \"node\": 7}";
  size_t logs = a.rec.logs.size();
  for (int i = 0; i < 30; ++i) {
    bad.mod_revision = 12 + i;
    a.m.WatchMessage(kStart + absl::Seconds(i), Events(12 + i, {{false, bad}}));
  }
  ASSERT_EQ(a.rec.logs.size(), logs + 1);
  EXPECT_NE(a.rec.logs.back().find("/sluice/nodes/node-b"), std::string::npos) << a.rec.logs.back();
  EXPECT_TRUE(a.m.views().empty());
  // A good one replaces it, and a bad one after that is warned about at once.
  a.m.WatchMessage(kStart + absl::Seconds(31), Events(50, {{false, View("node-b", 50)}}));
  EXPECT_EQ(a.m.views().size(), 1u);
  a.m.WatchMessage(kStart + absl::Seconds(32), Events(51, {{false, bad}}));
  EXPECT_EQ(a.rec.logs.size(), logs + 2);
  EXPECT_TRUE(a.m.views().empty());
}

// A fleet that lost its store together does not come back all at once: after each failed
// resync the next one (and a grant) waits twice as long, up to a bound, each node at its own
// fraction of it; the lease it has is still kept alive meanwhile. One success starts over.
TEST(FleetMachineTest, FailedResyncsBackOffWithJitter) {
  std::vector<absl::Duration> first_waits;
  for (const char* name : {"node-a", "node-b", "node-c", "node-d"}) {
    SCOPED_TRACE(name);
    Node a(name);
    a.Join(kStart, {});
    a.rec.Take();
    a.m.WatchEnded(absl::UnavailableError("etcd ended the watch"));
    a.rec.Take();
    absl::Time t = kStart;
    absl::Duration previous;
    for (int failure = 1; failure <= 8; ++failure) {
      SCOPED_TRACE(failure);
      // A resync at the first tick it is due.
      absl::Time due = t;
      a.m.Tick(t);
      Lines sent = a.rec.Take();
      absl::Time kept = t;
      while (std::find(sent.begin(), sent.end(), "resync") == sent.end()) {
        // Only the lease, while it waits: each third of its TTL.
        if (!sent.empty()) {
          EXPECT_EQ(sent, (Lines{"keep alive 7"}));
          a.m.KeepAliveAnswered(t, t, kLease, FleetLease{kLease, 3});
          kept = t;
        }
        EXPECT_LE(t - kept, kTtl / 3);
        t += absl::Milliseconds(10);
        ASSERT_LT(t - due, absl::Seconds(9));
        a.m.Tick(t);
        sent = a.rec.Take();
      }
      absl::Duration waited = t - due;
      if (failure > 1) {
        // Between half and all of 250 ms x 2^(n-2), up to 8 s (within the 10 ms steps).
        absl::Duration full =
            std::min(absl::Milliseconds(250) * (1 << (failure - 2)), absl::Seconds(8));
        EXPECT_GE(waited, full / 2 - absl::Milliseconds(10));
        EXPECT_LE(waited, full + absl::Milliseconds(10));
      }
      if (failure == 2) first_waits.push_back(waited);
      previous = waited;
      a.m.KeepAliveAnswered(t, t, kLease, FleetLease{kLease, 3});
      a.m.ResyncAnswered(t, absl::UnavailableError("connection refused"));
      a.rec.Take();
    }
    EXPECT_GE(previous, absl::Seconds(4) - absl::Milliseconds(10));
    // Back: one success, and the next failure waits the shortest time again.
    t += absl::Seconds(9);
    a.m.Tick(t);
    a.m.ResyncAnswered(t, FleetResync{40, false, {State(5)}});
    EXPECT_TRUE(a.m.connected());
  }
  // The nodes do not all wait the same.
  std::sort(first_waits.begin(), first_waits.end());
  EXPECT_LT(first_waits.front(), first_waits.back());
}

// A link lost again soon after a resync that succeeded backs off as a failed resync does (an
// overloaded etcd answered the resyncs and timed the next call out, and the whole fleet resynced
// in a loop); a loss after 30 s in sync resyncs at once, and the count starts again.
TEST(FleetMachineTest, LinksLostAgainSoonBackOff) {
  Node a("node-a");
  a.Join(kStart, {});
  a.rec.Take();
  absl::Time t = kStart;
  // Ticks every 10 ms from the loss until the resync goes out: how long that took.
  auto lose_and_wait = [&]() {
    a.m.WatchEnded(absl::DeadlineExceededError("etcd timed out"));
    const absl::Time lost = t;
    for (;;) {
      a.m.Tick(t);
      Lines sent = a.rec.Take();
      if (std::find(sent.begin(), sent.end(), "resync") != sent.end()) break;
      a.m.KeepAliveAnswered(t, t, kLease, FleetLease{kLease, 3});
      t += absl::Milliseconds(10);
      if (t - lost > absl::Seconds(10)) break;
    }
    absl::Duration waited = t - lost;
    a.m.ResyncAnswered(t, FleetResync{50, false, {State(5)}});
    EXPECT_TRUE(a.m.connected());
    a.rec.Take();
    t += absl::Milliseconds(100);
    a.m.WatchMessage(t, Events(51, {}));
    return waited;
  };
  EXPECT_EQ(lose_and_wait(), absl::ZeroDuration());  // the first loss: at once
  absl::Duration second = lose_and_wait();
  EXPECT_GE(second, absl::Milliseconds(125));
  EXPECT_LE(second, absl::Milliseconds(260));
  absl::Duration third = lose_and_wait();
  EXPECT_GE(third, absl::Milliseconds(250));
  EXPECT_LE(third, absl::Milliseconds(510));
  // Stable for 30 s (a tick sees it): the next loss resyncs at once again.
  t += FleetMachine::kStableLink;
  a.m.WatchMessage(t, Events(52, {}));
  a.m.Tick(t);
  a.m.KeepAliveAnswered(t, t, kLease, FleetLease{kLease, 3});
  a.rec.Take();
  EXPECT_EQ(lose_and_wait(), absl::ZeroDuration());
  // And the count started again: the next loss soon after waits the shortest time.
  second = lose_and_wait();
  EXPECT_GE(second, absl::Milliseconds(125));
  EXPECT_LE(second, absl::Milliseconds(260));
}
}  // namespace
}  // namespace sluice
