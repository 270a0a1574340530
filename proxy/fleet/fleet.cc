#include "proxy/fleet/fleet.h"

#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

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

FleetWatchMessage FromEtcd(const EtcdWatchMessage& m) {
  FleetWatchMessage message;
  message.revision = m.revision;
  message.canceled = m.canceled;
  message.compact_revision = m.compact_revision;
  message.cancel_reason = m.cancel_reason;
  for (const EtcdWatchEvent& e : m.events) {
    message.events.push_back(FleetWatchEvent{e.deleted, Record(e.kv)});
  }
  return message;
}

EtcdOp RangeOp(std::string key, std::string end) {
  EtcdOp range;
  range.kind = EtcdOp::Kind::kRange;
  range.key = std::move(key);
  range.range_end = std::move(end);
  return range;
}

json NodeJson(const std::string& name, const NodeView& view, absl::Time now, bool leader) {
  json node{{"node", name},
            {"region", view.region},
            {"admin", view.admin},
            {"version", view.version},
            {"revision", view.revision},
            {"age_seconds", absl::ToDoubleSeconds(now - view.updated)},
            {"leader", leader}};
  if (view.has_signal) node["signal"] = SignalToJson(view);
  return node;
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
  machine_.set_standby_count(config_.standbys);
  EtcdClientOptions options;
  for (const std::string& url : config_.etcd_endpoints) {
    absl::StatusOr<HttpOrigin> endpoint = ParseHttpOrigin(url);
    if (endpoint.ok()) options.endpoints.push_back(*endpoint);  // checked when loaded
  }
  options.username = config_.etcd_username;
  options.password = config_.etcd_password;
  options.timeout = config_.etcd_timeout;
  options.grpc = config_.etcd_grpc;
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
    machine_.Disconnected(absl::UnavailableError(tls_error_), absl::Now());
    LOG_ERROR("fleet: %s; this node stays out of the fleet and serves with its own table",
              tls_error_);
    return;
  }
  uint64_t ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(config_.publish_interval));
  // The first tick at once (the lease, the resync); the rest at a random phase of the
  // interval, so that a fleet started together does not put its views in the same instant.
  first_tick_.Start(context_->loop(), 0, 0, [this] { machine_.Tick(absl::Now()); });
  std::random_device seed;
  std::uniform_int_distribution<uint64_t> phase(1, std::max<uint64_t>(ms, 1));
  timer_.Start(context_->loop(), phase(seed), ms, [this] { machine_.Tick(absl::Now()); });
  LOG_INFO("fleet: node %s, etcd %s, prefix %s, lease %ds", machine_.node(), etcd_->endpoint(),
           config_.prefix, absl::ToInt64Seconds(config_.lease_ttl));
}

void Fleet::Leave() { machine_.Leave(); }

