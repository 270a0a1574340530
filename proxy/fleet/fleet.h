// The fleet (DESIGN.md, "The controller"): every node of every region serves with one steering
// table, kept in etcd under `fleet.prefix`:
//
//   {prefix}state          the controller's state (steering/state_file.h's JSON): the table's
//                          values and the plans. Every write is a transaction that compares
//                          the key's mod revision with the one the writer started from.
//   {prefix}leader         the campaign key: the node that advances ramps, bound to its lease.
//   {prefix}nodes/{node}   each node's view (steering/fleet_view.h), bound to its lease.
//   {prefix}regions        the leader's sums of the views per region (FleetRegions), bound to
//                          its lease.
//   {prefix}tickets[/{region}]  session ticket keys shared by the fleet or by a region, sealed
//                          (proxy/control/ticket_key_control.h); written by the leader.
//
// Each node holds a lease (the leader keeps it alive every publish interval, the others every
// third of its TTL), watches the prefix but the views (two ranges: before and after "nodes/")
// and hands every newer state to SteeringControl (which saves it as the last-known-good copy
// and publishes it to the workers). Its view goes out when it changed, at most every publish
// interval, or in a fleet of N nodes every N / 500 seconds when that is longer (so etcd takes
// about 500 views a second at any size), and at least every half lease TTL; its tick starts
// at a random phase, so a fleet's puts spread over the interval. Only the leader (and the
// standbys it names, fleet.standbys) reads and watches the views; it publishes their sums per
// region (as often as a view goes out), which the other nodes' capacity, detection and status
// read. So each node receives what changes in the state, the leader key and the sums: the same
// at 3 nodes and at 3,000. When no leader key exists a standby campaigns at once; any other
// node after 0.5 s per standby and a random wait of up to 50 ms per node of the fleet
// (FleetMachine's campaign spread); the leader's writes also compare the leader key's create
// revision with its own, so a node that lost its lease cannot write even if it still thinks it
// leads, and it stops acting by itself as soon as its lease could have expired (counted from when
// its last keep-alive was sent).
//
// Without the store (etcd unreachable, the watch broken), the node keeps serving with the
// table it has, reports connected 0, refuses changes with 503 and, as leader or not, advances
// no ramp; once etcd answers again it resyncs (one range of the prefix, then a new watch from
// that revision).
//
// What to send when, and what each answer means, is FleetMachine's (steering/fleet_machine.h,
// pure and unit-tested); this class carries its actions out through the etcd client and feeds
// the answers back with the time.
//
// Control thread only.
#ifndef SLUICE_PROXY_FLEET_FLEET_H_
#define SLUICE_PROXY_FLEET_FLEET_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proxy/config/config.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/loop_timer.h"
#include "proxy/fleet/etcd_client.h"
#include "steering/controller.h"
#include "steering/fleet_machine.h"
#include "steering/fleet_view.h"

namespace sluice {

// "<local region>-<host name>-<admin port>": unique per machine, readable in `sluicectl status`.
std::string DefaultFleetNodeName(const Config& config, uint16_t admin_port);

class Fleet : private FleetMachine::Actions {
 public:
  struct Hooks {
    // A state newer than any this node had, at its store revision.
    std::function<void(ControllerState state, int64_t revision)> on_state;
    // This node became the leader (true) or stopped being it (false).
    std::function<void(bool leader)> on_leadership;
    // This node's view (traffic, table version, admin address); the fleet fills in the node
    // name, the revision and the time.
    std::function<NodeView()> view;
    // The state to store when the store has none yet (the first node of a new fleet).
    std::function<std::string()> initial_state;
    // A key under {prefix}tickets (sealed session ticket keys) as the store holds it now, or
    // its deletion (proxy/control/ticket_key_control.h).
    std::function<void(const FleetRecord& record, bool deleted)> on_ticket_keys;
  };
  // The outcomes counted in metrics (sluice_fleet_writes_total{outcome}).
  using WriteOutcome = FleetMachine::WriteOutcome;
  static constexpr int kWriteOutcomes = FleetMachine::kWriteOutcomes;
  static const char* WriteOutcomeName(WriteOutcome outcome) {
    return FleetMachine::WriteOutcomeName(outcome);
  }
  // OK with the revision written at; Aborted when another write came first (the newer state
  // was handed to on_state); Unavailable without the store; FailedPrecondition for a leader
  // write from a node that is not (or no longer) the leader.
  using WriteDone = std::function<void(const absl::Status& status, int64_t revision)>;

  Fleet(LoopContext* context, FleetConfig config, std::string node, Hooks hooks);
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;
  ~Fleet() override;

  void Start();
  // A graceful exit: stops leading and revokes the lease, so the others take over at once.
  void Leave();
  // Abandons every call; no hook runs afterwards.
  void Stop();

  void Write(const ControllerState& next, bool as_leader, WriteDone done);

  // The leader: puts `value` under `key` (not bound to a lease) if the key's mod revision is
  // still `mod_revision` (0: it must not exist) and this node still holds the leader key.
  // `done`: OK when written, Aborted when either compare failed (the watch brings what is
  // there), FailedPrecondition when this node does not lead, Unavailable without the store.
  void PutAsLeader(const std::string& key, const std::string& value, int64_t mod_revision,
                   std::function<void(const absl::Status&)> done);
  const std::string& tickets_key() const { return machine_.tickets_key(); }

