// Resolution of endpoints given by host name, on the control thread's loop
// (proxy/net/name_lookup.h: libuv's thread pool, never a worker loop). Every name is re-resolved at
// its cluster's dns_refresh interval; every address is used. A failed resolution keeps the
// last good addresses and is logged. Control thread only.
#ifndef SLUICE_PROXY_CONTROL_RESOLVER_H_
#define SLUICE_PROXY_CONTROL_RESOLVER_H_

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/config/config.h"

namespace sluice {

class Resolver {
 public:
  // Called with a name's new addresses whenever they change (key: "cluster|host:port").
  using Report = std::function<void(const std::string& cluster, const std::string& endpoint,
                                    const std::vector<SocketAddress>& addresses)>;

  Resolver(uv_loop_t* loop, Report report);
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;
  ~Resolver();

  // The names `config` needs; names it no longer has are dropped.
  void Configure(const Config& config);
  // Resolves every name once and waits (running the loop) until all answered or `timeout`.
  void ResolveAllNow(absl::Duration timeout);
  // What every name resolved to so far ("cluster|host:port" -> addresses).
  std::map<std::string, std::vector<SocketAddress>> Snapshot() const;
  void Stop();

 private:
  struct Name;
  void Resolve(Name* name);
  void OnResolved(Name* name, absl::StatusOr<std::vector<SocketAddress>> addresses);
  void RetryLater(Name* name);  // after the name's dns_refresh

  uv_loop_t* loop_;
  Report report_;
  std::map<std::string, std::unique_ptr<Name>> names_;  // by "cluster|host:port"
  int in_flight_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_RESOLVER_H_