void Fleet::Stop() {
  timer_.Close();
  first_tick_.Close();
  wake_.Close();
  etcd_->CancelAll();
  watches_[0] = watches_[1] = 0;
  views_watch_ = 0;
  ++views_load_;
  status_waiting_.clear();  // the node is stopping: nobody waits for these any more
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

std::vector<EtcdOp> Fleet::ResyncRanges() const {
  // The prefix but the views: what comes before "nodes/" and what comes after it; and the
  // count of the views (a node that never knew the fleet's size spreads its campaign by it).
  const std::string& views = machine_.nodes_prefix();
  EtcdOp count = RangeOp(views, EtcdPrefixEnd(views));
  count.count_only = true;
  return {RangeOp(config_.prefix, views),
          RangeOp(EtcdPrefixEnd(views), EtcdPrefixEnd(config_.prefix)), count};
}

void Fleet::Resync() {
  CancelWatch();
  // Reads first: a transaction of ranges only is read-only for etcd (no raft entry, and its
  // ranges run beside the apply loop, not inside it), which is what a fleet that resyncs
  // together (a start, etcd back) must cost. Only when the state is missing does a second
  // transaction create it from this node's, if it is still absent then.
  EtcdTxn read;
  read.success = ResyncRanges();
  etcd_->Txn(read, [this](absl::StatusOr<EtcdTxnResult> result) {
    if (result.ok() && result->ranges.size() == 3) {
      bool has_state = false;
      for (size_t i = 0; i < 2; ++i) {
        for (const EtcdKeyValue& kv : result->ranges[i].kvs) {
          has_state = has_state || kv.key == machine_.state_key();
        }
      }
      if (!has_state) {
        CreateState();
        return;
      }
      result->succeeded = false;  // nothing created
    }
    ResyncRead(result);
  });
}

void Fleet::CreateState() {
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
  for (const EtcdOp& range : ResyncRanges()) {
    txn.success.push_back(range);
    txn.failure.push_back(range);
  }
  etcd_->Txn(txn, [this](absl::StatusOr<EtcdTxnResult> result) { ResyncRead(result); });
}

void Fleet::ResyncRead(const absl::StatusOr<EtcdTxnResult>& result) {
  absl::StatusOr<FleetResync> answer;
  if (!result.ok()) {
    answer = result.status();
  } else if (result->ranges.size() != 3) {
    answer = absl::InternalError("etcd answered a resync without its three ranges");
  } else {
    answer.emplace();
    answer->revision = result->revision;
    answer->created = result->succeeded;
    for (size_t i = 0; i < 2; ++i) {
      for (const EtcdKeyValue& kv : result->ranges[i].kvs) answer->records.push_back(Record(kv));
    }
    answer->views = result->ranges[2].count;
  }
  machine_.ResyncAnswered(absl::Now(), answer);
}

void Fleet::Watch(int64_t from) {
  const std::string& views = machine_.nodes_prefix();
  const std::pair<std::string, std::string> ranges[2] = {
      {config_.prefix, views}, {EtcdPrefixEnd(views), EtcdPrefixEnd(config_.prefix)}};
  for (int i = 0; i < 2; ++i) {
    watches_[i] = etcd_->Watch(
        ranges[i].first, ranges[i].second, from,
        [this](const EtcdWatchMessage& m) { machine_.WatchMessage(absl::Now(), FromEtcd(m)); },
        [this, i](const absl::Status& status) {
          watches_[i] = 0;
          machine_.WatchEnded(status);  // it cancels the other one
        });
  }
}

void Fleet::CancelWatch() {
  for (uint64_t& watch : watches_) {
    if (watch != 0) etcd_->CancelWatch(watch);
    watch = 0;
  }
}

void Fleet::LoadViews() {
  uint64_t load = ++views_load_;
  const std::string& views = machine_.nodes_prefix();
  etcd_->Range(views, EtcdPrefixEnd(views), [this, load](absl::StatusOr<EtcdRangeResult> result) {
    if (load != views_load_) return;  // cancelled
    absl::StatusOr<FleetViews> answer;
    if (!result.ok()) {
      answer = result.status();
    } else {
      answer.emplace();
      answer->revision = result->revision;
      for (const EtcdKeyValue& kv : result->kvs) answer->records.push_back(Record(kv));
    }
    machine_.ViewsAnswered(absl::Now(), answer);
  });
}

void Fleet::WatchViews(int64_t from) {
  const std::string& views = machine_.nodes_prefix();
  views_watch_ = etcd_->Watch(
      views, EtcdPrefixEnd(views), from,
      [this](const EtcdWatchMessage& m) { machine_.WatchMessage(absl::Now(), FromEtcd(m)); },
      [this](const absl::Status& status) {
        views_watch_ = 0;
        machine_.ViewsWatchEnded(status);
      });
}

void Fleet::CancelViews() {
  ++views_load_;
  if (views_watch_ != 0) etcd_->CancelWatch(views_watch_);
  views_watch_ = 0;
  sums_at_ = absl::InfinitePast();
}

void Fleet::Campaign(int64_t lease, bool read_views, absl::Time now) {
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
  // The winner reads the views in the same transaction (unless it is a standby, which follows
  // them): it leads once it has them, and a separate read of a large fleet's views would be
  // another round trip after the win.
  if (read_views) {
    EtcdOp views;
    views.kind = EtcdOp::Kind::kRange;
    views.key = machine_.nodes_prefix();
    views.range_end = EtcdPrefixEnd(views.key);
    txn.success.push_back(views);
  }
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
      if (answer->won && !result->ranges.empty()) {
        answer->views.emplace();
        answer->views->revision = result->revision;
        for (const EtcdKeyValue& kv : result->ranges.front().kvs) {
          answer->views->records.push_back(Record(kv));
        }
      } else if (!result->ranges.empty() && !result->ranges.front().kvs.empty()) {
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
    machine_.ResignAnswered(absl::Now(), result.status());
  });
}

absl::Duration Fleet::ViewInterval() const {
  // The size last known (not 0 while the sums are gone with a dead leader: a fleet of 3,000
  // putting a view a second each while a new leader reads them would swamp etcd).
  return FleetViewInterval(config_.publish_interval, machine_.fleet_size());
}

bool Fleet::Due(const Published& last, int64_t lease, const std::string& text,
                absl::Time now) const {
  if (lease != last.lease) return true;
  // Ticks come every publish interval: half of one is the slack of "every interval".
  const absl::Duration interval = ViewInterval() - config_.publish_interval / 2;
  if (text != last.text) return now - last.at >= interval;
  // Unchanged, it still goes out often enough that a reader never takes it for a dead node's
  // (LiveViews keeps views younger than the lease, or two intervals).
  return now - last.at >= std::max(interval, config_.lease_ttl / 2);
}

