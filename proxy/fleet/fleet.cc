#include "proxy/fleet/fleet.h"

#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/strings.h"
#include "steering/state_file.h"

namespace sluice {
namespace {

using nlohmann::json;

FleetRecord Record(const EtcdKeyValue& kv) {
  FleetRecord record;
  record.key = kv.key;
  record.value = kv.value;
  record.create_revision = kv.create_revision;
  record.mod_revision = kv.mod_revision;
  return record;
}

absl::StatusOr<FleetLease> Lease(const absl::StatusOr<EtcdLease>& lease) {
  if (!lease.ok()) return lease.status();
  return FleetLease{lease->id, lease->ttl_seconds};
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
      hooks_(std::move(hooks)),
      machine_(config_.prefix, std::move(node), this) {
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
    machine_.Disconnected(absl::UnavailableError(tls_error_));
    LOG_ERROR("fleet: %s; this node stays out of the fleet and serves with its own table",
              tls_error_);
    return;
  }
  uint64_t ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(config_.publish_interval));
  timer_.Start(context_->loop(), 0, ms, [this] { machine_.Tick(absl::Now()); });
  LOG_INFO("fleet: node %s, etcd %s, prefix %s, lease %ds", machine_.node(), etcd_->endpoint(),
           config_.prefix, absl::ToInt64Seconds(config_.lease_ttl));
}

void Fleet::Leave() { machine_.Leave(); }

void Fleet::Stop() {
  timer_.Close();
  etcd_->CancelAll();
  watch_ = 0;
}

void Fleet::SetEligible(bool eligible) { machine_.SetEligible(eligible, absl::Now()); }

bool Fleet::leader() const { return machine_.Leads(absl::Now()); }

void Fleet::Grant(absl::Time now) {
  etcd_->LeaseGrant(config_.lease_ttl, [this, sent = now](absl::StatusOr<EtcdLease> lease) {
    machine_.GrantAnswered(absl::Now(), sent, Lease(lease));
  });
}

void Fleet::KeepAlive(int64_t lease, absl::Time now) {
  etcd_->LeaseKeepAlive(lease, [this, sent = now, lease](absl::StatusOr<EtcdLease> answer) {
    machine_.KeepAliveAnswered(absl::Now(), sent, lease, Lease(answer));
  });
}

void Fleet::Revoke(int64_t lease) {
  etcd_->LeaseRevoke(lease, [](absl::StatusOr<bool>) {});
}

void Fleet::Resync() {
  CancelWatch();
  // One transaction: create the state from this node's if the fleet has none, and read the
  // whole prefix either way.
  EtcdTxn txn;
  EtcdCompare absent;
  absent.key = machine_.state_key();
  absent.target = EtcdCompare::Target::kCreateRevision;
  absent.revision = 0;
  txn.compare.push_back(absent);
  EtcdOp put;
  put.kind = EtcdOp::Kind::kPut;
  put.key = machine_.state_key();
  put.value = hooks_.initial_state ? hooks_.initial_state() : "";
  txn.success.push_back(put);
  EtcdOp range;
  range.kind = EtcdOp::Kind::kRange;
  range.key = config_.prefix;
  range.range_end = EtcdPrefixEnd(config_.prefix);
  txn.success.push_back(range);
  txn.failure.push_back(range);
  etcd_->Txn(txn, [this](absl::StatusOr<EtcdTxnResult> result) {
    absl::StatusOr<FleetResync> answer;
    if (!result.ok()) {
      answer = result.status();
    } else if (result->ranges.empty()) {
      answer = absl::InternalError("etcd answered a resync without the range");
    } else {
      answer.emplace();
      answer->revision = result->revision;
      answer->created = result->succeeded;
      for (const EtcdKeyValue& kv : result->ranges.front().kvs) {
        answer->records.push_back(Record(kv));
      }
    }
    machine_.ResyncAnswered(absl::Now(), answer);
  });
}

void Fleet::Watch(int64_t from) {
  watch_ = etcd_->Watch(
      config_.prefix, EtcdPrefixEnd(config_.prefix), from,
      [this](const EtcdWatchMessage& m) {
        FleetWatchMessage message;
        message.revision = m.revision;
        message.canceled = m.canceled;
        message.compact_revision = m.compact_revision;
        message.cancel_reason = m.cancel_reason;
        for (const EtcdWatchEvent& e : m.events) {
          message.events.push_back(FleetWatchEvent{e.deleted, Record(e.kv)});
        }
        machine_.WatchMessage(absl::Now(), message);
      },
      [this](const absl::Status& status) {
        watch_ = 0;
        machine_.WatchEnded(status);
      });
}

void Fleet::CancelWatch() {
  if (watch_ == 0) return;
  etcd_->CancelWatch(watch_);
  watch_ = 0;
}

void Fleet::Campaign(int64_t lease, absl::Time now) {
  NodeView self = hooks_.view ? hooks_.view() : NodeView();
  EtcdTxn txn;
  EtcdCompare free;
  free.key = machine_.leader_key();
  free.target = EtcdCompare::Target::kCreateRevision;
  free.revision = 0;
  txn.compare.push_back(free);
  EtcdOp put;
  put.key = machine_.leader_key();
  put.value = FleetMachine::LeaderValue(machine_.node(), self.region, self.admin, lease, now);
  put.lease = lease;
  txn.success.push_back(put);
  EtcdOp range;
  range.kind = EtcdOp::Kind::kRange;
  range.key = machine_.leader_key();
  txn.failure.push_back(range);
  etcd_->Txn(txn, [this, lease, self](absl::StatusOr<EtcdTxnResult> result) {
    absl::StatusOr<FleetCampaign> answer;
    if (!result.ok()) {
      answer = result.status();
    } else {
      answer.emplace();
      answer->revision = result->revision;
      answer->won = result->succeeded;
      if (!result->ranges.empty() && !result->ranges.front().kvs.empty()) {
        answer->holder = Record(result->ranges.front().kvs.front());
      }
    }
    machine_.CampaignAnswered(absl::Now(), lease, self.region, self.admin, answer);
  });
}

void Fleet::Resign(int64_t leader_revision) {
  EtcdTxn txn;
  EtcdCompare ours;
  ours.key = machine_.leader_key();
  ours.target = EtcdCompare::Target::kCreateRevision;
  ours.revision = leader_revision;
  txn.compare.push_back(ours);
  EtcdOp del;
  del.kind = EtcdOp::Kind::kDelete;
  del.key = machine_.leader_key();
  txn.success.push_back(del);
  etcd_->Txn(txn, [this](absl::StatusOr<EtcdTxnResult> result) {
    machine_.ResignAnswered(result.status());
  });
}

void Fleet::Publish(int64_t lease, int64_t revision, absl::Time now) {
  NodeView view = hooks_.view ? hooks_.view() : NodeView();
  view.node = machine_.node();
  view.revision = revision;
  view.updated = now;
  etcd_->Put(machine_.nodes_prefix() + machine_.node(), EncodeNodeView(view), lease,
             [this, lease](absl::StatusOr<int64_t> answer) {
               machine_.PublishAnswered(absl::Now(), lease, answer);
             });
}

void Fleet::AdoptState(ControllerState state, int64_t revision) {
  if (hooks_.on_state) hooks_.on_state(std::move(state), revision);
}

void Fleet::Leadership(bool leader) {
  if (hooks_.on_leadership) hooks_.on_leadership(leader);
}

void Fleet::Log(FleetLogLevel level, const std::string& line) {
  switch (level) {
    case FleetLogLevel::kInfo:
      LOG_INFO("fleet: %s", line);
      break;
    case FleetLogLevel::kWarning:
      LOG_WARN("fleet: %s", line);
      break;
    case FleetLogLevel::kError:
      LOG_ERROR("fleet: %s", line);
      break;
  }
}

void Fleet::Write(const ControllerState& next, bool as_leader, WriteDone done) {
  absl::StatusOr<FleetWriteCompare> compare = machine_.StartWrite(absl::Now(), as_leader);
  if (!compare.ok()) {
    done(compare.status(), 0);
    return;
  }
  EtcdTxn txn;
  EtcdCompare same;
  same.key = machine_.state_key();
  same.target = EtcdCompare::Target::kModRevision;
  same.revision = compare->state_revision;
  txn.compare.push_back(same);
  if (as_leader) {
    EtcdCompare mine;
    mine.key = machine_.leader_key();
    mine.target = EtcdCompare::Target::kCreateRevision;
    mine.revision = compare->leader_revision;
    txn.compare.push_back(mine);
  }
  EtcdOp put;
  put.key = machine_.state_key();
  put.value = EncodeControllerState(next);
  txn.success.push_back(put);
  EtcdOp state;
  state.kind = EtcdOp::Kind::kRange;
  state.key = machine_.state_key();
  txn.failure.push_back(state);
  EtcdOp leader = state;
  leader.key = machine_.leader_key();
  txn.failure.push_back(leader);
  etcd_->Txn(txn, [this, as_leader, sent = *compare,
                   done = std::move(done)](absl::StatusOr<EtcdTxnResult> result) {
    absl::StatusOr<FleetWrite> answer;
    if (!result.ok()) {
      answer = result.status();
    } else {
      answer.emplace();
      answer->revision = result->revision;
      answer->written = result->succeeded;
      if (result->ranges.size() == 2) {
        answer->read_back = true;
        for (const EtcdKeyValue& kv : result->ranges[0].kvs) answer->state.push_back(Record(kv));
        for (const EtcdKeyValue& kv : result->ranges[1].kvs) answer->leader.push_back(Record(kv));
      }
    }
    absl::StatusOr<int64_t> written = machine_.WriteAnswered(absl::Now(), as_leader, sent, answer);
    done(written.status(), written.ok() ? *written : 0);
  });
}

std::optional<RegionHealth> Fleet::RegionGate(const std::string& region) const {
  std::vector<NodeView> live;
  // A view older than the lease is from a node etcd has not expired yet: leave it out.
  absl::Time oldest = absl::Now() - config_.lease_ttl;
  for (const auto& [name, view] : machine_.views()) {
    if (view.updated >= oldest) live.push_back(view);
  }
  return FleetRegionHealth(live, region, kMinTunnelRequests);
}

json Fleet::Status() const {
  json nodes = json::array();
  absl::Time now = absl::Now();
  const std::optional<FleetLeader>& leader = machine_.leader();
  for (const auto& [name, view] : machine_.views()) {
    nodes.push_back(json{{"node", name},
                         {"region", view.region},
                         {"admin", view.admin},
                         {"version", view.version},
                         {"revision", view.revision},
                         {"age_seconds", absl::ToDoubleSeconds(now - view.updated)},
                         {"leader", leader && name == leader->node}});
    if (view.has_signal) nodes.back()["signal"] = SignalToJson(view);
  }
  json leader_doc =
      leader ? json{{"node", leader->node}, {"region", leader->region}, {"admin", leader->admin}}
             : json(nullptr);
  absl::Time last_sync = machine_.last_sync();
  json j{{"enabled", true},
         {"node", machine_.node()},
         {"etcd", etcd_->endpoint()},
         {"prefix", config_.prefix},
         {"connected", machine_.connected()},
         {"leader", leader_doc},
         {"this_node_leads", machine_.Leads(now)},
         {"revision", machine_.revision()},
         {"state_revision", machine_.state_revision()},
         {"seconds_since_sync", last_sync == absl::InfinitePast()
                                    ? json(nullptr)
                                    : json(absl::ToDoubleSeconds(now - last_sync))},
         {"nodes", nodes}};
  if (!machine_.connected()) j["error"] = machine_.last_error();
  return j;
}

}  // namespace sluice
