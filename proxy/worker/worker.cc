#include "proxy/worker/worker.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/log.h"

namespace sluice {

Worker::Worker(int index, std::shared_ptr<HopReplayCache> hop_replay, std::function<void()> on_exit)
    : index_(index), hop_replay_(std::move(hop_replay)), on_exit_(std::move(on_exit)) {}

Worker::~Worker() { Join(); }

void Worker::Start(ConfigPtr config, std::vector<ListenerSocket> listeners,
                   std::map<std::string, std::vector<SocketAddress>> resolved) {
  resolved_ = std::move(resolved);
  uv_loop_init(&loop_);
  context_ = std::make_unique<LoopContext>(&loop_);
  access_log_ = std::make_unique<AccessLogBuffer>(context_.get());
  access_log_->Configure(access_sink_, access_sample_);
  uv_async_init(&loop_, &async_, [](uv_async_t* a) { static_cast<Worker*>(a->data)->OnAsync(); });
  async_.data = this;
  // The loop is set up before the thread starts, so Post() works from now on.
  thread_ =
      std::thread([this, config = std::move(config), listeners = std::move(listeners)]() mutable {
        Run(std::move(config), std::move(listeners));
      });
}

void Worker::Join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::Post(std::function<void(Worker*)> task) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;  // the loop is gone; so is anything the task would touch
  inbox_.push_back(std::move(task));
  uv_async_send(&async_);
}

void Worker::OnAsync() {
  std::vector<std::function<void(Worker*)>> tasks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks.swap(inbox_);
  }
  for (auto& task : tasks) task(this);
}

void Worker::Run(ConfigPtr config, std::vector<ListenerSocket> listeners) {
  SetLogThreadName(absl::StrFormat("w%d", index_));
  BuildSnapshot(std::move(config));
  OpenListeners(std::move(listeners));
  uv_run(&loop_, UV_RUN_DEFAULT);

  // Drained: everything but the loop's own handles is closed. Close those and finish.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    finished_ = true;
    inbox_.clear();
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  access_log_->Flush();
  snapshot_.reset();
  endpoints_.clear();
  context_->Close();
  uv_run(&loop_, UV_RUN_DEFAULT);
  access_log_.reset();
  context_.reset();
  if (uv_loop_close(&loop_) != 0) {
    LOG_WARN("worker %d: handles still open at exit", index_);
  }
  if (on_exit_) on_exit_();
}

