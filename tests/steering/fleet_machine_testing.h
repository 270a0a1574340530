// What the FleetMachine tests share: a recorder of its actions, one line each, as the store
// and the runtime would see them, a node that joins a fleet, and the records of the prefix.
#ifndef SLUICE_TESTS_STEERING_FLEET_MACHINE_TESTING_H_
#define SLUICE_TESTS_STEERING_FLEET_MACHINE_TESTING_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "steering/fleet_machine.h"
#include "steering/fleet_view.h"
#include "steering/state_file.h"

namespace sluice {
namespace fleet_testing {

using Lines = std::vector<std::string>;

inline const absl::Time kStart = absl::FromUnixSeconds(1800000000);
constexpr absl::Duration kTtl = absl::Seconds(3);
constexpr absl::Duration kInterval = absl::Milliseconds(500);  // the publish interval
constexpr int64_t kLease = 7;
constexpr char kPrefix[] = "/sluice/";

// Every action as one line, in order, as the store and the runtime would see them.
struct Recorder : FleetMachine::Actions {
  Lines actions;
  std::vector<std::string> logs;
  std::vector<ControllerState> adopted;
  // What the runtime does with a state (SteeringControl decides there whether it fits).
  std::function<void(const ControllerState&, int64_t)> on_adopt;

  void Grant(absl::Time) override { actions.push_back("grant"); }
  void KeepAlive(int64_t lease, absl::Time) override {
    actions.push_back("keep alive " + std::to_string(lease));
  }
  void Revoke(int64_t lease) override { actions.push_back("revoke " + std::to_string(lease)); }
  void Resync() override { actions.push_back("resync"); }
  void Watch(int64_t from) override { actions.push_back("watch from " + std::to_string(from)); }
  void CancelWatch() override { actions.push_back("cancel watch"); }
  void LoadViews() override { actions.push_back("load views"); }
  void WatchViews(int64_t from) override {
    actions.push_back("watch views from " + std::to_string(from));
  }
  void CancelViews() override { actions.push_back("cancel views"); }
  void Campaign(int64_t lease, bool read_views, absl::Time) override {
    actions.push_back("campaign " + std::to_string(lease) + (read_views ? "" : " (has the views)"));
  }
  void Resign(int64_t revision) override {
    actions.push_back("resign " + std::to_string(revision));
  }
  // What the runtime's Publish and PublishRegions answer (false: unchanged, nothing sent).
  bool publish_sends = true;
  bool Publish(int64_t lease, int64_t revision, absl::Time) override {
    if (!publish_sends) return false;
    actions.push_back("publish " + std::to_string(lease) + " at " + std::to_string(revision));
    return true;
  }
  bool PublishRegions(int64_t lease, int64_t revision, absl::Time) override {
    if (!publish_sends) return false;
    actions.push_back("publish regions " + std::to_string(lease) + " at " +
                      std::to_string(revision));
    return true;
  }
  void AdoptState(ControllerState state, int64_t revision) override {
    actions.push_back("adopt " + std::to_string(revision));
    adopted.push_back(state);
    if (on_adopt) on_adopt(adopted.back(), revision);
  }
  void Leadership(bool leader) override { actions.push_back(leader ? "leads" : "steps down"); }
  void Log(FleetLogLevel, const std::string& line) override { logs.push_back(line); }
  void WakeAt(absl::Time at) override { actions.push_back("wake at " + absl::FormatTime(at)); }
  void TicketKeys(const FleetRecord& record, bool deleted) override {
    actions.push_back((deleted ? "tickets deleted " : "tickets ") + record.key + " at " +
                      std::to_string(record.mod_revision));
  }

  Lines Take() { return std::exchange(actions, {}); }
};

inline FleetRecord State(int64_t mod_revision, uint64_t version = 2) {
  ControllerState state;
  state.version = version;
  return FleetRecord{"/sluice/state", EncodeControllerState(state), 2, mod_revision};
}

inline FleetRecord Leader(const std::string& node, int64_t lease, int64_t create_revision) {
  return FleetRecord{"/sluice/leader",
                     FleetMachine::LeaderValue(node, "us-east-1", "127.0.0.1:9901", lease, kStart),
                     create_revision, create_revision};
}

inline FleetRecord View(const std::string& node, int64_t revision) {
  NodeView view;
  view.node = node;
  view.region = "us-west-2";
  view.updated = kStart;
  view.can_lead = true;
  return FleetRecord{"/sluice/nodes/" + node, EncodeNodeView(view), revision, revision};
}

inline FleetRecord Deleted(const std::string& key, int64_t revision) {
  return FleetRecord{key, "", 0, revision};
}

inline FleetWatchMessage Events(int64_t revision, std::vector<FleetWatchEvent> events) {
  FleetWatchMessage m;
  m.revision = revision;
  m.events = std::move(events);
  return m;
}

// One node of the fleet, driven by hand: the test plays etcd and the clock.
struct Node {
  Recorder rec;
  FleetMachine m;
  explicit Node(const std::string& name) : m(kPrefix, name, &rec) {}

  // The first tick at `now`: a lease granted for kTtl, and a resync that finds `records` at
  // `revision` (the state created when none is among them). Connected afterwards; the actions
  // after the resync are left to the test.
  void Join(absl::Time now, std::vector<FleetRecord> records, int64_t revision = 10) {
    m.Tick(now);
    EXPECT_EQ(rec.Take(), (Lines{"grant", "resync"}));
    m.GrantAnswered(now, now, FleetLease{kLease, absl::ToInt64Seconds(kTtl)});
    EXPECT_EQ(rec.Take(), Lines{});  // not connected yet: neither publishes nor campaigns
    bool has_state = false;
    for (const FleetRecord& r : records) has_state = has_state || r.key == "/sluice/state";
    FleetResync answer;
    answer.revision = revision;
    answer.created = !has_state;
    answer.records = std::move(records);
    m.ResyncAnswered(now, answer);
    EXPECT_TRUE(m.connected());
  }
  // Joins an empty fleet and wins the campaign with a leader key at `revision`.
  void JoinAndLead(absl::Time now, int64_t revision = 11) {
    Join(now, {});
    EXPECT_EQ(rec.Take(), (Lines{"watch from 11", "publish 7 at 10", "campaign 7"}));
    FleetCampaign won;
    won.revision = revision;
    won.won = true;
    m.CampaignAnswered(now, kLease, "us-east-1", "127.0.0.1:9901", won);
    // It leads once it has every view.
    EXPECT_EQ(rec.Take(), Lines{"load views"});
    EXPECT_FALSE(m.Leads(now));
    m.ViewsAnswered(now, FleetViews{revision, {}});
    // And its sums go out at once, for the others' figures.
    EXPECT_EQ(rec.Take(), (Lines{"watch views from " + std::to_string(revision + 1), "leads",
                                 "publish regions 7 at " + std::to_string(revision)}));
    m.PublishRegionsAnswered(now, kLease, revision);
    EXPECT_TRUE(m.Leads(now));
  }
  // Leads, its view put at revision 12, then its first tick after `now`: the keep-alive, the
  // view and the sums in flight. Returns the tick's time.
  absl::Time LeadAndTick(absl::Time now) {
    JoinAndLead(now);
    m.PublishAnswered(now, kLease, 12);
    const absl::Time t = now + kInterval;
    m.Tick(t);
    EXPECT_EQ(rec.Take(), (Lines{"keep alive 7", "publish 7 at 12", "publish regions 7 at 12"}));
    return t;
  }
};

}  // namespace fleet_testing
}  // namespace sluice

#endif  // SLUICE_TESTS_STEERING_FLEET_MACHINE_TESTING_H_
