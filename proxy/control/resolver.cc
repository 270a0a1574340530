#include "proxy/control/resolver.h"

#include "common/log.h"
#include "proxy/event/loop_timer.h"
#include "proxy/net/name_lookup.h"

namespace sluice {

struct Resolver::Name {
  Name(Resolver* r, std::string c, std::string e, std::string h, uint16_t p, uint64_t interval)
      : resolver(r),
        cluster(std::move(c)),
        endpoint(std::move(e)),
        host(std::move(h)),
        port(p),
        interval_ms(interval) {}

  Resolver* resolver;
  std::string cluster;
  std::string endpoint;  // "host:port" as configured
  std::string host;
  uint16_t port;
  uint64_t interval_ms;
  std::vector<SocketAddress> addresses;  // the last good answer
  LoopTimer timer;                       // the next lookup
  NameLookup* lookup = nullptr;          // in flight

  ~Name() {
    if (lookup) {
      lookup->Cancel();
      --resolver->in_flight_;
    }
  }
};

Resolver::Resolver(uv_loop_t* loop, Report report) : loop_(loop), report_(std::move(report)) {}

Resolver::~Resolver() { Stop(); }

void Resolver::Configure(const Config& config) {
  std::map<std::string, bool> wanted;
  for (const ClusterConfig& cluster : config.clusters) {
    for (const EndpointConfig& endpoint : cluster.endpoints) {
      if (endpoint.host.empty()) continue;
      std::string key = cluster.name + "|" + endpoint.text;
      wanted[key] = true;
      if (names_.count(key)) continue;
      auto name = std::make_unique<Name>(
          this, cluster.name, endpoint.text, endpoint.host, endpoint.port,
          static_cast<uint64_t>(absl::ToInt64Milliseconds(cluster.dns_refresh)));
      Name* n = name.get();
      names_[key] = std::move(name);
      Resolve(n);
    }
  }
  for (auto it = names_.begin(); it != names_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    it = names_.erase(it);
  }
}

void Resolver::Resolve(Name* name) {
  if (name->lookup) return;
  int rc = 0;
  name->lookup = NameLookup::Start(
      loop_, name->host, name->port,
      [name](absl::StatusOr<std::vector<SocketAddress>> addresses) {
        name->lookup = nullptr;
        name->resolver->OnResolved(name, std::move(addresses));
      },
      &rc);
  if (name->lookup) {
    ++in_flight_;
    return;
  }
  LOG_ERROR("cluster %s: cannot resolve %s: %s", name->cluster, name->host, uv_strerror(rc));
  RetryLater(name);
}

void Resolver::RetryLater(Name* name) {
  name->timer.Start(loop_, name->interval_ms, 0, [this, name] { Resolve(name); });
}

void Resolver::OnResolved(Name* name, absl::StatusOr<std::vector<SocketAddress>> addresses) {
  --in_flight_;
  if (!addresses.ok()) {
    LOG_ERROR("cluster %s: resolving %s failed (%s); keeping its %d last known addresses",
              name->cluster, name->host, std::string(addresses.status().message()),
              name->addresses.size());
  } else if (*addresses != name->addresses) {
    LOG_INFO("cluster %s: %s resolves to %d addresses", name->cluster, name->host,
             addresses->size());
    name->addresses = *std::move(addresses);
    report_(name->cluster, name->endpoint, name->addresses);
  }
  RetryLater(name);
}

void Resolver::ResolveAllNow(absl::Duration timeout) {
  // Start-up only: workers start with every name's addresses, or with none after a timeout.
  uv_timer_t deadline;
  bool expired = false;
  uv_timer_init(loop_, &deadline);
  deadline.data = &expired;
  uv_timer_start(
      &deadline, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; },
      static_cast<uint64_t>(absl::ToInt64Milliseconds(timeout)), 0);
  while (in_flight_ > 0 && !expired) uv_run(loop_, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
  uv_run(loop_, UV_RUN_NOWAIT);  // let the close finish before `deadline` goes out of scope
}

std::map<std::string, std::vector<SocketAddress>> Resolver::Snapshot() const {
  std::map<std::string, std::vector<SocketAddress>> out;
  for (const auto& [key, name] : names_) out[key] = name->addresses;
  return out;
}

void Resolver::Stop() { names_.clear(); }

}  // namespace sluice