void Worker::BuildSnapshot(ConfigPtr config) {
  auto snapshot = std::make_shared<WorkerSnapshot>(config);
  snapshot->request_limits.max_head_bytes = config->limits.max_head_bytes;
  snapshot->request_limits.max_headers = config->limits.max_headers;
  snapshot->request_limits.max_target_bytes = config->limits.max_target_bytes;
  snapshot->request_limits.max_body_bytes = config->limits.max_request_body_bytes;
  Http1Limits response_limits = snapshot->request_limits;
  response_limits.max_body_bytes = 0;

  // Endpoints (and their idle pools and outlier state) survive a reload when their cluster
  // and address stay.
  std::map<std::string, std::shared_ptr<UpstreamEndpoint>> endpoints;
  for (const ClusterConfig& cluster : config->clusters) {
    snapshot->clusters.push_back(std::make_unique<ClusterRuntime>(
        cluster, Members(cluster, response_limits, &endpoints), config->workers));
  }
  for (auto& [key, endpoint] : endpoints_) {
    if (endpoints.find(key) == endpoints.end()) endpoint->Retire();
  }
  endpoints_ = std::move(endpoints);
  response_limits_ = response_limits;

  for (const ClusterConfig& cluster : config->clusters) {
    std::shared_ptr<ConcurrencyLimiter> limiter;
    if (cluster.concurrency) {
      if (snapshot_) {
        for (size_t i = 0; i < snapshot_->config->clusters.size(); ++i) {
          const ClusterConfig& old = snapshot_->config->clusters[i];
          if (old.name == cluster.name && old.concurrency == cluster.concurrency) {
            limiter = snapshot_->limiters[i];
          }
        }
      }
      if (!limiter) {
        limiter = std::make_shared<ConcurrencyLimiter>(*cluster.concurrency, config->workers,
                                                       context_->clock());
      }
    }
    snapshot->limiters.push_back(std::move(limiter));
  }
  for (const RouteConfig& route : config->routes) {
    FilterEnvironment env;
    env.workers = config->workers;
    env.clock = &context_->clock();
    env.limiter = snapshot->limiters[route.cluster_index].get();
    env.key_slots = &key_slots_;
    FilterChain chain;
    bool decides_retries = false;
    for (const FilterSpec& spec : route.filters) {
      chain.Add(CreateFilter(spec, env));
      decides_retries = decides_retries || spec.registration->decides_retries;
    }
    snapshot->chains.push_back(std::move(chain));
    snapshot->default_retries.push_back(!decides_retries);
  }
  auto share = [&](uint32_t node_cap) -> uint32_t {
    if (node_cap == 0) return 0;
    return std::max<uint32_t>(1, (node_cap + config->workers - 1) / config->workers);
  };
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  snapshot->max_connections = share(MaxConnectionsFor(config->limits, files.rlim_cur));
  snapshot->max_connections_per_client = share(config->limits.max_connections_per_client);
  context_->SetHandshakeBudget(config->limits.tls_handshake_budget);
  context_->SetYoungConnectionAge(config->limits.tls_young_connection_age);
  if (config->steering.enabled) {
    snapshot->steering = steering_table_ ? steering_table_ : config->steering.table;
  }
  // Cohort CIDR files: the newer of the configuration's map and one the file watch sent since.
  std::map<std::string, CohortCidrMapPtr> cohort_maps;
  for (const CohortRule& rule : config->steering.cohort_rules) {
    CohortCidrMapPtr map;
    if (rule.kind == CohortRule::Kind::kCidrFile) {
      map = rule.cidr;
      auto it = cohort_maps_.find(rule.path);
      if (it != cohort_maps_.end() && it->second &&
          (!map || it->second->version() > map->version())) {
        map = it->second;
      }
      cohort_maps[rule.path] = map;
    }
    snapshot->cohort_maps.push_back(std::move(map));
  }
  cohort_maps_ = std::move(cohort_maps);
  ResolveMetricCells(snapshot.get());
  snapshot->node_health = &node_health_;
  snapshot->draining = &draining_;
  snapshot->access_log = access_log_.get();
  snapshot->hop_replay = hop_replay_.get();
  std::vector<std::shared_ptr<const ConcurrencyLimiter>> limiters;
  for (const auto& limiter : snapshot->limiters) {
    if (limiter) limiters.push_back(limiter);
  }
  metrics_.SetLimiters(std::move(limiters));
  snapshot_ = std::move(snapshot);
}

void Worker::ResolveMetricCells(WorkerSnapshot* snapshot) {
  const Config& config = *snapshot->config;
  snapshot->metrics = &metrics_;
  const size_t clusters = config.clusters.size();
  // The peer region each tunnel cluster leads to ("" for the local region's clusters).
  std::vector<std::string> tunnel_region(clusters);
  if (config.steering.enabled) {
    const std::vector<int>& tunnels = config.steering.tunnel_cluster;
    for (size_t region = 0; region < tunnels.size(); ++region) {
      if (tunnels[region] >= 0) {
        tunnel_region[static_cast<size_t>(tunnels[region])] =
            config.steering.spec.regions[region].name;
      }
    }
  }
  snapshot->exchange_cells.assign((config.routes.size() + 1) * clusters, nullptr);
  for (size_t r = 0; r <= config.routes.size(); ++r) {
    const std::string route = r < config.routes.size() ? config.routes[r].name : "none";
    snapshot->route_cells.push_back(metrics_.Route(route));
    for (size_t c = 0; c < clusters; ++c) {
      const bool routed = r < config.routes.size();
      snapshot->exchange_cells[r * clusters + c] =
          metrics_.Exchange(route, routed ? config.clusters[c].name : "none");
    }
    if (r == config.routes.size()) break;
    std::vector<RejectCell*> rejects;
    for (const FilterSpec& filter : config.routes[r].filters) {
      rejects.push_back(
          metrics_.Reject(route, std::string(filter.name()), filter.registration->counts_as_shed));
    }
    snapshot->reject_cells.push_back(std::move(rejects));
  }
  for (size_t c = 0; c < clusters; ++c) {
    snapshot->cluster_cells.push_back(metrics_.Cluster(config.clusters[c].name, tunnel_region[c]));
    snapshot->clusters[c]->index = c;
    snapshot->clusters[c]->cell = snapshot->cluster_cells.back();
    WarmUp(*snapshot->clusters[c]);
  }
  if (snapshot->steering) {
    for (int i = 0; i < snapshot->steering->region_count(); ++i) {
      snapshot->region_cells.push_back(metrics_.Region(snapshot->steering->region(i).name));
    }
  } else {
    snapshot->region_cells.push_back(metrics_.Region("local"));
  }
}

void Worker::SetAccessLog(std::shared_ptr<AccessLogSink> sink, double sample) {
  access_sink_ = std::move(sink);
  access_sample_ = sample;
  if (access_log_) access_log_->Configure(access_sink_, access_sample_);
}

