#include "proxy/fleet/fleet.h"

#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/strings.h"
#include "steering/state_file.h"

namespace sluice {

const char* Fleet::WriteOutcomeName(WriteOutcome outcome) {
  static const char* const kNames[] = {"written", "conflict", "unavailable"};
  static_assert(std::size(kNames) == kWriteOutcomes);
  return outcome < kWriteOutcomes ? kNames[outcome] : "unknown";
}
namespace {

using nlohmann::json;

// A leader stops acting this long before its lease could expire, for the time a keep-alive
// spends in flight and clocks that tick at slightly different rates.
constexpr absl::Duration kLeaseMargin = absl::Milliseconds(500);

std::string LeaderValue(const std::string& node, const std::string& region,
                        const std::string& admin, int64_t lease) {
  return json{{"node", node},
              {"region", region},
              {"admin", admin},
              {"lease", lease},
              {"since_ms", absl::ToUnixMillis(absl::Now())}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string DefaultFleetNodeName(const Config& config, uint16_t admin_port) {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == 0) std::strcpy(host, "localhost");
  std::string name = absl::StrFormat("%s-%s-%d", config.steering.spec.local_region, host,
                                     admin_port ? admin_port : static_cast<int>(getpid()));
  for (char& c : name) {
    if (!IsAsciiAlnum(c) && c != '-' && c != '_' && c != '.' && c != ':') c = '-';
  }
  return name;
}

Fleet::Fleet(LoopContext* context, FleetConfig config, std::string node, Hooks hooks)
    : context_(context),
      config_(std::move(config)),
      node_(std::move(node)),
      hooks_(std::move(hooks)),
      state_key_(config_.prefix + "state"),
      leader_key_(config_.prefix + "leader"),
      nodes_prefix_(config_.prefix + "nodes/") {
  EtcdClientOptions options;
  for (const std::string& url : config_.etcd_endpoints) {
    absl::StatusOr<HttpOrigin> endpoint = ParseHttpOrigin(url);
    if (endpoint.ok()) options.endpoints.push_back(*endpoint);  // checked when loaded
  }
  options.username = config_.etcd_username;
  options.password = config_.etcd_password;
  options.timeout = config_.etcd_timeout;
  bool https = false;
  for (const HttpOrigin& e : options.endpoints) https = https || e.tls;
  if (https) {
    absl::StatusOr<ClientTlsContext> tls = MakeClientTlsContext(config_.etcd_tls);
    if (tls.ok()) {
      options.tls = *std::move(tls);
    } else {
      tls_error_ = "etcd TLS: " + std::string(tls.status().message());
    }
  }
  etcd_ = std::make_unique<EtcdClient>(context_, std::move(options));
}

Fleet::~Fleet() { Stop(); }

void Fleet::Start() {
  if (!tls_error_.empty()) {
    // The files were readable when the configuration was loaded; not any more.
    last_error_ = tls_error_;
    LOG_ERROR("fleet: %s; this node stays out of the fleet and serves with its own table",
              tls_error_);
    return;
  }
  uint64_t ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(config_.publish_interval));
  timer_.Start(context_->loop(), 0, ms, [this] { OnTick(); });
  LOG_INFO("fleet: node %s, etcd %s, prefix %s, lease %ds", node_, etcd_->endpoint(),
           config_.prefix, absl::ToInt64Seconds(config_.lease_ttl));
}

void Fleet::Leave() {
  if (leaving_) return;
  leaving_ = true;
  StepDown("this node is stopping");
  if (lease_ != 0) {
    // Deletes the leader key and this node's view at once instead of at the lease's expiry.
    etcd_->LeaseRevoke(lease_, [](absl::StatusOr<bool>) {});
    lease_ = 0;
  }
}

void Fleet::Stop() {
  timer_.Close();
  etcd_->CancelAll();
  watch_ = 0;
}

void Fleet::SetEligible(bool eligible) {
  if (eligible_ == eligible) return;
  eligible_ = eligible;
  if (eligible) {
    if (connected_ && !leader_present_) Campaign();
    return;
  }
  int64_t mine = leader_create_revision_;
  StepDown("it cannot use the fleet's steering state");
  if (mine == 0 || !connected_) return;
  // Only our own key goes: compare its create revision.
  EtcdTxn txn;
  EtcdCompare ours;
  ours.key = leader_key_;
  ours.target = EtcdCompare::Target::kCreateRevision;
  ours.revision = mine;
  txn.compare.push_back(ours);
  EtcdOp del;
  del.kind = EtcdOp::Kind::kDelete;
  del.key = leader_key_;
  txn.success.push_back(del);
  etcd_->Txn(txn, [this](absl::StatusOr<EtcdTxnResult> result) {
    if (!result.ok()) Disconnected(result.status());
  });
}

bool Fleet::leader() const {
  return leader_create_revision_ != 0 && lease_ != 0 && absl::Now() < lease_expiry_ - kLeaseMargin;
}

void Fleet::OnTick() {
  if (leaving_) return;
  if (leader_create_revision_ != 0 && !leader()) {
    StepDown("its lease may have expired (no keep-alive answered in time)");
  }
  if (lease_ == 0) {
    Grant();
  } else {
    KeepAlive();
  }
  if (!connected_) {
    Resync();
    return;
  }
  Publish();
  if (!leader_present_) Campaign();
}

void Fleet::Grant() {
  if (granting_) return;
  granting_ = true;
  absl::Time sent = absl::Now();
  etcd_->LeaseGrant(config_.lease_ttl, [this, sent](absl::StatusOr<EtcdLease> lease) {
    granting_ = false;
    if (!lease.ok()) {
      Disconnected(lease.status());
      return;
    }
    lease_ = lease->id;
    lease_expiry_ = sent + absl::Seconds(lease->ttl_seconds);
    LOG_INFO("fleet: lease %x granted for %ds", lease_, lease->ttl_seconds);
    if (connected_) {
      Publish();
      if (!leader_present_) Campaign();
    }
  });
}

void Fleet::KeepAlive() {
  if (keeping_alive_) return;
  keeping_alive_ = true;
  absl::Time sent = absl::Now();
  int64_t id = lease_;
  etcd_->LeaseKeepAlive(id, [this, sent, id](absl::StatusOr<EtcdLease> lease) {
    keeping_alive_ = false;
    if (id != lease_) return;  // lost or revoked meanwhile
    if (!lease.ok()) {
      Disconnected(lease.status());
      return;
    }
    if (lease->ttl_seconds <= 0) {
      LoseLease("etcd says the lease expired");
      return;
    }
    lease_expiry_ = sent + absl::Seconds(lease->ttl_seconds);
    MaybeReclaim();
  });
}

void Fleet::MaybeReclaim() {
  if (leader_create_revision_ != 0 || !leader_present_ || leaving_ || !connected_ || !eligible_ ||
      leader_node_ != node_ || leader_lease_ != lease_ || lease_ == 0 ||
      absl::Now() >= lease_expiry_ - kLeaseMargin) {
    return;
  }
  leader_create_revision_ = leader_key_revision_;
  LOG_INFO("fleet: node %s advances the fleet's ramps again (its leader key outlived the outage)",
           node_);
  if (hooks_.on_leadership) hooks_.on_leadership(true);
}

void Fleet::LoseLease(const std::string& why) {
  LOG_WARN("fleet: lease %x lost: %s", lease_, why);
  lease_ = 0;
  StepDown("its lease was lost");
}

void Fleet::StepDown(const std::string& why) {
  if (leader_create_revision_ == 0) return;
  leader_create_revision_ = 0;
  LOG_WARN("fleet: node %s no longer advances ramps: %s", node_, why);
  if (hooks_.on_leadership) hooks_.on_leadership(false);
}

void Fleet::Disconnected(const absl::Status& status) {
  last_error_ = std::string(status.message());
  if (!connected_) return;
  connected_ = false;
  LOG_WARN("fleet: lost the steering store (%s); serving with table revision %d until it is back",
           last_error_, state_revision_);
  if (watch_ != 0) {
    etcd_->CancelWatch(watch_);
    watch_ = 0;
  }
}

void Fleet::SawRevision(int64_t revision) {
  if (revision > revision_) revision_ = revision;
  last_sync_ = absl::Now();
}

void Fleet::Resync() {
  if (resyncing_) return;
  resyncing_ = true;
  if (watch_ != 0) {
    etcd_->CancelWatch(watch_);
    watch_ = 0;
  }
  // One transaction: create the state from this node's if the fleet has none, and read the
  // whole prefix either way.
  EtcdTxn txn;
  EtcdCompare absent;
  absent.key = state_key_;
  absent.target = EtcdCompare::Target::kCreateRevision;
  absent.revision = 0;
  txn.compare.push_back(absent);
  EtcdOp put;
  put.kind = EtcdOp::Kind::kPut;
  put.key = state_key_;
  put.value = hooks_.initial_state ? hooks_.initial_state() : "";
  txn.success.push_back(put);
  EtcdOp range;
  range.kind = EtcdOp::Kind::kRange;
  range.key = config_.prefix;
  range.range_end = EtcdPrefixEnd(config_.prefix);
  txn.success.push_back(range);
  txn.failure.push_back(range);
  etcd_->Txn(txn, [this](absl::StatusOr<EtcdTxnResult> result) {
    resyncing_ = false;
    if (!result.ok()) {
      Disconnected(result.status());
      return;
    }
    if (result->ranges.empty()) {
      Disconnected(absl::InternalError("etcd answered a resync without the range"));
      return;
    }
    SawRevision(result->revision);
    if (result->succeeded) {
      LOG_INFO(
          "fleet: the store had no steering state; this node's (table version from %s) "
          "is now the fleet's",
          state_key_);
      state_revision_ = std::max(state_revision_, result->revision);
    }
    std::map<std::string, NodeView> before;
    before.swap(views_);
    bool leader_seen = false;
    bool state_seen = false;
    for (const EtcdKeyValue& kv : result->ranges.front().kvs) {
      leader_seen = leader_seen || kv.key == leader_key_;
      state_seen = state_seen || kv.key == state_key_;
      Apply(kv);
    }
    if (!leader_seen) {
      EtcdKeyValue gone;
      gone.key = leader_key_;
      ApplyDeleted(gone);
    }
    state_missing_ = !state_seen && !result->succeeded;
    if (!connected_) {
      LOG_INFO("fleet: in sync with etcd at revision %d (%d nodes, leader %s)", revision_,
               views_.size(), leader_present_ ? leader_node_ : "none");
    }
    connected_ = true;
    last_error_.clear();
    MaybeReclaim();
    StartWatch(result->revision + 1);
    Publish();
    if (!leader_present_) Campaign();
  });
}

void Fleet::StartWatch(int64_t from) {
  watch_ = etcd_->Watch(
      config_.prefix, EtcdPrefixEnd(config_.prefix), from,
      [this](const EtcdWatchMessage& m) { OnWatchMessage(m); },
      [this](const absl::Status& status) {
        watch_ = 0;
        Disconnected(status);
      });
}

void Fleet::OnWatchMessage(const EtcdWatchMessage& m) {
  SawRevision(m.revision);
  if (m.canceled || m.compact_revision > 0) {
    // Compacted past the revision it started from, or ended by etcd: read everything again.
    Disconnected(absl::UnavailableError(
        m.compact_revision > 0
            ? absl::StrFormat("the watch's revision was compacted (at %d)", m.compact_revision)
            : "etcd cancelled the watch: " + m.cancel_reason));
    Resync();
    return;
  }
  for (const EtcdWatchEvent& event : m.events) {
    SawRevision(event.kv.mod_revision);
    if (event.deleted) {
      ApplyDeleted(event.kv);
    } else {
      Apply(event.kv);
    }
  }
}

void Fleet::Apply(const EtcdKeyValue& kv) {
  if (kv.key == state_key_) {
    state_missing_ = false;
    if (kv.mod_revision <= state_revision_) return;  // this node's own write, or older
    absl::StatusOr<ControllerState> state = DecodeControllerState(kv.value);
    if (!state.ok()) {
      LOG_ERROR(
          "fleet: the steering state at etcd revision %d is damaged (%s); keeping the table "
          "this node has",
          kv.mod_revision, std::string(state.status().message()));
      return;
    }
    state_revision_ = kv.mod_revision;
    if (hooks_.on_state) hooks_.on_state(*std::move(state), kv.mod_revision);
    return;
  }
  if (kv.key == leader_key_) {
    json value = json::parse(kv.value, nullptr, false);
    leader_present_ = true;
    leader_node_ = leader_region_ = leader_admin_ = "";
    leader_lease_ = 0;
    leader_key_revision_ = kv.create_revision;
    if (value.is_object()) {
      auto text = [&](const char* key) {
        auto it = value.find(key);
        return it != value.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      leader_node_ = text("node");
      leader_region_ = text("region");
      leader_admin_ = text("admin");
      if (auto lease = value.find("lease"); lease != value.end() && lease->is_number_integer()) {
        leader_lease_ = lease->get<int64_t>();
      }
    }
    if (leader_create_revision_ != 0 && kv.create_revision != leader_create_revision_) {
      StepDown("another node holds the leader key");
    }
    MaybeReclaim();
    return;
  }
  if (kv.key.compare(0, nodes_prefix_.size(), nodes_prefix_) == 0) {
    absl::StatusOr<NodeView> view = DecodeNodeView(kv.value);
    std::string name = kv.key.substr(nodes_prefix_.size());
    if (!view.ok() || view->node != name) {
      LOG_WARN("fleet: ignoring the view under %s: %s", kv.key,
               view.ok() ? "its node name differs from the key" : view.status().message());
      views_.erase(name);
      return;
    }
    views_[name] = *std::move(view);
  }
}

void Fleet::ApplyDeleted(const EtcdKeyValue& kv) {
  if (kv.key == state_key_) {
    LOG_ERROR(
        "fleet: someone deleted %s; serving with the table this node has until a change "
        "writes it again",
        state_key_);
    state_missing_ = true;
    return;
  }
  if (kv.key == leader_key_) {
    bool had = leader_present_;
    leader_present_ = false;
    leader_node_ = leader_region_ = leader_admin_ = "";
    StepDown("the leader key is gone");
    if (had) LOG_INFO("fleet: no leader; campaigning");
    if (connected_) Campaign();
    return;
  }
  if (kv.key.compare(0, nodes_prefix_.size(), nodes_prefix_) == 0) {
    views_.erase(kv.key.substr(nodes_prefix_.size()));
  }
}

void Fleet::Campaign() {
  if (campaigning_ || lease_ == 0 || leaving_ || !connected_ || !eligible_ ||
      absl::Now() >= lease_expiry_ - kLeaseMargin) {
    return;
  }
  campaigning_ = true;
  NodeView self = hooks_.view ? hooks_.view() : NodeView();
  EtcdTxn txn;
  EtcdCompare free;
  free.key = leader_key_;
  free.target = EtcdCompare::Target::kCreateRevision;
  free.revision = 0;
  txn.compare.push_back(free);
  EtcdOp put;
  put.key = leader_key_;
  put.value = LeaderValue(node_, self.region, self.admin, lease_);
  put.lease = lease_;
  txn.success.push_back(put);
  EtcdOp range;
  range.kind = EtcdOp::Kind::kRange;
  range.key = leader_key_;
  txn.failure.push_back(range);
  int64_t lease = lease_;
  etcd_->Txn(txn, [this, lease, self](absl::StatusOr<EtcdTxnResult> result) {
    campaigning_ = false;
    if (!result.ok()) {
      if (absl::IsNotFound(result.status()) && lease == lease_) {
        LoseLease(std::string(result.status().message()));
      } else {
        Disconnected(result.status());
      }
      return;
    }
    SawRevision(result->revision);
    if (!result->succeeded) {
      if (!result->ranges.empty() && !result->ranges.front().kvs.empty()) {
        Apply(result->ranges.front().kvs.front());
      }
      return;
    }
    if (lease != lease_ || leaving_) return;  // the key dies with the old lease
    leader_create_revision_ = result->revision;
    leader_key_revision_ = result->revision;
    leader_lease_ = lease;
    leader_present_ = true;
    leader_node_ = node_;
    leader_region_ = self.region;
    leader_admin_ = self.admin;
    LOG_INFO("fleet: node %s now advances the fleet's ramps (leader key at revision %d)", node_,
             result->revision);
    if (hooks_.on_leadership) hooks_.on_leadership(true);
  });
}

void Fleet::Publish() {
  if (publishing_ || lease_ == 0 || leaving_) return;
  publishing_ = true;
  NodeView view = hooks_.view ? hooks_.view() : NodeView();
  view.node = node_;
  view.revision = revision_;
  view.updated = absl::Now();
  int64_t lease = lease_;
  etcd_->Put(nodes_prefix_ + node_, EncodeNodeView(view), lease,
             [this, lease](absl::StatusOr<int64_t> revision) {
               publishing_ = false;
               if (revision.ok()) {
                 SawRevision(*revision);
               } else if (absl::IsNotFound(revision.status())) {
                 // "requested lease not found": it expired while etcd could not be reached.
                 if (lease == lease_) LoseLease(std::string(revision.status().message()));
               } else {
                 Disconnected(revision.status());
               }
             });
}

void Fleet::Write(const ControllerState& next, bool as_leader, WriteDone done) {
  if (!connected_) {
    ++writes_[kUnavailable];
    done(absl::UnavailableError(absl::StrFormat(
             "the steering store (etcd) is unreachable (%s); nothing was changed. Every node "
             "keeps its table; try again once etcd is back",
             last_error_)),
         0);
    return;
  }
  if (as_leader && !leader()) {
    done(absl::FailedPreconditionError("this node is not the fleet's leader"), 0);
    return;
  }
  EtcdTxn txn;
  EtcdCompare same;
  same.key = state_key_;
  same.target = EtcdCompare::Target::kModRevision;
  same.revision = state_missing_ ? 0 : state_revision_;
  txn.compare.push_back(same);
  if (as_leader) {
    EtcdCompare mine;
    mine.key = leader_key_;
    mine.target = EtcdCompare::Target::kCreateRevision;
    mine.revision = leader_create_revision_;
    txn.compare.push_back(mine);
  }
  EtcdOp put;
  put.key = state_key_;
  put.value = EncodeControllerState(next);
  txn.success.push_back(put);
  EtcdOp state;
  state.kind = EtcdOp::Kind::kRange;
  state.key = state_key_;
  txn.failure.push_back(state);
  EtcdOp leader = state;
  leader.key = leader_key_;
  txn.failure.push_back(leader);
  int64_t leader_revision = leader_create_revision_;
  etcd_->Txn(txn, [this, as_leader, leader_revision,
                   done = std::move(done)](absl::StatusOr<EtcdTxnResult> result) {
    if (!result.ok()) {
      ++writes_[kUnavailable];
      Disconnected(result.status());
      done(absl::UnavailableError(absl::StrFormat(
               "the steering store (etcd) did not take the change (%s); nothing was changed",
               result.status().message())),
           0);
      return;
    }
    SawRevision(result->revision);
    if (result->succeeded) {
      ++writes_[kWritten];
      state_missing_ = false;
      state_revision_ = std::max(state_revision_, result->revision);
      done(absl::OkStatus(), result->revision);
      return;
    }
    ++writes_[kConflict];
    bool lost_leadership = false;
    if (result->ranges.size() == 2) {
      for (const EtcdKeyValue& kv : result->ranges[0].kvs) Apply(kv);
      if (as_leader) {
        const std::vector<EtcdKeyValue>& kvs = result->ranges[1].kvs;
        lost_leadership = kvs.empty() || kvs.front().create_revision != leader_revision;
        if (lost_leadership) StepDown("its leader key is gone or replaced");
      }
    }
    done(lost_leadership
             ? absl::FailedPreconditionError("this node is no longer the leader")
             : absl::AbortedError(absl::StrFormat(
                   "the steering table changed meanwhile (etcd revision %d)", result->revision)),
         0);
  });
}

std::optional<RegionHealth> Fleet::RegionGate(const std::string& region) const {
  std::vector<NodeView> live;
  // A view older than the lease is from a node etcd has not expired yet: leave it out.
  absl::Time oldest = absl::Now() - config_.lease_ttl;
  for (const auto& [name, view] : views_) {
    if (view.updated >= oldest) live.push_back(view);
  }
  return FleetRegionHealth(live, region, kMinTunnelRequests);
}

json Fleet::Status() const {
  json nodes = json::array();
  absl::Time now = absl::Now();
  for (const auto& [name, view] : views_) {
    nodes.push_back(json{{"node", name},
                         {"region", view.region},
                         {"admin", view.admin},
                         {"version", view.version},
                         {"revision", view.revision},
                         {"age_seconds", absl::ToDoubleSeconds(now - view.updated)},
                         {"leader", leader_present_ && name == leader_node_}});
    if (view.has_signal) nodes.back()["signal"] = SignalToJson(view);
  }
  json leader_doc =
      leader_present_
          ? json{{"node", leader_node_}, {"region", leader_region_}, {"admin", leader_admin_}}
          : json(nullptr);
  json j{{"enabled", true},
         {"node", node_},
         {"etcd", etcd_->endpoint()},
         {"prefix", config_.prefix},
         {"connected", connected_},
         {"leader", leader_doc},
         {"this_node_leads", leader()},
         {"revision", revision_},
         {"state_revision", state_revision_},
         {"seconds_since_sync", last_sync_ == absl::InfinitePast()
                                    ? json(nullptr)
                                    : json(absl::ToDoubleSeconds(now - last_sync_))},
         {"nodes", nodes}};
  if (!connected_) j["error"] = last_error_;
  return j;
}

}  // namespace sluice
