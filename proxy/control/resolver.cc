#include "proxy/control/resolver.h"

#include <netdb.h>

#include <algorithm>

#include "common/log.h"

namespace sluice {

struct Resolver::Name {
  Resolver* resolver;
  std::string cluster;
  std::string endpoint;  // "host:port" as configured
  std::string host;
  uint16_t port;
  uint64_t interval_ms;
  std::vector<SocketAddress> addresses;  // the last good answer
  uv_timer_t timer;
  uv_getaddrinfo_t request;
  bool resolving = false;
  bool dropped = false;
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
      auto* name = new Name{this,
                            cluster.name,
                            endpoint.text,
                            endpoint.host,
                            endpoint.port,
                            static_cast<uint64_t>(absl::ToInt64Milliseconds(cluster.dns_refresh)),
                            {},
                            {},
                            {}};
      uv_timer_init(loop_, &name->timer);
      name->timer.data = name;
      uv_unref(reinterpret_cast<uv_handle_t*>(&name->timer));
      names_[key] = name;
      Resolve(name);
    }
  }
  for (auto it = names_.begin(); it != names_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    Name* name = it->second;
    name->dropped = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&name->timer), [](uv_handle_t* h) {
      auto* n = static_cast<Name*>(h->data);
      if (!n->resolving) delete n;  // otherwise the answer's callback frees it
    });
    it = names_.erase(it);
  }
}

void Resolver::Resolve(Name* name) {
  if (name->resolving || name->dropped) return;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  name->request.data = name;
  std::string port = std::to_string(name->port);
  int rc = uv_getaddrinfo(
      loop_, &name->request,
      [](uv_getaddrinfo_t* req, int status, addrinfo* result) {
        auto* n = static_cast<Name*>(req->data);
        n->resolver->OnResolved(n, status, result);
      },
      name->host.c_str(), port.c_str(), &hints);
  if (rc == 0) {
    name->resolving = true;
    ++in_flight_;
  } else {
    LOG_ERROR("cluster %s: cannot resolve %s: %s", name->cluster, name->host, uv_strerror(rc));
    uv_timer_start(
        &name->timer,
        [](uv_timer_t* t) {
          auto* n = static_cast<Name*>(t->data);
          n->resolver->Resolve(n);
        },
        name->interval_ms, 0);
  }
}

void Resolver::OnResolved(Name* name, int status, addrinfo* result) {
  name->resolving = false;
  --in_flight_;
  if (name->dropped) {
    uv_freeaddrinfo(result);
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&name->timer))) delete name;
    return;
  }
  std::vector<SocketAddress> addresses;
  for (addrinfo* a = result; a; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    SocketAddress address = SocketAddress::FromSockaddr(a->ai_addr);
    if (std::find(addresses.begin(), addresses.end(), address) == addresses.end()) {
      addresses.push_back(address);
    }
  }
  uv_freeaddrinfo(result);
  if (status != 0 || addresses.empty()) {
    LOG_ERROR("cluster %s: resolving %s failed (%s); keeping its %d last known addresses",
              name->cluster, name->host, status != 0 ? uv_strerror(status) : "no address",
              name->addresses.size());
  } else if (addresses != name->addresses) {
    LOG_INFO("cluster %s: %s resolves to %d addresses", name->cluster, name->host,
             addresses.size());
    name->addresses = std::move(addresses);
    report_(name->cluster, name->endpoint, name->addresses);
  }
  uv_timer_start(
      &name->timer,
      [](uv_timer_t* t) {
        auto* n = static_cast<Name*>(t->data);
        n->resolver->Resolve(n);
      },
      name->interval_ms, 0);
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

void Resolver::Stop() {
  for (auto& [key, name] : names_) {
    name->dropped = true;
    if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&name->timer))) continue;
    uv_close(reinterpret_cast<uv_handle_t*>(&name->timer), [](uv_handle_t* h) {
      auto* n = static_cast<Name*>(h->data);
      if (!n->resolving) delete n;
    });
  }
  names_.clear();
}

}  // namespace sluice