  // A node that cannot use the fleet's state (it does not fit its configuration) must not
  // lead: it resigns (deleting its leader key, so another node takes over at once) and stops
  // campaigning until it can again.
  void SetEligible(bool eligible);

  bool connected() const { return machine_.connected(); }
  // Holds the leader key under a lease that cannot have expired yet.
  bool leader() const;
  int64_t revision() const { return machine_.revision(); }
  const std::string& node() const { return machine_.node(); }
  absl::Time last_sync() const { return machine_.last_sync(); }
  uint64_t writes(WriteOutcome outcome) const { return machine_.writes(outcome); }
  // Live nodes, from the views (the leader, a standby) or the leader's sums.
  size_t node_count() const;
  // The leader's and its standbys': every live node's last published view (its own too once
  // the store echoed it), by node. Empty on the other nodes: they read RegionSums.
  const std::map<std::string, NodeView>& views() const { return machine_.views(); }
  // This node follows the views (it leads or is a standby, and has read them).
  bool has_views() const { return machine_.has_views(); }
  // The leader this node knows of (none while the leader key is absent), the standbys the
  // leader's sums named, this node's rank among them (0: none), and when its lease could
  // expire at the earliest (from the last keep-alive sent and answered).
  const std::optional<FleetLeader>& known_leader() const { return machine_.leader(); }
  const std::vector<std::string>& standbys() const { return machine_.standbys(); }
  size_t standby_rank() const { return machine_.standby_rank(); }
  absl::Time lease_expiry() const { return machine_.lease_expiry(); }
  // Each region's nodes summed: from the views on the leader (at most 100 ms old), from the
  // leader's published sums elsewhere; empty when neither is there.
  const std::map<std::string, RegionSum>& RegionSums() const;
  // The fleet's view of `region` from the sums; nullopt when no node of it publishes.
  std::optional<RegionHealth> RegionGate(const std::string& region) const;
  // The fleet's state without the list of nodes (what GET /v1/steering summarises).
  nlohmann::json Status() const;
  // GET /v1/fleet: Status with every node. The leader has them; another node reads them from
  // the store when asked (at most once per publish interval, however often it is asked).
  void StatusWithNodes(std::function<void(nlohmann::json)> done);
  // What this node's etcd calls and watches cost on the wire.
  EtcdClientStats etcd_stats() const { return etcd_->stats(); }

 private:
  // FleetMachine::Actions: each carried out through the etcd client, its answer fed back.
  void Grant(absl::Time now) override;
  void KeepAlive(int64_t lease, absl::Time now) override;
  void Revoke(int64_t lease) override;
  void Resync() override;
  void Watch(int64_t from) override;
  void CancelWatch() override;
  void LoadViews() override;
  void WatchViews(int64_t from) override;
  void CancelViews() override;
  void Campaign(int64_t lease, bool read_views, absl::Time now) override;
  void Resign(int64_t leader_revision) override;
  bool Publish(int64_t lease, int64_t revision, absl::Time now) override;
  bool PublishRegions(int64_t lease, int64_t revision, absl::Time now) override;
  void AdoptState(ControllerState state, int64_t revision) override;
  void Leadership(bool leader) override;
  void Log(FleetLogLevel level, const std::string& line) override;
  void TicketKeys(const FleetRecord& record, bool deleted) override;
  void WakeAt(absl::Time at) override;

  // The views not older than the lease (a node etcd has not expired yet is left out).
  std::vector<NodeView> LiveViews(absl::Time now) const;
  // The resync: its three ranges (read-only, or with the state's creation when it is missing)
  // and its answer handed to the machine.
  std::vector<EtcdOp> ResyncRanges() const;
  void CreateState();
  void ResyncRead(const absl::StatusOr<EtcdTxnResult>& result);
  void AnswerStatus();
  // Whether a put of `text` (what changes, without revision and time) under `lease` is due.
  struct Published {
    int64_t lease = 0;
    std::string text;
    absl::Time at = absl::InfinitePast();
  };
  bool Due(const Published& last, int64_t lease, const std::string& text, absl::Time now) const;
  // FleetViewInterval for the fleet's size as this node knows it (the views it leads with, or
  // the leader's sums).
  absl::Duration ViewInterval() const;

  LoopContext* context_;
  FleetConfig config_;
  Hooks hooks_;
  std::unique_ptr<EtcdClient> etcd_;
  std::string tls_error_;
  LoopTimer timer_;
  LoopTimer first_tick_;          // at a random phase of the interval
  LoopTimer wake_;                // a campaign that waits (FleetMachine::WakeAt)
  uint64_t watches_[2] = {0, 0};  // before and after the views; 0: none
  uint64_t views_watch_ = 0;      // the leader's
  uint64_t views_load_ = 0;       // the range in flight is answered while this matches
  Published view_;                // this node's
  Published regions_;             // the leader's sums
  mutable std::map<std::string, RegionSum> sums_;  // RegionSums' cache on the leader
  mutable absl::Time sums_at_ = absl::InfinitePast();
  std::map<std::string, NodeView> listing_;  // a follower's last read of the views
  absl::Time listing_at_ = absl::InfinitePast();
  std::string listing_error_;
  std::vector<std::function<void(nlohmann::json)>> status_waiting_;
  FleetMachine machine_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_FLEET_FLEET_H_