bool Fleet::Publish(int64_t lease, int64_t revision, absl::Time now) {
  NodeView view = hooks_.view ? hooks_.view() : NodeView();
  view.node = machine_.node();
  view.can_lead = machine_.can_lead();
  // What changes, without the revision (every put in the fleet moves it) and the time.
  view.revision = 0;
  view.updated = absl::UnixEpoch();
  std::string text = EncodeNodeView(view);
  if (!Due(view_, lease, text, now)) return false;
  view_ = Published{lease, std::move(text), now};
  view.revision = revision;
  view.updated = now;
  etcd_->Put(machine_.nodes_prefix() + machine_.node(), EncodeNodeView(view), lease,
             [this, lease](absl::StatusOr<int64_t> answer) {
               if (!answer.ok()) view_ = Published();  // again at the next tick
               machine_.PublishAnswered(absl::Now(), lease, answer);
             });
  return true;
}

bool Fleet::PublishRegions(int64_t lease, int64_t revision, absl::Time now) {
  FleetRegions doc;
  doc.leader = machine_.node();
  const std::vector<NodeView> views = LiveViews(now);
  doc.regions = SumRegions(views);
  doc.candidates = CountCandidates(views);
  doc.standbys = machine_.standbys();
  std::string text = EncodeFleetRegions(doc);
  if (!Due(regions_, lease, text, now)) return false;
  regions_ = Published{lease, std::move(text), now};
  doc.revision = revision;
  doc.updated = now;
  etcd_->Put(machine_.regions_key(), EncodeFleetRegions(doc), lease,
             [this, lease](absl::StatusOr<int64_t> answer) {
               if (!answer.ok()) regions_ = Published();
               machine_.PublishRegionsAnswered(absl::Now(), lease, answer);
             });
  return true;
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

void Fleet::TicketKeys(const FleetRecord& record, bool deleted) {
  if (hooks_.on_ticket_keys) hooks_.on_ticket_keys(record, deleted);
}

void Fleet::WakeAt(absl::Time at) {
  // Rounded up: a wake a little early would find the campaign not due yet.
  int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(at - absl::Now(), absl::Milliseconds(1)));
  wake_.Start(context_->loop(), static_cast<uint64_t>(std::max<int64_t>(ms, 0)), 0,
              [this] { machine_.Wake(absl::Now()); });
}

