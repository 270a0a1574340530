// The fleet's decisions (DESIGN.md, "The controller"; proxy/fleet/fleet.h says what lives
// where in etcd): when to ask for a lease and keep it alive, when this node may campaign,
// lead, and must stop leading, what a key of the prefix means for this node, when the store
// counts as lost and when to read it again, and what a write compares.
//
// What a node follows grows with the fleet, not with its square: every node reads and watches
// the prefix without the nodes' views (the state, the leader key and the leader's region
// sums); only the leader reads and watches the views, and publishes their sums per region
// for the others. A node that wins the leader key takes its first step as leader once it has
// every view (one range), so its first gates and its dead-edge watch see the whole fleet.
//
// Failover: the leader names standbys in its sums (kStandbys unless the configuration says
// otherwise; nodes of other regions than its own where it can). A standby follows the views
// too, and campaigns the moment the leader key goes, without reading them: it leads as soon as
// etcd answers. Every other node waits kStandbyHeadStart per standby, then a random part of
// a spread that grows with the fleet, so a fleet whose standbys died with the leader (a region
// lost) still elects one.
//
// Pure logic: no I/O, and time is an argument. The machine tells its Actions what to send and
// what to hand to the runtime; the caller (proxy/fleet/fleet.cc) carries each action out
// through the etcd client and feeds every answer back with the time it arrived (and, for a
// lease, the time its request was sent: a lease counts from then). At most one call of each
// kind (grant, keep-alive, resync, campaign, resign, publish) is in flight at a time.
//
// Actions run from inside the call that caused them, after the machine's own state has moved
// on. AdoptState and Leadership may call back into the machine (SetEligible, StartWrite) before
// the call that caused them returns: the runtime decides there whether the new state fits this
// node, and a new leader takes its first ramp step at once. Not thread-safe.
//
// fleet_machine.cc: the link, the lease, the campaign and the records; fleet_machine_views.cc:
// the views, the announcement and the standbys.
#ifndef SLUICE_STEERING_FLEET_MACHINE_H_
#define SLUICE_STEERING_FLEET_MACHINE_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "steering/controller.h"
#include "steering/fleet_view.h"

namespace sluice {

// A key of the fleet's prefix as the store holds it (a deletion carries the key only).
struct FleetRecord {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
};

struct FleetLease {
  int64_t id = 0;
  int64_t ttl_seconds = 0;  // 0 from a keep-alive: the lease is gone
};

// The answer to a resync: the state key created when the store had none (`created`), and the
// whole prefix either way, at `revision`.
struct FleetResync {
  int64_t revision = 0;
  bool created = false;
  std::vector<FleetRecord> records;
  int64_t views = -1;  // how many node views the store holds (-1: not counted)
};

// The answer to a range of the views (the leader's).
struct FleetViews {
  int64_t revision = 0;
  std::vector<FleetRecord> records;
};

struct FleetWatchEvent {
  bool deleted = false;
  FleetRecord record;
};

struct FleetWatchMessage {
  int64_t revision = 0;
  bool canceled = false;
  int64_t compact_revision = 0;  // > 0: the revision the watch started from was compacted
  std::string cancel_reason;
  std::vector<FleetWatchEvent> events;
};

// The answer to a campaign (create the leader key if there is none).
struct FleetCampaign {
  int64_t revision = 0;
  bool won = false;
  std::optional<FleetRecord> holder;  // lost: the leader key that was there
  std::optional<FleetViews> views;    // won: the views, when the transaction read them too
};

// What a write of the state compares: the state key's mod revision (0: it must not exist) and,
// for a leader's write, the leader key's create revision (0: no such compare).
struct FleetWriteCompare {
  int64_t state_revision = 0;
  int64_t leader_revision = 0;
};

// The answer to a write.
struct FleetWrite {
  int64_t revision = 0;
  bool written = false;
  // Not written: the state key and the leader key as they are now (read_back false when the
  // answer lacked them).
  bool read_back = false;
  std::vector<FleetRecord> state;
  std::vector<FleetRecord> leader;
};

// The leader key's value, as this node read it.
struct FleetLeader {
  std::string node;
  std::string region;
  std::string admin;
  int64_t lease = 0;            // the lease the key is bound to
  int64_t create_revision = 0;  // the key's
};

enum class FleetLogLevel : uint8_t { kInfo, kWarning, kError };

class FleetMachine {
 public:
  // A leader stops acting this long before its lease could expire, for the time a keep-alive
  // spends in flight and clocks that tick at slightly different rates.
  static constexpr absl::Duration kLeaseMargin = absl::Milliseconds(500);
  // After a failed resync the next one waits this long, doubled per failure up to the most,
  // each node at a fraction of it between one half and all of it (spread by its name).
  static constexpr absl::Duration kFirstResyncBackoff = absl::Milliseconds(250);
  static constexpr absl::Duration kMaxResyncBackoff = absl::Seconds(8);
  // A link lost again before it stayed in sync this long counts as a failure too (the next
  // resync backs off): under an overloaded etcd, a resync that succeeded and a call that timed
  // out right after made every node resync in a loop, which kept etcd overloaded.
  static constexpr absl::Duration kStableLink = absl::Seconds(30);
  // A call that timed out (DeadlineExceeded: etcd too slow, not gone) keeps the link: it goes
  // again at its next tick. A time-out this long after the first with no answer between them
  // loses it. An etcd that runs late under a fleet's load (a start, every node back together)
  // answered the next calls, but every node that met one time-out resynced, and the resyncs
  // kept it late: 3,000 simulated nodes often never got in sync.
  static constexpr absl::Duration kSlowLinkGrace = absl::Seconds(4);
  // When the leader key goes, each node campaigns after a random part of this per node of the
  // fleet that could campaign (candidates()), up to the most: the fleet sends about 20
  // campaigns a second whatever its size, the first within about 50 ms, until the winner's
  // key reaches the others (3,000 campaigns at once time out in etcd, and so do the fleet's
  // other calls with them).
  static constexpr absl::Duration kCampaignSpreadPerNode = absl::Milliseconds(50);
  static constexpr absl::Duration kMaxCampaignSpread = absl::Minutes(5);
  // The standbys the leader names, and how long each one waits for the one before it (the
  // first campaigns at once; a node that is no standby waits for all of them). A head start
  // covers a campaign's round trip and its key's way to the others under load.
  static constexpr size_t kStandbys = 1;  // unless set_standby_count says otherwise
  static constexpr absl::Duration kStandbyHeadStart = absl::Milliseconds(500);

