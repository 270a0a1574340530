#include "steering/fleet_machine.h"

#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "steering/fleet_view.h"
#include "steering/state_file.h"
#include "tests/steering/fleet_machine_testing.h"

namespace sluice {
namespace {

using namespace fleet_testing;  // NOLINT(build/namespaces): the shared helpers

// The lease counts from when its request was sent, less the margin: a leader stops acting at
// that instant exactly, on its own, whatever etcd says.
TEST(FleetMachineTest, LeadershipEndsAtTheLeaseDeadlineExactly) {
  const absl::Time deadline = kStart + kTtl - FleetMachine::kLeaseMargin;
  struct Row {
    const char* what;
    absl::Time tick;
    bool leads_after;
    Lines actions;
  };
  const Row rows[] = {
      {"long before",
       kStart + absl::Seconds(1),
       true,
       {"keep alive 7", "publish 7 at 12", "publish regions 7 at 12"}},
      {"a nanosecond before",
       deadline - absl::Nanoseconds(1),
       true,
       {"keep alive 7", "publish 7 at 12", "publish regions 7 at 12"}},
      // It drops the views with the lead, and publishes no sums.
      {"at the deadline",
       deadline,
       false,
       {"cancel views", "steps down", "keep alive 7", "publish 7 at 12"}},
      {"after it",
       deadline + absl::Seconds(1),
       false,
       {"cancel views", "steps down", "keep alive 7", "publish 7 at 12"}},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    Node a("node-a");
    a.JoinAndLead(kStart);
    a.m.PublishAnswered(kStart, kLease, 12);
    // No keep-alive answers: the tick at `row.tick` is the first after the campaign.
    a.m.Tick(row.tick);
    EXPECT_EQ(a.rec.Take(), row.actions);
    EXPECT_EQ(a.m.Leads(row.tick), row.leads_after);
    // The leader key is still there (etcd has not expired it yet): no campaign, no write.
    EXPECT_EQ(a.m.StartWrite(row.tick, /*as_leader=*/true).ok(), row.leads_after);
  }
}

TEST(FleetMachineTest, AKeepAliveExtendsTheLeaseFromWhenItWasSent) {
  Node a("node-a");
  a.JoinAndLead(kStart);
  a.m.PublishAnswered(kStart, kLease, 11);
  const absl::Time sent = kStart + absl::Seconds(2);
  a.m.Tick(sent);
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7", "publish 7 at 11", "publish regions 7 at 11"}));
  // Answered a second and a half later: the TTL still counts from `sent`.
  a.m.KeepAliveAnswered(sent + absl::Milliseconds(1500), sent, kLease,
                        FleetLease{kLease, absl::ToInt64Seconds(kTtl)});
  EXPECT_EQ(a.m.lease_expiry(), sent + kTtl);
  EXPECT_TRUE(a.m.Leads(sent + kTtl - FleetMachine::kLeaseMargin - absl::Nanoseconds(1)));
  EXPECT_FALSE(a.m.Leads(sent + kTtl - FleetMachine::kLeaseMargin));
  // A keep-alive that etcd answers with TTL 0: the lease is gone, and the leadership with it.
  a.m.Tick(sent + kInterval);
  EXPECT_EQ(a.rec.Take(), Lines{"keep alive 7"});  // both publishes are still in flight
  a.m.KeepAliveAnswered(sent + kInterval, sent + kInterval, kLease, FleetLease{kLease, 0});
  EXPECT_EQ(a.rec.Take(), (Lines{"cancel views", "steps down"}));
  EXPECT_EQ(a.m.lease(), 0);
  a.m.Tick(sent + 2 * kInterval);
  EXPECT_EQ(a.rec.Take(), Lines{"grant"});
}

// Campaigning: only with a live lease, connected, eligible, not leaving, with no leader key,
// and not in the last margin of the lease.
TEST(FleetMachineTest, WhoCampaigns) {
  struct Row {
    const char* what;
    std::function<void(Node&)> setup;
    bool campaigns;
  };
  const absl::Time now = kStart + absl::Seconds(1);
  const Row rows[] = {
      {"no leader key", [](Node&) {}, true},
      {"another node leads",
       [](Node& n) {
         n.m.WatchMessage(kStart, Events(12, {{false, Leader("node-b", 9, 12)}}));
       },
       false},
      {"not eligible", [](Node& n) { n.m.SetEligible(false, kStart); }, false},
      {"leaving", [](Node& n) { n.m.Leave(); }, false},
      {"the lease in its last margin",
       [now](Node& n) {
         // Renewed by a keep-alive sent so long ago that the margin begins at `now`.
         n.m.KeepAliveAnswered(kStart, now + FleetMachine::kLeaseMargin - kTtl, kLease,
                               FleetLease{kLease, 3});
       },
       false},
      {"the lease a nanosecond short of its last margin",
       [now](Node& n) {
         n.m.KeepAliveAnswered(kStart,
                               now + FleetMachine::kLeaseMargin - kTtl + absl::Nanoseconds(1),
                               kLease, FleetLease{kLease, 3});
       },
       true},
      {"the store lost",
       [](Node& n) { n.m.WatchEnded(absl::UnavailableError("connection reset")); }, false},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    Node a("node-a");
    a.Join(kStart, {State(5)});
    a.m.PublishAnswered(kStart, kLease, 11);
    // The campaign after the resync is lost to a key that is deleted at once.
    a.m.CampaignAnswered(kStart, kLease, "", "", FleetCampaign{11, false, std::nullopt, {}});
    a.rec.Take();
    row.setup(a);
    a.rec.Take();
    a.m.Tick(now);
    Lines actions = a.rec.Take();
    bool campaigned = std::find(actions.begin(), actions.end(), "campaign 7") != actions.end();
    EXPECT_EQ(campaigned, row.campaigns) << testing::PrintToString(actions);
  }
}

TEST(FleetMachineTest, TwoNodesRaceAndExactlyOneLeads) {
  Node a("node-a");
  Node b("node-b");
  a.Join(kStart, {});
  b.Join(kStart, {State(10)}, 10);
  EXPECT_EQ(a.rec.Take(), (Lines{"watch from 11", "publish 7 at 10", "campaign 7"}));
  EXPECT_EQ(b.rec.Take(), (Lines{"adopt 10", "watch from 11", "publish 7 at 10", "campaign 7"}));
  // etcd takes a's transaction first; b's compare (no leader key) fails and reads a's key.
  a.m.CampaignAnswered(kStart, kLease, "us-east-1", "a:9901", FleetCampaign{12, true, {}, {}});
  b.m.CampaignAnswered(kStart, kLease, "us-west-2", "b:9901",
                       FleetCampaign{12, false, Leader("node-a", kLease, 12), {}});
  EXPECT_EQ(a.rec.Take(), Lines{"load views"});
  EXPECT_EQ(b.rec.Take(), Lines{});
  a.m.ViewsAnswered(kStart, FleetViews{12, {}});
  EXPECT_EQ(a.rec.Take(), (Lines{"watch views from 13", "leads", "publish regions 7 at 12"}));
  a.m.PublishRegionsAnswered(kStart, kLease, 12);
  EXPECT_TRUE(a.m.Leads(kStart));
  EXPECT_FALSE(b.m.Leads(kStart));
  ASSERT_TRUE(b.m.leader());
  EXPECT_EQ(b.m.leader()->node, "node-a");
  EXPECT_EQ(b.m.leader()->create_revision, 12);
  // The loser does not campaign again while the key stands.
  b.m.PublishAnswered(kStart, kLease, 13);
  b.m.Tick(kStart + kInterval);
  EXPECT_EQ(b.rec.Take(), (Lines{"publish 7 at 13"}));
  // A leader whose key another node holds (written by hand, or after its own expired) stops.
  a.m.WatchMessage(kStart + kInterval, Events(20, {{false, Leader("node-b", 9, 20)}}));
  EXPECT_EQ(a.rec.Take(), (Lines{"cancel views", "steps down"}));
}

TEST(FleetMachineTest, ASlowEtcdKeepsTheLinkForAWhile) {
  const absl::Status late = absl::DeadlineExceededError("etcd did not answer in time");
  // A leader's three calls of a tick all time out at once: one stall, the link stays, and
  // each goes again at the next tick.
  Node a("node-a");
  const absl::Time t = a.LeadAndTick(kStart);
  a.m.KeepAliveAnswered(t + absl::Seconds(1), t, kLease, late);
  a.m.PublishAnswered(t + absl::Seconds(1), kLease, late);
  a.m.PublishRegionsAnswered(t + absl::Seconds(1), kLease, late);
  EXPECT_EQ(a.rec.Take(), Lines{});
  EXPECT_TRUE(a.m.connected());
  EXPECT_EQ(a.m.last_error(), "etcd did not answer in time");
  a.m.Tick(t + absl::Seconds(1));
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7", "publish 7 at 12", "publish regions 7 at 12"}));

  // A follower: time-outs keep the link for kSlowLinkGrace from the first one; an answer
  // between them starts it again.
  Node b("node-b");
  b.Join(kStart, {State(5), Leader("node-a", 9, 4)});
  b.rec.Take();
  const absl::Time first = kStart + absl::Seconds(1);
  b.m.PublishAnswered(first, kLease, late);
  b.m.PublishAnswered(first + FleetMachine::kSlowLinkGrace - absl::Milliseconds(1), kLease, late);
  EXPECT_TRUE(b.m.connected());
  const absl::Time answered = first + FleetMachine::kSlowLinkGrace;
  b.m.KeepAliveAnswered(answered, answered, kLease, FleetLease{kLease, 3});
  // Past the grace of the first time-out, but the first since the answer.
  b.m.PublishAnswered(answered + absl::Seconds(1), kLease, late);
  EXPECT_TRUE(b.m.connected());
  EXPECT_EQ(b.rec.Take(), Lines{});
  // The grace from that one over, with no answer between: lost, as a refused call is at once.
  b.m.PublishAnswered(answered + absl::Seconds(1) + FleetMachine::kSlowLinkGrace, kLease, late);
  EXPECT_EQ(b.rec.Take(), Lines{"cancel watch"});
  EXPECT_FALSE(b.m.connected());

  // A watch that ends is the link lost, whatever the error: the node would learn nothing more.
  Node c("node-c");
  c.Join(kStart, {State(5), Leader("node-a", 9, 4)});
  c.rec.Take();
  c.m.WatchEnded(absl::DeadlineExceededError("etcd timed out"));
  EXPECT_EQ(c.rec.Take(), Lines{"cancel watch"});
  EXPECT_FALSE(c.m.connected());
}

TEST(FleetMachineTest, AnEtcdOutageAndRecovery) {
  Node a("node-a");
  // etcd stops answering: the keep-alive fails, the watch goes.
  absl::Time t = a.LeadAndTick(kStart);
  a.m.KeepAliveAnswered(t + absl::Seconds(1), t, kLease,
                        absl::UnavailableError("connection refused"));
  EXPECT_EQ(a.rec.Take(), (Lines{"cancel watch", "cancel views"}));
  EXPECT_FALSE(a.m.connected());
  EXPECT_EQ(a.m.last_error(), "connection refused");
  a.m.PublishAnswered(t + absl::Seconds(1), kLease, absl::UnavailableError("connection refused"));
  a.m.PublishRegionsAnswered(t + absl::Seconds(1), kLease,
                             absl::UnavailableError("connection refused"));
  EXPECT_EQ(a.rec.Take(), Lines{});
  // Writes are refused and counted; the lease it has still makes it the leader until the
  // deadline, but it cannot write.
  absl::StatusOr<FleetWriteCompare> write = a.m.StartWrite(t + absl::Seconds(1), true);
  EXPECT_TRUE(absl::IsUnavailable(write.status())) << write.status();
  EXPECT_EQ(a.m.writes(FleetMachine::kUnavailable), 1u);
  // Every tick keeps alive and resyncs, one of each at a time.
  t = kStart + absl::Milliseconds(1500);
  a.m.Tick(t);
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7", "resync"}));
  a.m.Tick(t + kInterval);
  EXPECT_EQ(a.rec.Take(), Lines{});
  EXPECT_TRUE(a.m.Leads(t + kInterval));
  // The lease's deadline passes during the outage: it stops leading by itself.
  a.m.Tick(kStart + kTtl - FleetMachine::kLeaseMargin);
  EXPECT_EQ(a.rec.Take(), Lines{"steps down"});
  a.m.ResyncAnswered(t + absl::Seconds(1), absl::UnavailableError("timed out"));
  a.m.KeepAliveAnswered(t + absl::Seconds(1), t, kLease, absl::UnavailableError("timed out"));
  EXPECT_EQ(a.rec.Take(), Lines{});
  // etcd is back before the lease expired there: the keep-alive renews it and the resync finds
  // the leader key still this node's, so it leads again without a new election.
  t = kStart + absl::Seconds(3);
  a.m.Tick(t);
  EXPECT_EQ(a.rec.Take(), (Lines{"keep alive 7", "resync"}));
  a.m.KeepAliveAnswered(t, t, kLease, FleetLease{kLease, 3});
  EXPECT_EQ(a.rec.Take(), Lines{});  // not connected yet
  a.m.ResyncAnswered(t, FleetResync{30, false, {State(5), Leader("node-a", kLease, 11)}});
  EXPECT_EQ(a.rec.Take(), (Lines{"load views", "watch from 31", "publish 7 at 30"}));
  EXPECT_TRUE(a.m.connected());
  EXPECT_FALSE(a.m.Leads(t));  // not before it has every view again
  a.m.ViewsAnswered(t, FleetViews{30, {}});
  EXPECT_EQ(a.rec.Take(), (Lines{"watch views from 31", "leads", "publish regions 7 at 30"}));
  a.m.PublishRegionsAnswered(kStart, kLease, 30);
  EXPECT_TRUE(a.m.Leads(t));
  EXPECT_EQ(a.m.last_error(), "");
  absl::StatusOr<FleetWriteCompare> again = a.m.StartWrite(t, true);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->leader_revision, 11);
}

// After an outage that outlasted its margin, a leader leads again without an election only
// when the leader key it finds is its own, under the lease it still holds, with time to spare.
TEST(FleetMachineTest, WhoLeadsAgainAfterAnOutage) {
  const absl::Time back = kStart + absl::Seconds(3);
  // A keep-alive sent then renews the lease to exactly the margin before `back`.
  const absl::Time too_late = back + FleetMachine::kLeaseMargin - kTtl;
  struct Row {
    const char* what;
    std::optional<FleetRecord> leader;
    bool eligible;
    absl::Time keep_alive_sent;
    Lines actions;
    bool leads;  // once the views it loads are in
  };
  const Row rows[] = {
      {"its key under its lease",
       Leader("node-a", kLease, 11),
       true,
       back,
       {"load views", "watch from 31", "publish 7 at 30"},
       true},
      {"its key under an older lease",
       Leader("node-a", 6, 11),
       true,
       back,
       {"watch from 31", "publish 7 at 30"},
       false},
      {"another node's key",
       Leader("node-b", 9, 20),
       true,
       back,
       {"watch from 31", "publish 7 at 30"},
       false},
      {"no key",
       std::nullopt,
       true,
       back,
       {"watch from 31", "publish 7 at 30", "campaign 7"},
       false},
      // It does not lead, and its key, bound to the lease it keeps alive, goes.
      {"not eligible",
       Leader("node-a", kLease, 11),
       false,
       back,
       {"resign 11", "watch from 31", "publish 7 at 30"},
       false},
      {"its lease in the last margin",
       Leader("node-a", kLease, 11),
       true,
       too_late,
       {"watch from 31", "publish 7 at 30"},
       false},
      {"its lease a nanosecond short of it",
       Leader("node-a", kLease, 11),
       true,
       too_late + absl::Nanoseconds(1),
       {"load views", "watch from 31", "publish 7 at 30"},
       true},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    Node a("node-a");
    a.JoinAndLead(kStart);
    a.m.PublishAnswered(kStart, kLease, 12);
    a.m.WatchEnded(absl::UnavailableError("connection reset"));
    a.m.Tick(kStart + kTtl - FleetMachine::kLeaseMargin);
    EXPECT_EQ(a.rec.Take(),
              (Lines{"cancel watch", "cancel views", "steps down", "keep alive 7", "resync"}));
    a.m.SetEligible(row.eligible, back);
    a.m.KeepAliveAnswered(back, row.keep_alive_sent, kLease, FleetLease{kLease, 3});
    FleetResync answer{30, false, {State(5)}};
    if (row.leader) answer.records.push_back(*row.leader);
    a.m.ResyncAnswered(back, answer);
    EXPECT_EQ(a.rec.Take(), row.actions);
    EXPECT_FALSE(a.m.Leads(back));
    // The views' answer (ignored by a node that loads none).
    a.m.ViewsAnswered(back, FleetViews{30, {}});
    EXPECT_EQ(
        a.rec.Take(),
        (row.leads ? Lines{"watch views from 31", "leads", "publish regions 7 at 30"} : Lines{}));
    EXPECT_EQ(a.m.Leads(back), row.leads);
  }
}

TEST(FleetMachineTest, ALeaseCountsFromItsRequestNotItsAnswer) {
  Node a("node-a");
  a.m.Tick(kStart);
  a.m.GrantAnswered(kStart + absl::Milliseconds(900), kStart, FleetLease{kLease, 3});
  EXPECT_EQ(a.m.lease(), kLease);
  EXPECT_EQ(a.m.lease_expiry(), kStart + absl::Seconds(3));
}

TEST(FleetMachineTest, ALeaseThatExpiredDuringTheOutageIsReplaced) {
  Node a("node-a");
  a.JoinAndLead(kStart);
  a.m.WatchEnded(absl::UnavailableError("connection reset"));
  EXPECT_EQ(a.rec.Take(), (Lines{"cancel watch", "cancel views"}));
  // etcd answers again, but expired the lease meanwhile: the publish says so.
  absl::Time t = kStart + absl::Seconds(10);
  a.m.PublishAnswered(t, kLease, absl::NotFoundError("etcdserver: requested lease not found"));
  EXPECT_EQ(a.rec.Take(), Lines{"steps down"});
  EXPECT_EQ(a.m.lease(), 0);
  a.m.Tick(t);
  EXPECT_EQ(a.rec.Take(), (Lines{"grant", "resync"}));
  a.m.GrantAnswered(t, t, FleetLease{8, 3});
  // The old key went with the old lease; another node won meanwhile.
  a.m.ResyncAnswered(t, FleetResync{40, false, {State(5), Leader("node-b", 9, 35)}});
  EXPECT_EQ(a.rec.Take(), (Lines{"watch from 41", "publish 8 at 40"}));
  EXPECT_FALSE(a.m.Leads(t));
}

TEST(FleetMachineTest, ACompactedOrCancelledWatchResyncs) {
  for (bool compacted : {true, false}) {
    SCOPED_TRACE(compacted ? "compacted" : "cancelled");
    Node a("node-a");
    a.Join(kStart, {State(5), Leader("node-b", 9, 6)});
    a.rec.Take();
    FleetWatchMessage m;
    m.revision = 50;
    if (compacted) {
      m.compact_revision = 40;
    } else {
      m.canceled = true;
      m.cancel_reason = "etcdserver: mvcc: required revision has been compacted";
    }
    a.m.WatchMessage(kStart, m);
    EXPECT_EQ(a.rec.Take(), (Lines{"cancel watch", "resync"}));
    EXPECT_FALSE(a.m.connected());
    EXPECT_EQ(a.m.last_error(), compacted ? "the watch's revision was compacted (at 40)"
                                          : "etcd cancelled the watch: " + m.cancel_reason);
  }
}

// A node whose configuration cannot use the fleet's state: the runtime says so from inside
// AdoptState, before the resync's answer is done with.
TEST(FleetMachineTest, AMisfitNodeNeverCampaignsAndAMisfitLeaderResigns) {
  Node a("node-a");
  a.rec.on_adopt = [&](const ControllerState&, int64_t) { a.m.SetEligible(false, kStart); };
  a.Join(kStart, {State(5)});
  EXPECT_EQ(a.rec.Take(), (Lines{"adopt 5", "watch from 11", "publish 7 at 10"}));
  for (int i = 1; i <= 3; ++i) a.m.Tick(kStart + i * kInterval);
  EXPECT_EQ(a.rec.Take(), Lines{"keep alive 7"});
  // Fit again (its configuration was fixed, or the state changed): it campaigns at once.
  a.rec.on_adopt = nullptr;
  a.m.SetEligible(true, kStart + absl::Seconds(2));
  EXPECT_EQ(a.rec.Take(), Lines{"campaign 7"});

  // A leader that turns misfit deletes its own key (compared by create revision).
  Node b("node-b");
  b.JoinAndLead(kStart, 11);
  b.rec.on_adopt = [&](const ControllerState&, int64_t) { b.m.SetEligible(false, kStart); };
  b.m.WatchMessage(kStart, Events(14, {{false, State(14)}}));
  EXPECT_EQ(b.rec.Take(), (Lines{"adopt 14", "cancel views", "steps down", "resign 11"}));
  EXPECT_FALSE(b.m.Leads(kStart));
  EXPECT_TRUE(absl::IsFailedPrecondition(b.m.StartWrite(kStart, true).status()));
  // Its key's deletion comes back through the watch: still no campaign.
  b.m.WatchMessage(kStart, Events(15, {{true, Deleted("/sluice/leader", 15)}}));
  EXPECT_EQ(b.rec.Take(), Lines{});
}

// The state that makes it a misfit arrives while its campaign is in flight: a key it wins
// then is deleted at once, not held by a node that takes no ramp step.
TEST(FleetMachineTest, ACampaignWonAfterTurningMisfitResigns) {
  Node a("node-a");
  a.Join(kStart, {State(5)});
  EXPECT_EQ(a.rec.Take(), (Lines{"adopt 5", "watch from 11", "publish 7 at 10", "campaign 7"}));
  a.m.SetEligible(false, kStart);
  EXPECT_EQ(a.rec.Take(), Lines{});
  a.m.CampaignAnswered(kStart, kLease, "us-east-1", "a:9901", FleetCampaign{11, true, {}, {}});
  EXPECT_EQ(a.rec.Take(), Lines{"resign 11"});
  EXPECT_FALSE(a.m.Leads(kStart));
}

// A leader that turns misfit while a resync's answer is applied (its runtime says so from
// inside AdoptState, when the link is not up yet) resigns once the answer is in.
TEST(FleetMachineTest, ALeaderThatTurnsMisfitDuringAResyncResigns) {
  Node b("node-b");
  b.JoinAndLead(kStart, 11);
  b.m.PublishAnswered(kStart, kLease, 12);
  b.m.WatchEnded(absl::UnavailableError("connection reset"));
  b.m.Tick(kStart + kInterval);
  EXPECT_EQ(b.rec.Take(), (Lines{"cancel watch", "cancel views", "keep alive 7", "resync"}));
  b.rec.on_adopt = [&](const ControllerState&, int64_t) { b.m.SetEligible(false, kStart); };
  b.m.ResyncAnswered(kStart + kInterval,
                     FleetResync{30, false, {State(20), Leader("node-b", kLease, 11)}});
  EXPECT_EQ(b.rec.Take(),
            (Lines{"adopt 20", "steps down", "resign 11", "watch from 31", "publish 7 at 30"}));
  EXPECT_FALSE(b.m.Leads(kStart + kInterval));
}

// A leader that turns misfit without the store resigns once it is back, if its key is still
// there under the lease it kept alive.
TEST(FleetMachineTest, ALeaderThatTurnsMisfitWhileDisconnectedResignsOnceBack) {
  Node b("node-b");
  b.JoinAndLead(kStart, 11);
  b.m.PublishAnswered(kStart, kLease, 12);
  b.m.WatchEnded(absl::UnavailableError("connection reset"));
  b.m.SetEligible(false, kStart);
  EXPECT_EQ(b.rec.Take(), (Lines{"cancel watch", "cancel views", "steps down"}));
  b.m.Tick(kStart + kInterval);
  EXPECT_EQ(b.rec.Take(), (Lines{"keep alive 7", "resync"}));
  b.m.KeepAliveAnswered(kStart + kInterval, kStart + kInterval, kLease, FleetLease{kLease, 3});
  EXPECT_EQ(b.rec.Take(), Lines{});  // not connected yet: nothing is sent
  b.m.ResyncAnswered(kStart + kInterval,
                     FleetResync{30, false, {State(5), Leader("node-b", kLease, 11)}});
  EXPECT_EQ(b.rec.Take(), (Lines{"resign 11", "watch from 31", "publish 7 at 30"}));
  // Its deletion comes back through the watch: no campaign, no leader.
  b.m.WatchMessage(kStart + kInterval, Events(31, {{true, Deleted("/sluice/leader", 31)}}));
  EXPECT_EQ(b.rec.Take(), Lines{});
  EXPECT_FALSE(b.m.leader());
}

// A resign that fails is sent again once the store is back, and never two at a time; a key
// whose resign etcd answered is neither resigned again nor taken back.
TEST(FleetMachineTest, AFailedResignIsRetriedOneAtATime) {
  Node b("node-b");
  b.JoinAndLead(kStart, 11);
  b.m.PublishAnswered(kStart, kLease, 12);
  b.m.SetEligible(false, kStart);
  EXPECT_EQ(b.rec.Take(), (Lines{"cancel views", "steps down", "resign 11"}));
  absl::Time t = kStart + kInterval;
  b.m.Tick(t);  // the resign is still in flight
  EXPECT_EQ(b.rec.Take(), (Lines{"keep alive 7", "publish 7 at 12"}));
  b.m.ResignAnswered(kStart, absl::UnavailableError("timed out"));
  EXPECT_EQ(b.rec.Take(), Lines{"cancel watch"});
  b.m.KeepAliveAnswered(t, t, kLease, FleetLease{kLease, 3});
  b.m.PublishAnswered(t, kLease, 13);
  t += kInterval;
  b.m.Tick(t);
  EXPECT_EQ(b.rec.Take(), (Lines{"keep alive 7", "resync"}));
  b.m.ResyncAnswered(t, FleetResync{30, false, {State(5), Leader("node-b", kLease, 11)}});
  EXPECT_EQ(b.rec.Take(), (Lines{"resign 11", "watch from 31", "publish 7 at 30"}));
  // Fit again before the answer: the key it is deleting is not taken back.
  b.m.SetEligible(true, t);
  b.m.KeepAliveAnswered(t, t, kLease, FleetLease{kLease, 3});
  EXPECT_EQ(b.rec.Take(), Lines{});
  b.m.SetEligible(false, t);
  b.m.ResignAnswered(kStart, absl::OkStatus());
  b.m.PublishAnswered(t, kLease, 31);
  t += kInterval;
  b.m.Tick(t);  // the deletion has not come through the watch yet: not resigned again
  EXPECT_EQ(b.rec.Take(), (Lines{"keep alive 7", "publish 7 at 31"}));
}

// The leader dies in the middle of a ramp: its lease expires in etcd, which deletes its key;
// a follower takes over from the state the dead leader last wrote, and writes compared with it.
TEST(FleetMachineTest, ALeaderKilledMidRampIsReplacedFromItsLastStep) {
  Node b("node-b");
  b.Join(kStart, {State(5), Leader("node-a", 9, 6), View("node-a", 6)}, 10);
  EXPECT_EQ(b.rec.Take(), (Lines{"adopt 5", "watch from 11", "publish 7 at 10"}));
  EXPECT_TRUE(b.m.views().empty());  // the leader's
  // The leader's ramp steps arrive as states.
  b.m.WatchMessage(kStart + absl::Seconds(1), Events(12, {{false, State(12, 3)}}));
  b.m.WatchMessage(kStart + absl::Seconds(2), Events(13, {{false, State(13, 4)}}));
  EXPECT_EQ(b.rec.Take(), (Lines{"adopt 12", "adopt 13"}));
  EXPECT_EQ(b.rec.adopted.back().version, 4u);
  // b keeps its own lease alive meanwhile.
  b.m.Tick(kStart + absl::Seconds(4));
  b.m.KeepAliveAnswered(kStart + absl::Seconds(4), kStart + absl::Seconds(4), kLease,
                        FleetLease{kLease, 3});
  b.rec.Take();
  // The leader is killed; 3 s later etcd expires its lease: its key and view go in one
  // revision.
  absl::Time t = kStart + absl::Seconds(5);
  b.m.WatchMessage(t, Events(14, {{true, Deleted("/sluice/leader", 14)},
                                  {true, Deleted("/sluice/nodes/node-a", 14)}}));
  EXPECT_EQ(b.rec.Take(), Lines{"campaign 7"});
  EXPECT_TRUE(b.m.views().empty());
  b.m.CampaignAnswered(t, kLease, "us-west-2", "b:9901", FleetCampaign{15, true, {}, {}});
  EXPECT_EQ(b.rec.Take(), Lines{"load views"});
  b.m.ViewsAnswered(t, FleetViews{15, {}});
  EXPECT_EQ(b.rec.Take(), (Lines{"watch views from 16", "leads", "publish regions 7 at 15"}));
  b.m.PublishRegionsAnswered(kStart, kLease, 15);
  // Its first step is written over the dead leader's last one, under its own key.
  absl::StatusOr<FleetWriteCompare> write = b.m.StartWrite(t, true);
  ASSERT_TRUE(write.ok()) << write.status();
  EXPECT_EQ(write->state_revision, 13);
  EXPECT_EQ(write->leader_revision, 15);
  FleetWrite written;
  written.revision = 16;
  written.written = true;
  EXPECT_EQ(*b.m.WriteAnswered(t, true, *write, written), 16);
  EXPECT_EQ(b.m.state_revision(), 16);
  // Its own write comes back through the watch: not adopted again.
  b.m.WatchMessage(t, Events(16, {{false, State(16, 5)}}));
  EXPECT_EQ(b.rec.Take(), Lines{});
}

// What a write compares and what its answers mean.
TEST(FleetMachineTest, WritesCompareTheStateAndTheLeaderKey) {
  struct Row {
    const char* what;
    bool as_leader;
    absl::StatusOr<FleetWrite> answer;
    absl::StatusCode code;
    Lines actions;
    FleetMachine::WriteOutcome counted;
    bool connected_after;
  };
  auto conflict = [](std::vector<FleetRecord> leader) {
    FleetWrite w;
    w.revision = 20;
    w.read_back = true;
    w.state = {State(19, 9)};
    w.leader = std::move(leader);
    return w;
  };
  FleetWrite written;
  written.revision = 20;
  written.written = true;
  const Row rows[] = {
      {"written", true, written, absl::StatusCode::kOk, {}, FleetMachine::kWritten, true},
      {"another write came first",
       true,
       conflict({Leader("node-a", kLease, 11)}),
       absl::StatusCode::kAborted,
       {"adopt 19"},
       FleetMachine::kConflict,
       true},
      {"the leader key is gone",
       true,
       conflict({}),
       absl::StatusCode::kFailedPrecondition,
       {"adopt 19", "cancel views", "steps down"},
       FleetMachine::kConflict,
       true},
      {"the leader key is another's",
       true,
       conflict({Leader("node-b", 9, 18)}),
       absl::StatusCode::kFailedPrecondition,
       {"adopt 19", "cancel views", "steps down"},
       FleetMachine::kConflict,
       true},
      {"a change by hand ignores the leader key",
       false,
       conflict({}),
       absl::StatusCode::kAborted,
       {"adopt 19"},
       FleetMachine::kConflict,
       true},
      {"etcd could not be reached",
       true,
       absl::UnavailableError("connection refused"),
       absl::StatusCode::kUnavailable,
       {"cancel watch", "cancel views"},
       FleetMachine::kUnavailable,
       false},
      {"etcd did not answer in time (the watch tells whether it took it)",
       true,
       absl::DeadlineExceededError("timed out"),
       absl::StatusCode::kUnavailable,
       {},
       FleetMachine::kUnavailable,
       true},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.what);
    Node a("node-a");
    a.JoinAndLead(kStart);
    a.m.WatchMessage(kStart, Events(12, {{false, State(12)}}));
    a.rec.Take();
    absl::StatusOr<FleetWriteCompare> write = a.m.StartWrite(kStart, row.as_leader);
    ASSERT_TRUE(write.ok()) << write.status();
    EXPECT_EQ(write->state_revision, 12);
    EXPECT_EQ(write->leader_revision, row.as_leader ? 11 : 0);
    absl::StatusOr<int64_t> result = a.m.WriteAnswered(kStart, row.as_leader, *write, row.answer);
    EXPECT_EQ(result.status().code(), row.code) << result.status();
    EXPECT_EQ(a.rec.Take(), row.actions);
    EXPECT_EQ(a.m.writes(row.counted), 1u);
    EXPECT_EQ(a.m.connected(), row.connected_after);
  }
}