void Worker::InjectStandby(const std::string& cluster, bool inject) {
  bool changed = inject ? injected_.insert(cluster).second : injected_.erase(cluster) > 0;
  if (!changed || !snapshot_) return;
  BuildSnapshot(snapshot_->config);  // the standbys join their cluster's balancer
}

void Worker::SetFleetStandbys(std::set<std::string> clusters) {
  if (clusters == fleet_injected_) return;
  fleet_injected_ = std::move(clusters);
  if (snapshot_) BuildSnapshot(snapshot_->config);  // standbys join or leave their balancers
}

void Worker::UpdateCohortMap(const std::string& path, CohortCidrMapPtr map) {
  auto it = cohort_maps_.find(path);
  // Not a file this configuration reads (it changed meanwhile), or an older map than held.
  if (!map || it == cohort_maps_.end() || (it->second && it->second->version() >= map->version())) {
    return;
  }
  it->second = std::move(map);
  if (!snapshot_) return;
  const std::vector<CohortRule>& rules = snapshot_->config->steering.cohort_rules;
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].kind == CohortRule::Kind::kCidrFile && rules[i].path == path) {
      snapshot_->cohort_maps[i] = it->second;
    }
  }
}

void Worker::SetSteeringTable(SteeringTablePtr table) {
  steering_table_ = std::move(table);
  if (snapshot_ && snapshot_->config->steering.enabled && steering_table_) {
    snapshot_->steering = steering_table_;
  }
}

namespace {

// TLS settings of a cluster applied to one of its endpoints: the configured server name, or
// the endpoint's host name, or its address.
void SetEndpointTls(const ClusterConfig& cluster, const EndpointConfig& endpoint,
                    const SocketAddress& address, UpstreamEndpoint* member) {
  member->SetHttp2(cluster.http2);
  if (!cluster.tls) {
    member->SetTls(nullptr, {});
    return;
  }
  member->SetTls(cluster.tls->context, UpstreamTlsName(cluster, endpoint, address));
}

}  // namespace

std::vector<std::shared_ptr<UpstreamEndpoint>> Worker::Members(
    const ClusterConfig& cluster, const Http1Limits& response_limits,
    std::map<std::string, std::shared_ptr<UpstreamEndpoint>>* keep) {
  const int64_t now = context_->clock().MonotonicNanos();
  const int64_t slow_start = absl::ToInt64Nanoseconds(cluster.slow_start);
  const bool initial = !snapshot_;  // at start every endpoint is at full weight at once
  std::vector<std::shared_ptr<UpstreamEndpoint>> members;
  for (const EndpointConfig& endpoint : cluster.endpoints) {
    std::vector<SocketAddress> addresses;
    if (endpoint.host.empty()) {
      addresses.push_back(endpoint.address);
    } else if (auto it = resolved_.find(cluster.name + "|" + endpoint.text);
               it != resolved_.end()) {
      addresses = it->second;  // every address of the name
    }
    const bool standby = endpoint.standby && !cluster.inject_standby &&
                         !injected_.count(cluster.name) && !fleet_injected_.count(cluster.name) &&
                         !fleet_injected_.count("*");
    for (const SocketAddress& address : addresses) {
      std::string key = cluster.name + "|" + address.ToString();
      std::shared_ptr<UpstreamEndpoint> member;
      if (auto it = endpoints_.find(key); it != endpoints_.end()) {
        member = it->second;
        member->Update(cluster.pool, response_limits);
        SetEndpointTls(cluster, endpoint, address, member.get());
        member->SetStandby(standby, now, slow_start);  // an injected standby ramps up
      } else {
        std::string name = endpoint.host.empty() ? address.ToString()
                                                 : endpoint.host + "(" + address.ToString() + ")";
        member = std::make_shared<UpstreamEndpoint>(context_.get(), name, address, cluster.pool,
                                                    response_limits);
        SetEndpointTls(cluster, endpoint, address, member.get());
        member->SetStandby(standby, now, 0);
        if (!initial && !standby && slow_start > 0) member->StartSlowStart(now, slow_start);
        if (auto h = health_.find(key); h != health_.end()) member->set_healthy(h->second);
      }
      (*keep)[key] = member;
      members.push_back(std::move(member));
    }
  }
  return members;
}