  // The outcomes of writes counted in metrics (sluice_fleet_writes_total{outcome}).
  enum WriteOutcome : int { kWritten, kConflict, kUnavailable, kWriteOutcomes };
  static const char* WriteOutcomeName(WriteOutcome outcome);

  // What the machine asks of the store and of the runtime. Every call to the store is
  // answered through the method named with it, unless the caller abandons it (Stop).
  class Actions {
   public:
    virtual ~Actions() = default;
    // A lease for the configured TTL, sent at `now`. -> GrantAnswered
    virtual void Grant(absl::Time now) = 0;
    // -> KeepAliveAnswered
    virtual void KeepAlive(int64_t lease, absl::Time now) = 0;
    // Revoke the lease, deleting every key bound to it; nobody waits for the answer.
    virtual void Revoke(int64_t lease) = 0;
    // Range the prefix without the views (and count the views); where the state key does not
    // exist, put the runtime's state under it first if it still does not (created: true).
    // -> ResyncAnswered
    virtual void Resync() = 0;
    // Watch the prefix without the views from `from` on. -> WatchMessage, WatchEnded
    virtual void Watch(int64_t from) = 0;
    // End the watch, if any; nothing of it is answered afterwards.
    virtual void CancelWatch() = 0;
    // Range the views. -> ViewsAnswered
    virtual void LoadViews() = 0;
    // Watch the views from `from` on. -> WatchMessage, ViewsWatchEnded
    virtual void WatchViews(int64_t from) = 0;
    // End the views' load or watch, if any; nothing of them is answered afterwards.
    virtual void CancelViews() = 0;
    // Create the leader key (this node's LeaderValue, bound to `lease`) and, with
    // `read_views`, read the views (a standby follows them already) if no leader key exists;
    // otherwise read it. -> CampaignAnswered
    virtual void Campaign(int64_t lease, bool read_views, absl::Time now) = 0;
    // Delete the leader key if its create revision is `leader_revision`. -> ResignAnswered
    virtual void Resign(int64_t leader_revision) = 0;
    // Put this node's view (at store revision `revision`, as of `now`), bound to `lease`.
    // -> PublishAnswered. False when nothing was sent (the view has not changed since the last
    // one under this lease, and that one is recent): nothing is answered then.
    virtual bool Publish(int64_t lease, int64_t revision, absl::Time now) = 0;
    // The leader: put the sums of `views` per region (FleetRegions) and standbys() under the
    // regions key, bound to `lease`. -> PublishRegionsAnswered; false as for Publish.
    virtual bool PublishRegions(int64_t lease, int64_t revision, absl::Time now) = 0;
    // A state newer than any this node had, at its store revision.
    virtual void AdoptState(ControllerState state, int64_t revision) = 0;
    // This node became the leader (true) or stopped being it (false).
    virtual void Leadership(bool leader) = 0;
    virtual void Log(FleetLogLevel level, const std::string& line) = 0;
    // A key under the tickets key (the sealed session ticket keys) as the store holds it now,
    // or its deletion. The machine does not read them; whoever shares the keys does.
    virtual void TicketKeys(const FleetRecord& /*record*/, bool /*deleted*/) {}
    // Call Wake at `at` (or soon after): a campaign waits until then.
    virtual void WakeAt(absl::Time at) = 0;
  };