TEST(FleetMachineTest, AWriteAfterTheStateKeyWasDeletedComparesItsAbsence) {
  Node a("node-a");
  a.Join(kStart, {State(5)});
  a.m.WatchMessage(kStart, Events(12, {{true, Deleted("/sluice/state", 12)}}));
  absl::StatusOr<FleetWriteCompare> write = a.m.StartWrite(kStart, false);
  ASSERT_TRUE(write.ok()) << write.status();
  EXPECT_EQ(write->state_revision, 0);
  // Recreated by someone else: compared again by its revision.
  a.m.WatchMessage(kStart, Events(13, {{false, State(13)}}));
  EXPECT_EQ(a.m.StartWrite(kStart, false)->state_revision, 13);
  // Refused without a lead for a leader's write, without the store for any.
  EXPECT_TRUE(absl::IsFailedPrecondition(a.m.StartWrite(kStart, true).status()));
  EXPECT_EQ(a.m.writes(FleetMachine::kUnavailable), 0u);
}

TEST(FleetMachineTest, ViewsAndStatesFromTheStoreAreCheckedNotTrusted) {
  Node a("node-a");
  FleetRecord misnamed = View("node-b", 7);
  misnamed.key = "/sluice/nodes/node-c";
  FleetRecord damaged = State(8);
  damaged.value = "{not json";
  a.Join(kStart, {damaged, View("node-b", 6), misnamed, FleetRecord{"/sluice/leader", "?", 9, 9}});
  // A damaged state is not adopted; a leader key with a value it cannot read is still a leader.
  EXPECT_EQ(a.rec.Take(), (Lines{"watch from 11", "publish 7 at 10"}));
  EXPECT_TRUE(a.m.views().empty());  // a follower keeps none
  ASSERT_TRUE(a.m.leader());
  EXPECT_EQ(a.m.leader()->node, "");
  EXPECT_EQ(a.m.state_revision(), 0);
  // Once it leads, the views it reads are checked: the misnamed one is left out.
  a.m.WatchMessage(kStart, Events(12, {{true, Deleted("/sluice/leader", 12)}}));
  EXPECT_EQ(a.rec.Take(), Lines{"campaign 7"});
  a.m.CampaignAnswered(kStart, kLease, "us-east-1", "127.0.0.1:9901",
                       FleetCampaign{13, true, {}, {}});
  EXPECT_EQ(a.rec.Take(), Lines{"load views"});
  a.m.ViewsAnswered(kStart, FleetViews{13, {View("node-b", 6), misnamed}});
  EXPECT_EQ(a.rec.Take(), (Lines{"watch views from 14", "leads", "publish regions 7 at 13"}));
  a.m.PublishRegionsAnswered(kStart, kLease, 13);
  EXPECT_EQ(a.m.views().size(), 1u);
  EXPECT_EQ(a.m.views().count("node-b"), 1u);
}

TEST(FleetMachineTest, LeavingStepsDownRevokesAndStops) {
  Node a("node-a");
  a.JoinAndLead(kStart);
  a.m.Leave();
  EXPECT_EQ(a.rec.Take(), (Lines{"cancel views", "steps down", "revoke 7"}));
  a.m.Tick(kStart + kInterval);
  a.m.PublishAnswered(kStart + kInterval, kLease, 12);
  EXPECT_EQ(a.rec.Take(), Lines{});
  EXPECT_FALSE(a.m.Leads(kStart + kInterval));
}

}  // namespace
}  // namespace sluice