void Worker::UpdateResolved(const std::string& cluster_name, const std::string& endpoint,
                            std::vector<SocketAddress> addresses) {
  resolved_[cluster_name + "|" + endpoint] = std::move(addresses);
  if (!snapshot_ || draining_) return;
  for (size_t i = 0; i < snapshot_->config->clusters.size(); ++i) {
    const ClusterConfig& cluster = snapshot_->config->clusters[i];
    if (cluster.name != cluster_name) continue;
    std::map<std::string, std::shared_ptr<UpstreamEndpoint>> kept;
    auto members = Members(cluster, response_limits_, &kept);
    const std::string prefix = cluster_name + "|";
    for (auto it = endpoints_.begin(); it != endpoints_.end();) {
      if (it->first.rfind(prefix, 0) == 0 && kept.find(it->first) == kept.end()) {
        it->second->Retire();  // an address the name no longer has
        it = endpoints_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [key, member] : kept) endpoints_[key] = member;
    snapshot_->clusters[i]->balancer.SetEndpoints(std::move(members));
    WarmUp(*snapshot_->clusters[i]);
  }
}

void Worker::WarmUp(ClusterRuntime& cluster) {
  if (draining_) return;
  for (const std::shared_ptr<UpstreamEndpoint>& endpoint : cluster.balancer.endpoints()) {
    endpoint->set_opened_counter(cluster.cell ? &cluster.cell->connections : nullptr);
    endpoint->KeepWarm();  // tunnels: connections open before the first request needs one
  }
}

void Worker::UpdateHealth(const std::string& cluster_name, const SocketAddress& address,
                          bool healthy) {
  health_[cluster_name + "|" + address.ToString()] = healthy;
  auto it = endpoints_.find(cluster_name + "|" + address.ToString());
  if (it == endpoints_.end()) return;
  int64_t slow_start = 0;
  for (const ClusterConfig& cluster : snapshot_->config->clusters) {
    if (cluster.name == cluster_name) slow_start = absl::ToInt64Nanoseconds(cluster.slow_start);
  }
  it->second->SetHealthy(healthy, context_->clock().MonotonicNanos(), slow_start);
}

void Worker::OpenListeners(std::vector<ListenerSocket> sockets) {
  for (const ListenerSocket& socket : sockets) {
    auto* listener = new Listener(this, socket);
    int rc = listener->Start();
    if (rc != 0) {
      LOG_ERROR("listener %s: %s", socket.key, uv_strerror(rc));
      listener->CloseAndDelete();
      continue;
    }
    listeners_.emplace(socket.key, listener);
  }
}

void Worker::ApplyConfig(ConfigPtr config, std::vector<ListenerSocket> added,
                         const std::map<std::string, ListenerOptions>& keep) {
  if (draining_) {
    for (ListenerSocket& socket : added) ::close(socket.fd);
    return;
  }
  BuildSnapshot(std::move(config));
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    auto kept = keep.find(it->first);
    if (kept == keep.end()) {
      it->second->CloseAndDelete();
      it = listeners_.erase(it);
    } else {
      it->second->set_options(kept->second);
      ++it;
    }
  }
  OpenListeners(std::move(added));
}

void Worker::UpdateKeys(const std::string& path, std::shared_ptr<const JsonWebKeySet> keys) {
  key_slots_.Get(path)->Install(std::move(keys));
}

void Worker::BeginDrain() {
  if (draining_) return;
  draining_ = true;
  for (auto& [key, listener] : listeners_) listener->CloseAndDelete();
  listeners_.clear();
  connections_.ForEach([](DownstreamConnection* c) { c->Drain(); });
  for (auto& [key, endpoint] : endpoints_) endpoint->StopWarm();
  MaybeFinish();
}

void Worker::ForceClose() {
  connections_.ForEach([](DownstreamConnection* c) { c->Abort(); });
}

bool Worker::AdmitClient(uint64_t key) {
  uint32_t& open = client_connections_[key];
  if (open >= snapshot_->max_connections_per_client) {
    if (open == 0) client_connections_.erase(key);
    return false;
  }
  ++open;
  return true;
}

void Worker::ReleaseClient(uint64_t key) {
  auto it = client_connections_.find(key);
  if (it == client_connections_.end()) return;
  if (--it->second == 0) client_connections_.erase(it);
}

void Worker::OnConnectionClosed(bool counted) {
  if (counted && connection_count_ > 0) --connection_count_;
  metrics_.connections_open.Set(connection_count_);
  if (draining_) MaybeFinish();
}

void Worker::MaybeFinish() {
  if (!draining_ || !connections_.empty()) return;
  // Idle upstream connections keep the loop alive; close them so uv_run returns.
  for (auto& [key, endpoint] : endpoints_) endpoint->Retire();
  uv_unref(reinterpret_cast<uv_handle_t*>(&async_));
}

}  // namespace sluice