  // Keys: "{prefix}state", "{prefix}leader", "{prefix}nodes/{node}", "{prefix}regions",
  // "{prefix}tickets" and "{prefix}tickets/{region}".
  // `actions` outlives the machine.
  FleetMachine(const std::string& prefix, std::string node, Actions* actions);

  // Every publish interval: keeps the lease (or asks for one), resyncs without the store,
  // publishes the view and campaigns when there is no leader.
  void Tick(absl::Time now);
  // At the time WakeAt asked for: campaigns when there is still no leader.
  void Wake(absl::Time now);
  // A graceful exit: stops leading and revokes the lease; nothing is sent afterwards but the
  // answers to calls in flight.
  void Leave();
  // A node that cannot use the fleet's state must not lead: it resigns (deleting its leader
  // key, so another node takes over at once) and does not campaign until it can again.
  void SetEligible(bool eligible, absl::Time now);
  // A call failed for want of the store (at `now`): not connected until a resync succeeds.
  // A time-out (DeadlineExceeded) while in sync keeps the link, for kSlowLinkGrace from the
  // first with no answer since.
  void Disconnected(const absl::Status& status, absl::Time now);

  // The answers. `sent`: when the request went out.
  void GrantAnswered(absl::Time now, absl::Time sent, const absl::StatusOr<FleetLease>& lease);
  void KeepAliveAnswered(absl::Time now, absl::Time sent, int64_t id,
                         const absl::StatusOr<FleetLease>& lease);
  void ResyncAnswered(absl::Time now, const absl::StatusOr<FleetResync>& answer);
  // From either watch.
  void WatchMessage(absl::Time now, const FleetWatchMessage& message);
  void WatchEnded(const absl::Status& status);
  void ViewsAnswered(absl::Time now, const absl::StatusOr<FleetViews>& answer);
  void ViewsWatchEnded(const absl::Status& status);
  // `region` and `admin`: what the leader value it sent says of this node.
  void CampaignAnswered(absl::Time now, int64_t lease, const std::string& region,
                        const std::string& admin, const absl::StatusOr<FleetCampaign>& answer);
  void ResignAnswered(absl::Time now, const absl::Status& status);
  void PublishAnswered(absl::Time now, int64_t lease, const absl::StatusOr<int64_t>& revision);
  void PublishRegionsAnswered(absl::Time now, int64_t lease,
                              const absl::StatusOr<int64_t>& revision);

  // A write of the state: what it compares, or why it is refused (Unavailable without the
  // store, FailedPrecondition for a leader write from a node that does not lead).
  absl::StatusOr<FleetWriteCompare> StartWrite(absl::Time now, bool as_leader);
  // Its answer: the revision written at, or Aborted when another write came first (the newer
  // state went to AdoptState), FailedPrecondition when a leader's write found the leader key
  // gone or replaced, Unavailable without the store.
  absl::StatusOr<int64_t> WriteAnswered(absl::Time now, bool as_leader,
                                        const FleetWriteCompare& sent,
                                        const absl::StatusOr<FleetWrite>& answer);

  // The leader key's value.
  static std::string LeaderValue(const std::string& node, const std::string& region,
                                 const std::string& admin, int64_t lease, absl::Time now);