void Fleet::PutAsLeader(const std::string& key, const std::string& value, int64_t mod_revision,
                        std::function<void(const absl::Status&)> done) {
  if (!machine_.connected()) {
    done(absl::UnavailableError("the fleet's etcd is unreachable"));
    return;
  }
  if (!leader()) {
    done(absl::FailedPreconditionError("this node is not the fleet's leader"));
    return;
  }
  EtcdTxn txn;
  EtcdCompare mine;
  mine.key = machine_.leader_key();
  mine.target = EtcdCompare::Target::kCreateRevision;
  mine.revision = machine_.leading_revision();
  txn.compare.push_back(mine);
  EtcdCompare same;
  same.key = key;
  same.target = EtcdCompare::Target::kModRevision;
  same.revision = mod_revision;
  txn.compare.push_back(same);
  EtcdOp put;
  put.key = key;
  put.value = value;
  txn.success.push_back(put);
  etcd_->Txn(txn, [done = std::move(done)](absl::StatusOr<EtcdTxnResult> result) {
    if (!result.ok()) {
      done(result.status());
    } else if (!result->succeeded) {
      done(absl::AbortedError("the key or the leader changed first"));
    } else {
      done(absl::OkStatus());
    }
  });
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

std::vector<NodeView> Fleet::LiveViews(absl::Time now) const {
  std::vector<NodeView> live;
  // A view older than the lease (or two view intervals, in a large fleet, and a tick for a node
  // that counts the fleet a little larger) is from a node etcd has not expired yet: leave it out.
  absl::Time oldest =
      now - std::max(config_.lease_ttl, 2 * ViewInterval() + config_.publish_interval);
  for (const auto& [name, view] : machine_.views()) {
    if (view.updated >= oldest) live.push_back(view);
  }
  return live;
}

const std::map<std::string, RegionSum>& Fleet::RegionSums() const {
  static const std::map<std::string, RegionSum> kNone;
  if (machine_.has_views()) {
    absl::Time now = absl::Now();
    // Summing 3,000 views takes about a millisecond; gates ask per region, several a tick.
    if (now - sums_at_ >= absl::Milliseconds(100) || now < sums_at_) {
      sums_ = SumRegions(LiveViews(now));
      sums_at_ = now;
    }
    return sums_;
  }
  if (machine_.regions()) return machine_.regions()->regions;
  return kNone;
}

size_t Fleet::node_count() const {
  size_t n = 0;
  for (const auto& [region, sum] : RegionSums()) n += sum.nodes;
  return n;
}

std::optional<RegionHealth> Fleet::RegionGate(const std::string& region) const {
  return RegionHealthFromSums(RegionSums(), region, kMinTunnelRequests);
}

void Fleet::StatusWithNodes(std::function<void(json)> done) {
  absl::Time now = absl::Now();
  if (machine_.has_views() || !machine_.connected() ||
      now - listing_at_ < config_.publish_interval) {
    status_waiting_.push_back(std::move(done));
    AnswerStatus();
    return;
  }
  status_waiting_.push_back(std::move(done));
  if (status_waiting_.size() > 1) return;  // a read is on its way
  const std::string& views = machine_.nodes_prefix();
  etcd_->Range(views, EtcdPrefixEnd(views), [this](absl::StatusOr<EtcdRangeResult> result) {
    listing_at_ = absl::Now();
    if (!result.ok()) {
      listing_error_ = std::string(result.status().message());
    } else {
      listing_error_.clear();
      listing_.clear();
      for (const EtcdKeyValue& kv : result->kvs) {
        absl::StatusOr<NodeView> view = DecodeNodeView(kv.value);
        // A bad one is left out here; the leader warns about it.
        if (view.ok() && machine_.nodes_prefix() + view->node == kv.key) {
          listing_[view->node] = *std::move(view);
        }
      }
    }
    AnswerStatus();
  });
}

void Fleet::AnswerStatus() {
  std::vector<std::function<void(json)>> waiting;
  waiting.swap(status_waiting_);
  if (waiting.empty()) return;
  json doc = Status();
  absl::Time now = absl::Now();
  const std::optional<FleetLeader>& leader = machine_.leader();
  json nodes = json::array();
  const std::map<std::string, NodeView>& views = machine_.has_views() ? machine_.views() : listing_;
  for (const auto& [name, view] : views) {
    nodes.push_back(NodeJson(name, view, now, leader && name == leader->node));
  }
  doc["nodes"] = std::move(nodes);
  if (!machine_.has_views()) {
    doc["nodes_read_seconds_ago"] = listing_at_ == absl::InfinitePast()
                                        ? json(nullptr)
                                        : json(absl::ToDoubleSeconds(now - listing_at_));
    if (!listing_error_.empty()) doc["nodes_error"] = listing_error_;
  }
  for (auto& done : waiting) done(doc);
}

json Fleet::Status() const {
  absl::Time now = absl::Now();
  const std::optional<FleetLeader>& leader = machine_.leader();
  json regions = json::object();
  for (const auto& [name, sum] : RegionSums()) {
    if (sum.nodes == 0) continue;
    json versions = json::object();
    for (const auto& [version, n] : sum.versions) versions[std::to_string(version)] = n;
    regions[name] = json{{"nodes", sum.nodes}, {"versions", versions}};
  }
  json leader_doc =
      leader ? json{{"node", leader->node}, {"region", leader->region}, {"admin", leader->admin}}
             : json(nullptr);
  absl::Time last_sync = machine_.last_sync();
  json j{{"enabled", true},
         {"node", machine_.node()},
         {"etcd", etcd_->endpoint()},
         {"etcd_api", etcd_->grpc() ? "grpc" : "json"},
         {"prefix", config_.prefix},
         {"connected", machine_.connected()},
         {"leader", leader_doc},
         {"this_node_leads", machine_.Leads(now)},
         {"revision", machine_.revision()},
         {"state_revision", machine_.state_revision()},
         {"seconds_since_sync", last_sync == absl::InfinitePast()
                                    ? json(nullptr)
                                    : json(absl::ToDoubleSeconds(now - last_sync))},
         {"node_count", node_count()},
         {"standbys", machine_.standbys()},
         {"this_node_standby", machine_.standby_rank()},
         {"this_node_can_lead", machine_.can_lead()},
         {"candidates", machine_.candidates()},
         {"regions", regions},
         {"sums_from", machine_.has_views() ? "views"
                       : machine_.regions() ? "leader"
                                            : "none"}};
  EtcdClientStats wire = etcd_->stats();
  j["etcd_wire"] = json{{"requests", wire.requests},
                        {"connections", wire.connections},
                        {"rx_bytes", wire.rx_bytes},
                        {"tx_bytes", wire.tx_bytes},
                        {"watch_events", wire.watch_events},
                        {"tls_handshakes", wire.tls_handshakes},
                        {"tls_resumed", wire.tls_resumed},
                        {"keepalives_grpc", wire.keepalives_grpc},
                        {"keepalives_json", wire.keepalives_json}};
  if (machine_.regions()) {
    j["sums_age_seconds"] = absl::ToDoubleSeconds(now - machine_.regions()->updated);
  }
  if (!machine_.connected()) j["error"] = machine_.last_error();
  return j;
}

}  // namespace sluice
