#include "steering/fleet_machine.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_format.h"
#include "steering/state_file.h"

namespace sluice {

using nlohmann::json;

const char* FleetMachine::WriteOutcomeName(WriteOutcome outcome) {
  static const char* const kNames[] = {"written", "conflict", "unavailable"};
  static_assert(std::size(kNames) == kWriteOutcomes);
  return outcome < kWriteOutcomes ? kNames[outcome] : "unknown";
}

std::string FleetMachine::LeaderValue(const std::string& node, const std::string& region,
                                      const std::string& admin, int64_t lease, absl::Time now) {
  return json{{"node", node},
              {"region", region},
              {"admin", admin},
              {"lease", lease},
              {"since_ms", absl::ToUnixMillis(now)}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

FleetMachine::FleetMachine(const std::string& prefix, std::string node, Actions* actions)
    : node_(std::move(node)),
      state_key_(prefix + "state"),
      leader_key_(prefix + "leader"),
      nodes_prefix_(prefix + "nodes/"),
      regions_key_(prefix + "regions"),
      tickets_key_(prefix + "tickets"),
      actions_(actions),
      jitter_state_(std::hash<std::string>()(node_)) {}

double FleetMachine::Jitter() {
  // splitmix64: spread without a clock or a global generator (the machine stays pure).
  jitter_state_ += 0x9e3779b97f4a7c15ULL;
  uint64_t z = jitter_state_;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) / static_cast<double>(uint64_t{1} << 53);
}

bool FleetMachine::Send(Call call) {
  if (InFlight(call)) return false;
  in_flight_ |= call;
  return true;
}

bool FleetMachine::Leads(absl::Time now) const {
  return leading_revision_ != 0 && !announce_pending_ && LeaseAlive(now);
}

void FleetMachine::Tick(absl::Time now) {
  if (leaving_) return;
  if (leading_revision_ != 0 && !LeaseAlive(now)) {
    StepDown("its lease may have expired (no keep-alive answered in time)");
  }
  MaybeAnnounce(now);
  if (connected() && resync_failures_ > 0 && now - in_sync_since_ >= kStableLink) {
    resync_failures_ = 0;
  }
  if (backoff_due_) {
    backoff_due_ = false;
    if (!connected()) next_resync_ = now + ResyncBackoff();
  }
  if (!connected() && now < next_resync_) {
    // Backing off after failed resyncs (or a link lost too soon): only the lease it has is kept
    // alive meanwhile.
    if (lease_ != 0) KeepAlive(now);
    return;
  }
  if (lease_ == 0) {
    Grant(now);
  } else {
    KeepAlive(now);
  }
  if (!connected()) {
    Resync();
    return;
  }
  Publish(now);
  if (!leader_) Campaign(now);
  MaybeResign();  // one that failed, or could not be sent, is tried again
  // After a load or a watch of the views failed.
  if (WantsViews()) FollowViews();
  if (leading_revision_ != 0) PublishRegions(now);
}

void FleetMachine::Leave() {
  if (leaving_) return;
  leaving_ = true;
  StepDown("this node is stopping");
  DropViews();  // a standby's
  if (lease_ != 0) {
    // Deletes the leader key and this node's view at once instead of at the lease's expiry.
    actions_->Revoke(lease_);
    lease_ = 0;
  }
}

void FleetMachine::SetEligible(bool eligible, absl::Time now) {
  if (eligible_ == eligible) return;
  eligible_ = eligible;
  if (eligible) {
    if (WantsViews()) FollowViews();  // a standby
    if (connected() && !leader_) Campaign(now);
    return;
  }
  StepDown("it cannot use the fleet's steering state");
  if (!WantsViews()) DropViews();  // a standby that cannot lead has no use for them
  // Without the store (or while a resync's answer is applied), it resigns once it is back.
  MaybeResign();
}

void FleetMachine::MaybeResign() {
  if (eligible_ || leaving_ || !connected() || InFlight(kResignCall) || !HoldsLeaderKey() ||
      leader_->create_revision == resigned_revision_) {
    return;
  }
  // Only our own key goes: the delete compares its create revision.
  resigning_revision_ = leader_->create_revision;
  Send(kResignCall);
  actions_->Resign(resigning_revision_);
}

void FleetMachine::ResignAnswered(absl::Time now, const absl::Status& status) {
  Answered(kResignCall);
  if (!status.ok()) {
    Disconnected(status, now);  // MaybeResign tries again (the tick, or the resync's answer)
    return;
  }
  HeardFromStore();
  // The key with that create revision is gone (by this delete or before it); the watch says so.
  resigned_revision_ = resigning_revision_;
}

void FleetMachine::Grant(absl::Time now) {
  if (!Send(kGrantCall)) return;
  actions_->Grant(now);
}

void FleetMachine::GrantAnswered(absl::Time now, absl::Time sent,
                                 const absl::StatusOr<FleetLease>& lease) {
  Answered(kGrantCall);
  if (!lease.ok()) {
    Disconnected(lease.status(), now);
    return;
  }
  lease_ = lease->id;
  HeardFromStore();
  // Counted from the request: etcd started the TTL somewhere between then and now.
  lease_ttl_ = absl::Seconds(lease->ttl_seconds);
  lease_expiry_ = sent + lease_ttl_;
  Log(FleetLogLevel::kInfo,
      absl::StrFormat("lease %x granted for %ds", lease_, lease->ttl_seconds));
  if (connected()) {
    Publish(now);
    if (!leader_) Campaign(now);
  }
}

void FleetMachine::KeepAlive(absl::Time now) {
  // The leader keeps its lease alive every tick: it stops acting the moment the lease could
  // have expired. Any other node only needs its lease (and the view bound to it) to outlive it:
  // one keep-alive per third of the TTL, as etcd's own clients send them, is what the fleet's
  // size costs etcd most (each is a stream through its JSON gateway).
  if (leading_revision_ == 0 && !HoldsLeaderKey() && now < lease_expiry_ - lease_ttl_ * 2 / 3) {
    return;
  }
  if (!Send(kKeepAliveCall)) return;
  actions_->KeepAlive(lease_, now);
}

void FleetMachine::KeepAliveAnswered(absl::Time now, absl::Time sent, int64_t id,
                                     const absl::StatusOr<FleetLease>& lease) {
  Answered(kKeepAliveCall);
  if (id != lease_) return;  // lost or revoked meanwhile
  if (!lease.ok()) {
    Disconnected(lease.status(), now);
    return;
  }
  HeardFromStore();
  if (lease->ttl_seconds <= 0) {
    LoseLease("etcd says the lease expired");
    return;
  }
  lease_ttl_ = absl::Seconds(lease->ttl_seconds);
  lease_expiry_ = sent + lease_ttl_;
  MaybeReclaim(now);
  MaybeAnnounce(now);
}

bool FleetMachine::HoldsLeaderKey() const {
  return leader_ && lease_ != 0 && leader_->node == node_ && leader_->lease == lease_;
}

void FleetMachine::MaybeReclaim(absl::Time now) {
  if (!eligible_) {
    MaybeResign();
    return;
  }
  if (leading_revision_ != 0 || leaving_ || !connected() || !HoldsLeaderKey() ||
      now >= lease_expiry_ - kLeaseMargin) {
    return;
  }
  // A key this node resigned is not taken back; its deletion is on its way.
  if ((InFlight(kResignCall) && leader_->create_revision == resigning_revision_) ||
      leader_->create_revision == resigned_revision_) {
    return;
  }
  leading_revision_ = leader_->create_revision;
  Log(FleetLogLevel::kInfo,
      absl::StrFormat("node %s holds the leader key (revision %d) under its live lease", node_,
                      leading_revision_));
  StartLeading(now, std::nullopt);
}

void FleetMachine::StartLeading(absl::Time now, const std::optional<FleetViews>& views) {
  regions_.reset();  // it sums the views itself now
  // It names its own standbys from now on (a standby that leads is none).
  standbys_.erase(std::remove(standbys_.begin(), standbys_.end(), node_), standbys_.end());
  announce_pending_ = true;
  if (views_link_ == ViewsLink::kFollowing) {
    // A standby: it has every view already.
    MaybeAnnounce(now);
    return;
  }
  if (views && connected()) {
    // The campaign read them: a load under way (a standby's, begun just before) is not waited
    // for.
    if (views_link_ == ViewsLink::kLoading) actions_->CancelViews();
    views_link_ = ViewsLink::kLoading;
    ViewsAnswered(now, *views);
    return;
  }
  FollowViews();
}

void FleetMachine::LoseLease(const std::string& why) {
  Log(FleetLogLevel::kWarning, absl::StrFormat("lease %x lost: %s", lease_, why));
  lease_ = 0;
  StepDown("its lease was lost");
}

void FleetMachine::StepDown(const std::string& why) {
  if (leading_revision_ == 0) return;
  bool announced = !announce_pending_;
  leading_revision_ = 0;
  announce_pending_ = false;
  // A follower has no use for the views (a leader never names itself a standby): they go, and
  // the leader's sums replace them.
  if (!WantsViews()) DropViews();
  if (!announced) return;
  Log(FleetLogLevel::kWarning, absl::StrFormat("node %s no longer advances ramps: %s", node_, why));
  actions_->Leadership(false);
}

void FleetMachine::Disconnected(const absl::Status& status, absl::Time now) {
  if (link_ == Link::kInSync && absl::IsDeadlineExceeded(status)) {
    // Counted from the first time-out with no answer since, however many calls were in
    // flight (a leader has three at every tick).
    if (!slow_since_) slow_since_ = now;
    if (now - *slow_since_ < kSlowLinkGrace) {
      // Each call goes again at its next tick (a view, a keep-alive, a campaign, the views'
      // read, a resignation); a write's caller is told. The watches still bring what changes.
      last_error_ = std::string(status.message());
      Log(FleetLogLevel::kWarning,
          absl::StrFormat("etcd is slow (%s); keeping the link (no answer for %s of %s)",
                          last_error_, absl::FormatDuration(now - *slow_since_),
                          absl::FormatDuration(kSlowLinkGrace)));
      return;
    }
  }
  LoseLink(status);
}

void FleetMachine::HeardFromStore() { slow_since_.reset(); }

void FleetMachine::LoseLink(const absl::Status& status) {
  last_error_ = std::string(status.message());
  slow_since_.reset();
  if (link_ != Link::kInSync) return;
  link_ = Link::kOffline;
  // Lost again before the link was stable (as of the last answer it had): the next resync
  // backs off. (The first loss resyncs at once, as after a long stable time.)
  short_links_ = last_sync_ - in_sync_since_ < kStableLink ? short_links_ + 1 : 1;
  if (short_links_ >= 2) {
    ++resync_failures_;
    backoff_due_ = true;
  }
  Log(FleetLogLevel::kWarning,
      absl::StrFormat(
          "lost the steering store (%s); serving with table revision %d until it is back",
          last_error_, state_revision_));
  actions_->CancelWatch();
  StopViews();  // the views it has age out; read again once in sync
}

absl::Duration FleetMachine::ResyncBackoff() {
  // A fleet that lost its store together must not come back all at once: each failure
  // doubles the wait, up to kMaxResyncBackoff, each node at its own fraction of it.
  absl::Duration wait =
      kFirstResyncBackoff * (int64_t{1} << std::min(std::max(resync_failures_, 1) - 1, 10));
  return std::min(wait, kMaxResyncBackoff) * (0.5 + 0.5 * Jitter());
}

void FleetMachine::SawRevision(int64_t revision, absl::Time now) {
  if (revision > revision_) revision_ = revision;
  last_sync_ = now;
  HeardFromStore();
}

void FleetMachine::Resync() {
  if (link_ == Link::kResyncing) return;
  link_ = Link::kResyncing;
  actions_->Resync();
}

void FleetMachine::ResyncAnswered(absl::Time now, const absl::StatusOr<FleetResync>& answer) {
  // Not connected while the answer is applied: nothing campaigns before the whole prefix is in.
  link_ = Link::kOffline;
  if (!answer.ok()) {
    Disconnected(answer.status(), now);
    // The next resync (and grant) waits.
    ++resync_failures_;
    backoff_due_ = false;
    next_resync_ = now + ResyncBackoff();
    return;
  }
  // The count of failures goes back to 0 once the link has been stable (Tick).
  in_sync_since_ = now;
  next_resync_ = absl::InfinitePast();
  SawRevision(answer->revision, now);
  if (answer->created) {
    Log(FleetLogLevel::kInfo,
        absl::StrFormat("the store had no steering state; this node's (table version from %s) "
                        "is now the fleet's",
                        state_key_));
    state_revision_ = std::max(state_revision_, answer->revision);
  }
  bool leader_seen = false;
  bool state_seen = false;
  bool regions_seen = false;
  // A node that never knew the fleet's size (it just started) takes the count of views until a
  // leader's sums (below, or later) say more: a fleet that starts together does not campaign
  // all at once.
  if (fleet_size() == 0 && answer->views > 0) {
    fleet_size_ = static_cast<uint32_t>(std::min<int64_t>(answer->views, UINT32_MAX));
    candidates_ = fleet_size_;
  }
  std::set<std::string> tickets_before = std::move(tickets_seen_);
  tickets_seen_.clear();
  for (const FleetRecord& record : answer->records) {
    tickets_before.erase(record.key);
    leader_seen = leader_seen || record.key == leader_key_;
    state_seen = state_seen || record.key == state_key_;
    regions_seen = regions_seen || record.key == regions_key_;
    Apply(record, now);
  }
  if (!leader_seen) {
    FleetRecord gone;
    gone.key = leader_key_;
    ApplyDeleted(gone, now);
  }
  if (!regions_seen) regions_.reset();
  // Ticket keys deleted while the watch was away: their deletion is news too.
  for (const std::string& key : tickets_before) {
    FleetRecord gone;
    gone.key = key;
    actions_->TicketKeys(gone, /*deleted=*/true);
  }
  state_missing_ = !state_seen && !answer->created;
  Log(FleetLogLevel::kInfo,
      absl::StrFormat("in sync with etcd at revision %d (leader %s)", revision_,
                      leader_ ? leader_->node : std::string("none")));
  link_ = Link::kInSync;
  last_error_.clear();
  MaybeReclaim(now);
  if (WantsViews()) FollowViews();
  actions_->Watch(answer->revision + 1);
  Publish(now);
  if (!leader_) CampaignAfterSpread(now);
}

void FleetMachine::WatchMessage(absl::Time now, const FleetWatchMessage& message) {
  SawRevision(message.revision, now);
  if (message.canceled || message.compact_revision > 0) {
    // Compacted past the revision it started from, or ended by etcd: read everything again.
    LoseLink(absl::UnavailableError(
        message.compact_revision > 0 ? absl::StrFormat("the watch's revision was compacted (at %d)",
                                                       message.compact_revision)
                                     : "etcd cancelled the watch: " + message.cancel_reason));
    Resync();
    return;
  }
  for (const FleetWatchEvent& event : message.events) {
    SawRevision(event.record.mod_revision, now);
    if (event.deleted) {
      ApplyDeleted(event.record, now);
    } else {
      Apply(event.record, now);
    }
  }
}

void FleetMachine::WatchEnded(const absl::Status& status) {
  // Without its watch a node learns nothing more: lost, whatever the reason.
  LoseLink(status);
}

bool FleetMachine::IsNodeKey(const std::string& key) const {
  return key.compare(0, nodes_prefix_.size(), nodes_prefix_) == 0;
}

bool FleetMachine::IsTicketsKey(const std::string& key) const {
  return key == tickets_key_ || (key.size() > tickets_key_.size() + 1 &&
                                 key.compare(0, tickets_key_.size(), tickets_key_) == 0 &&
                                 key[tickets_key_.size()] == '/');
}

void FleetMachine::Apply(const FleetRecord& record, absl::Time now) {
  if (record.key == state_key_) {
    state_missing_ = false;
    if (record.mod_revision <= state_revision_) return;  // this node's own write, or older
    absl::StatusOr<ControllerState> state = DecodeControllerState(record.value);
    if (!state.ok()) {
      Log(FleetLogLevel::kError,
          absl::StrFormat("the steering state at etcd revision %d is damaged (%s); keeping the "
                          "table this node has",
                          record.mod_revision, std::string(state.status().message())));
      return;
    }
    state_revision_ = record.mod_revision;
    actions_->AdoptState(*std::move(state), record.mod_revision);
    return;
  }
  if (record.key == leader_key_) {
    FleetLeader leader;
    leader.create_revision = record.create_revision;
    // A value that is not what LeaderValue writes still means a leader exists, unnamed.
    json value = json::parse(record.value, nullptr, false);
    if (value.is_object()) {
      auto text = [&](const char* key) {
        auto it = value.find(key);
        return it != value.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      leader.node = text("node");
      leader.region = text("region");
      leader.admin = text("admin");
      if (auto lease = value.find("lease"); lease != value.end() && lease->is_number_integer()) {
        leader.lease = lease->get<int64_t>();
      }
    }
    leader_ = std::move(leader);
    campaign_at_ = absl::InfinitePast();  // a wait to campaign is over: there is a leader
    if (leading_revision_ != 0 && record.create_revision != leading_revision_) {
      StepDown("another node holds the leader key");
    }
    MaybeReclaim(now);
    return;
  }
  if (record.key == regions_key_) {
    if (leading_revision_ != 0) return;  // its own sums: it has the views
    absl::StatusOr<FleetRegions> regions = DecodeFleetRegions(record.value);
    if (!regions.ok()) {
      // The last good sums stay: one bad document does not empty the fleet.
      WarnBadRecord(record.key, now, std::string(regions.status().message()));
      return;
    }
    warned_.erase(record.key);
    regions_ = *std::move(regions);
    SetStandbys(regions_->standbys);
    fleet_size_ = 0;
    for (const auto& [name, sum] : regions_->regions) fleet_size_ += sum.nodes;
    candidates_ = regions_->candidates.value_or(fleet_size_);
    return;
  }
  if (IsTicketsKey(record.key)) {
    tickets_seen_.insert(record.key);
    actions_->TicketKeys(record, /*deleted=*/false);
    return;
  }
  if (IsNodeKey(record.key)) {
    if (views_link_ == ViewsLink::kOff) return;  // a follower: the leader's sums say enough
    absl::StatusOr<NodeView> view = DecodeNodeView(record.value);
    std::string name = record.key.substr(nodes_prefix_.size());
    if (!view.ok() || view->node != name) {
      // Left out of every sum (never a crash, never a skewed gate) until it publishes a good one.
      WarnBadRecord(
          record.key, now,
          view.ok() ? "its node name differs from the key" : std::string(view.status().message()));
      views_.erase(name);
      return;
    }
    warned_.erase(record.key);
    views_[name] = *std::move(view);
  }
}

void FleetMachine::WarnBadRecord(const std::string& key, absl::Time now, const std::string& why) {
  constexpr absl::Duration kEvery = absl::Minutes(1);
  auto it = warned_.find(key);
  if (it != warned_.end() && now - it->second < kEvery) return;
  // Bounded: a fleet where every node publishes garbage keeps one entry per node.
  if (warned_.size() >= 10000) warned_.clear();
  warned_[key] = now;
  Log(FleetLogLevel::kWarning,
      absl::StrFormat("ignoring %s: %s (said at most once a minute)", key, why));
}

void FleetMachine::ApplyDeleted(const FleetRecord& record, absl::Time now) {
  if (record.key == state_key_) {
    Log(FleetLogLevel::kError,
        absl::StrFormat("someone deleted %s; serving with the table this node has until a "
                        "change writes it again",
                        state_key_));
    state_missing_ = true;
    return;
  }
  if (record.key == leader_key_) {
    bool had = leader_.has_value();
    leader_.reset();
    StepDown("the leader key is gone");
    CampaignAfterSpread(now);
    if (had) {
      Log(FleetLogLevel::kInfo,
          campaign_at_ <= now
              ? std::string("no leader; campaigning")
              : absl::StrFormat("no leader; campaigning in %s (one of about %d nodes)",
                                absl::FormatDuration(campaign_at_ - now), candidates()));
    }
    return;
  }
  if (record.key == regions_key_) {
    regions_.reset();
    return;
  }
  if (IsTicketsKey(record.key)) {
    tickets_seen_.erase(record.key);
    actions_->TicketKeys(record, /*deleted=*/true);
    return;
  }
  if (IsNodeKey(record.key)) {
    views_.erase(record.key.substr(nodes_prefix_.size()));
    warned_.erase(record.key);
  }
}

absl::Duration FleetMachine::CampaignSpread() const {
  return std::min(kMaxCampaignSpread, kCampaignSpreadPerNode * static_cast<int64_t>(candidates()));
}

absl::Duration FleetMachine::CampaignWait() {
  const size_t rank = standby_rank();
  if (rank > 0 && eligible_) return kStandbyHeadStart * static_cast<int64_t>(rank - 1);
  return kStandbyHeadStart * static_cast<int64_t>(standbys_.size()) + CampaignSpread() * Jitter();
}

size_t FleetMachine::fleet_size() const {
  return views_link_ == ViewsLink::kFollowing ? views_.size() : fleet_size_;
}

size_t FleetMachine::candidates() const {
  if (views_link_ != ViewsLink::kFollowing) return candidates_;
  // As CountCandidates of the views (the leader publishes that in its sums).
  size_t candidates = 0;
  for (const auto& [name, view] : views_) {
    candidates += !view.region.empty() && view.can_lead.value_or(true) ? 1 : 0;
  }
  return candidates;
}

void FleetMachine::CampaignAfterSpread(absl::Time now) {
  // Every node sees the key go (or finds none after a resync) at once: each waits a random
  // part of the spread, so that the first campaign wins and nearly every other node sees its
  // key before sending its own. A wait already under way stays as it was.
  if (campaign_at_ <= now) campaign_at_ = now + CampaignWait();
  if (campaign_at_ > now) {
    actions_->WakeAt(campaign_at_);
  } else if (connected()) {
    Campaign(now);
  }
}

void FleetMachine::Wake(absl::Time now) {
  if (leader_) return;
  // A timer may fire a little before its time (libuv counts from the loop's cached clock).
  if (now < campaign_at_) {
    actions_->WakeAt(campaign_at_);
    return;
  }
  Campaign(now);
}

void FleetMachine::Campaign(absl::Time now) {
  if (InFlight(kCampaignCall) || lease_ == 0 || leaving_ || !connected() || !eligible_ ||
      now < campaign_at_ || now >= lease_expiry_ - kLeaseMargin) {
    return;
  }
  Send(kCampaignCall);
  actions_->Campaign(lease_, views_link_ != ViewsLink::kFollowing, now);
}

void FleetMachine::CampaignAnswered(absl::Time now, int64_t lease, const std::string& region,
                                    const std::string& admin,
                                    const absl::StatusOr<FleetCampaign>& answer) {
  Answered(kCampaignCall);
  if (!answer.ok()) {
    if (absl::IsNotFound(answer.status())) {
      HeardFromStore();  // an answer: the lease is gone
      if (lease == lease_) LoseLease(std::string(answer.status().message()));
    } else {
      Disconnected(answer.status(), now);
    }
    return;
  }
  SawRevision(answer->revision, now);
  if (!answer->won) {
    if (answer->holder) Apply(*answer->holder, now);
    return;
  }
  if (lease != lease_ || leaving_) return;  // the key dies with the old lease
  // The watch may have brought this very key first (MaybeReclaim took the lead with it, and
  // reads the views): the views this answer carries are the same read, there already.
  if (leading_revision_ == answer->revision) {
    if (answer->views && views_link_ == ViewsLink::kLoading) {
      actions_->CancelViews();
      ViewsAnswered(now, *answer->views);
    }
    return;
  }
  FleetLeader mine;
  mine.node = node_;
  mine.region = region;
  mine.admin = admin;
  mine.lease = lease;
  mine.create_revision = answer->revision;
  leader_ = std::move(mine);
  if (!eligible_) {
    // It stopped fitting the fleet's state while the campaign was in flight. Holding the key
    // would keep every other node from leading (and this one takes no ramp step): it goes.
    Log(FleetLogLevel::kWarning,
        absl::StrFormat("node %s won the campaign but cannot use the fleet's steering state; "
                        "it resigns",
                        node_));
    MaybeResign();
    return;
  }
  leading_revision_ = answer->revision;
  Log(FleetLogLevel::kInfo,
      absl::StrFormat("node %s now advances the fleet's ramps (leader key at revision %d)", node_,
                      answer->revision));
  StartLeading(now, answer->views);
}

void FleetMachine::Publish(absl::Time now) {
  if (InFlight(kPublishCall) || lease_ == 0 || leaving_) return;
  Send(kPublishCall);
  if (!actions_->Publish(lease_, revision_, now)) Answered(kPublishCall);
}

void FleetMachine::PublishRegions(absl::Time now) {
  if (InFlight(kRegionsCall) || !Leads(now) || views_link_ != ViewsLink::kFollowing ||
      !connected()) {
    return;
  }
  ChooseStandbys();
  Send(kRegionsCall);
  if (!actions_->PublishRegions(lease_, revision_, now)) Answered(kRegionsCall);
}

void FleetMachine::PublishRegionsAnswered(absl::Time now, int64_t lease,
                                          const absl::StatusOr<int64_t>& revision) {
  Answered(kRegionsCall);
  PutAnswered(now, lease, revision);
}

void FleetMachine::PublishAnswered(absl::Time now, int64_t lease,
                                   const absl::StatusOr<int64_t>& revision) {
  Answered(kPublishCall);
  PutAnswered(now, lease, revision);
}

void FleetMachine::PutAnswered(absl::Time now, int64_t lease,
                               const absl::StatusOr<int64_t>& revision) {
  if (revision.ok()) {
    SawRevision(*revision, now);
  } else if (absl::IsNotFound(revision.status())) {
    // "requested lease not found": it expired while etcd could not be reached.
    HeardFromStore();
    if (lease == lease_) LoseLease(std::string(revision.status().message()));
  } else {
    Disconnected(revision.status(), now);
  }
}

absl::StatusOr<FleetWriteCompare> FleetMachine::StartWrite(absl::Time now, bool as_leader) {
  if (!connected()) {
    ++writes_[kUnavailable];
    return absl::UnavailableError(
        absl::StrFormat("the steering store (etcd) is unreachable (%s); nothing was changed. "
                        "Every node keeps its table; try again once etcd is back",
                        last_error_));
  }
  if (as_leader && !Leads(now)) {
    return absl::FailedPreconditionError("this node is not the fleet's leader");
  }
  FleetWriteCompare compare;
  compare.state_revision = state_missing_ ? 0 : state_revision_;
  // The leader key's create revision: a node that lost its lease cannot write even while it
  // still thinks it leads.
  compare.leader_revision = as_leader ? leading_revision_ : 0;
  return compare;
}

absl::StatusOr<int64_t> FleetMachine::WriteAnswered(absl::Time now, bool as_leader,
                                                    const FleetWriteCompare& sent,
                                                    const absl::StatusOr<FleetWrite>& answer) {
  if (!answer.ok()) {
    ++writes_[kUnavailable];
    Disconnected(answer.status(), now);
    if (absl::IsDeadlineExceeded(answer.status())) {
      // etcd may have taken it after all: the watch brings it if so.
      return absl::UnavailableError(
          absl::StrFormat("the steering store (etcd) did not answer in time (%s); the change "
                          "may still be taken, the fleet's table will show it if so",
                          answer.status().message()));
    }
    return absl::UnavailableError(
        absl::StrFormat("the steering store (etcd) did not take the change (%s); nothing was "
                        "changed",
                        answer.status().message()));
  }
  SawRevision(answer->revision, now);
  if (answer->written) {
    ++writes_[kWritten];
    state_missing_ = false;
    state_revision_ = std::max(state_revision_, answer->revision);
    return answer->revision;
  }
  ++writes_[kConflict];
  bool lost_leadership = false;
  if (answer->read_back) {
    for (const FleetRecord& record : answer->state) Apply(record, now);
    if (as_leader) {
      lost_leadership =
          answer->leader.empty() || answer->leader.front().create_revision != sent.leader_revision;
      if (lost_leadership) StepDown("its leader key is gone or replaced");
    }
  }
  if (lost_leadership) return absl::FailedPreconditionError("this node is no longer the leader");
  return absl::AbortedError(
      absl::StrFormat("the steering table changed meanwhile (etcd revision %d)", answer->revision));
}

}  // namespace sluice