  // Holds the leader key under a lease that cannot have expired by `now`, and has read every
  // view since it won it.
  bool Leads(absl::Time now) const;
  bool connected() const { return link_ == Link::kInSync; }
  const std::string& node() const { return node_; }
  const std::string& state_key() const { return state_key_; }
  const std::string& leader_key() const { return leader_key_; }
  const std::string& nodes_prefix() const { return nodes_prefix_; }
  const std::string& regions_key() const { return regions_key_; }
  const std::string& tickets_key() const { return tickets_key_; }
  // The create revision of the leader key this node holds (what a leader's write compares);
  // 0 when it does not lead.
  int64_t leading_revision() const { return leading_revision_; }
  int64_t lease() const { return lease_; }
  absl::Time lease_expiry() const { return lease_expiry_; }
  int64_t revision() const { return revision_; }              // the newest store revision seen
  int64_t state_revision() const { return state_revision_; }  // of the state this node has
  absl::Time last_sync() const { return last_sync_; }
  // Why the store is not connected.
  const std::string& last_error() const { return last_error_; }
  // The leader key, when one exists (this node's or another's).
  const std::optional<FleetLeader>& leader() const { return leader_; }
  // Every live node's last published view, by node: the leader's only (others have none).
  const std::map<std::string, NodeView>& views() const { return views_; }
  // Following the views (the leader and its standbys, once they are read).
  bool has_views() const { return views_link_ == ViewsLink::kFollowing; }
  // The leader: the standbys it names in its sums, in the order they campaign. Any other
  // node: as the leader's last sums named them (kept after the sums go with its lease).
  const std::vector<std::string>& standbys() const { return standbys_; }
  // 1 for the first standby, 2 for the second...; 0 for a node that is none.
  size_t standby_rank() const;
  // How many the leader names (at most kMaxFleetStandbys; 0: none).
  void set_standby_count(size_t count) { standby_count_ = std::min(count, kMaxFleetStandbys); }
  // The fleet's nodes as this node last knew them: the views it follows, or the leader's last
  // sums (kept after they go with the leader's lease), or the views it last led with, or the
  // views its first resync counted; 0 when it never knew.
  size_t fleet_size() const;
  // Of those, the nodes that could campaign (their views do not say they cannot lead): what
  // spreads the campaigns. The same as fleet_size() with an older leader's sums.
  size_t candidates() const;
  // It could lead now: it fits the fleet's state and is not stopping (its view says so).
  bool can_lead() const { return eligible_ && !leaving_; }
  // The leader's sums per region, as a follower last read them (none while this node leads).
  const std::optional<FleetRegions>& regions() const { return regions_; }
  uint64_t writes(WriteOutcome outcome) const { return writes_[outcome]; }

 private:
  // Where this node stands with the store: kOffline and kResyncing are both "not connected"
  // (a resync is in flight in the latter); kInSync: resynced, with a watch from then on.
  enum class Link : uint8_t { kOffline, kResyncing, kInSync };
  // The views, which the leader follows: not at all, being read, or read and watched.
  enum class ViewsLink : uint8_t { kOff, kLoading, kFollowing };
  // The calls of which one at a time may be in flight (a resync is the Link's).
  enum Call : uint8_t {
    kGrantCall = 1,
    kKeepAliveCall = 2,
    kCampaignCall = 4,
    kPublishCall = 8,
    kResignCall = 16,
    kRegionsCall = 32,
  };

  bool InFlight(Call call) const { return (in_flight_ & call) != 0; }
  // False when one is in flight already; otherwise marks it.
  bool Send(Call call);
  void Answered(Call call) { in_flight_ &= ~call; }

  void Grant(absl::Time now);
  void KeepAlive(absl::Time now);
  void Resync();
  // The wait after the resync_failures_-th failure in a row.
  absl::Duration ResyncBackoff();
  void Campaign(absl::Time now);
  absl::Duration CampaignSpread() const;
  // No leader key: campaigns now in a small fleet, after a random part of the spread in a
  // large one (WakeAt), unless a wait is under way already.
  void CampaignAfterSpread(absl::Time now);
  void Publish(absl::Time now);
  void PublishRegions(absl::Time now);
  // The answer to a put bound to `lease` (a view, the sums).
  void PutAnswered(absl::Time now, int64_t lease, const absl::StatusOr<int64_t>& revision);
  void StepDown(const std::string& why);
  // The leader, and an eligible standby, follow the views.
  bool WantsViews() const {
    return leading_revision_ != 0 || (eligible_ && !leaving_ && standby_rank() > 0);
  }
  // Stops following the views, keeping their count as the fleet's size.
  void DropViews();
  // A follower: the standbys the leader's sums name; it follows the views when it is one.
  void SetStandbys(std::vector<std::string> standbys);
  // The leader, before it publishes its sums: keeps the standbys that still publish views and
  // fills up from other regions than its own (then from any).
  void ChooseStandbys();
  // How long after the leader key went this node campaigns.
  absl::Duration CampaignWait();
  // Leading with every view under a live lease, not announced yet: announces it.
  void MaybeAnnounce(absl::Time now);
  // Won or reclaimed the leader key: leads once it has every view (`views`: read with the win).
  void StartLeading(absl::Time now, const std::optional<FleetViews>& views);
  void FollowViews();
  void StopViews();
  bool LeaseAlive(absl::Time now) const {
    return lease_ != 0 && now < lease_expiry_ - kLeaseMargin;
  }
  // A bad view or sums document: warned about at most once a minute per key.
  void WarnBadRecord(const std::string& key, absl::Time now, const std::string& why);
  // The leader key is this node's, bound to the lease it holds (so it lives as long as this
  // node keeps the lease alive).
  bool HoldsLeaderKey() const;
  // Leads again when the leader key is still this node's, under its live lease (after etcd
  // came back before the lease expired); a node that is not eligible resigns it instead.
  void MaybeReclaim(absl::Time now);
  // Deletes the leader key when it is this node's and this node is not eligible: connected,
  // one resign at a time, and not again for a key whose resign etcd has answered.
  void MaybeResign();
  // The store lost, whatever the error: watches cancelled, a resync at the next tick.
  void LoseLink(const absl::Status& status);
  // Any answer from etcd, even a refusal: the link works (ends a run of time-outs).
  void HeardFromStore();
  void LoseLease(const std::string& why);
  // Any key of the prefix, from a range or a watch event.
  void Apply(const FleetRecord& record, absl::Time now);
  void ApplyDeleted(const FleetRecord& record, absl::Time now);
  void SawRevision(int64_t revision, absl::Time now);
  bool IsNodeKey(const std::string& key) const;
  bool IsTicketsKey(const std::string& key) const;
  void Log(FleetLogLevel level, const std::string& line) { actions_->Log(level, line); }
  // In [0, 1), from this node's own sequence.
  double Jitter();

  std::string node_;
  std::string state_key_;
  std::string leader_key_;
  std::string nodes_prefix_;
  std::string regions_key_;
  std::string tickets_key_;
  Actions* actions_;

  Link link_ = Link::kOffline;
  // In a row: failed resyncs, and links lost before they were stable (reset once stable).
  int resync_failures_ = 0;
  absl::Time next_resync_ = absl::InfinitePast();
  absl::Time in_sync_since_ = absl::InfinitePast();  // the last successful resync
  bool backoff_due_ = false;  // a link lost too soon: the next tick sets next_resync_
  int short_links_ = 0;       // links lost in a row before they were stable
  // The first time-out since etcd last answered (kSlowLinkGrace); none after an answer.
  std::optional<absl::Time> slow_since_;
  uint64_t jitter_state_;
  uint8_t in_flight_ = 0;  // Calls
  std::string last_error_ = "not connected yet";
  absl::Time last_sync_ = absl::InfinitePast();
  int64_t revision_ = 0;
  int64_t state_revision_ = 0;  // the state key's mod revision this node has
  bool state_missing_ = false;  // someone deleted the state key

  int64_t lease_ = 0;  // 0: none
  absl::Time lease_expiry_ = absl::InfinitePast();
  absl::Duration lease_ttl_ = absl::ZeroDuration();  // as etcd last granted or renewed it
  bool leaving_ = false;
  bool eligible_ = true;

  int64_t leading_revision_ = 0;    // the create revision of this node's leader key; 0: not leading
  int64_t resigning_revision_ = 0;  // what the resign in flight compares
  int64_t resigned_revision_ = 0;   // what the last resign etcd answered compared
  std::optional<FleetLeader> leader_;
  bool announce_pending_ = false;                  // leads once the views are in
  absl::Time campaign_at_ = absl::InfinitePast();  // no campaign before
  uint32_t fleet_size_ = 0;  // nodes, as the leader's sums (or this node's views) last counted
  uint32_t candidates_ = 0;  // of which could campaign
  std::vector<std::string> standbys_;
  size_t standby_count_ = kStandbys;

  ViewsLink views_link_ = ViewsLink::kOff;
  std::map<std::string, NodeView> views_;  // by node
  std::optional<FleetRegions> regions_;
  std::map<std::string, absl::Time> warned_;  // bad records' keys: when last warned about
  std::set<std::string> tickets_seen_;        // ticket keys in the store, as last read
  uint64_t writes_[kWriteOutcomes] = {};
};

}  // namespace sluice

#endif  // SLUICE_STEERING_FLEET_MACHINE_H_
