// Choosing an endpoint for a request among a cluster's endpoints, per worker: round robin, or
// least outstanding requests by the power of two random choices (Mitzenmacher), which avoids
// the herd that "always the least loaded" causes when every worker sees the same counts.
//
// Only available endpoints are chosen: not a standby, not failing active health checks, not
// ejected by outlier detection. When fewer than the panic threshold's share are available,
// every non-standby endpoint is used again (panic mode: better some errors than an overload of
// the few left). Endpoints in slow start are chosen in proportion to their weight.
// Loop thread only.
#ifndef SLUICE_PROXY_UPSTREAM_LOAD_BALANCER_H_
#define SLUICE_PROXY_UPSTREAM_LOAD_BALANCER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/upstream/upstream_endpoint.h"

namespace sluice {

class LoadBalancer {
 public:
  LoadBalancer(BalancerKind kind, std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints,
               uint32_t panic_threshold_percent = 50);

  // Picks an endpoint, avoiding `exclude` when there is another; nullptr when the cluster has
  // none but standbys. `random` is a uniform 64-bit draw, `now_ns` the monotonic time
  // (injected so tests are deterministic).
  UpstreamEndpoint* Pick(uint64_t random, int64_t now_ns,
                         const UpstreamEndpoint* exclude = nullptr);

  // The membership changed (a name resolved to other addresses).
  void SetEndpoints(std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints);
  const std::vector<std::shared_ptr<UpstreamEndpoint>>& endpoints() const { return endpoints_; }
  // True when some endpoint is available now (not standby, healthy, not ejected). Asked per
  // request by steering, so it stops at the first.
  bool AnyAvailable(int64_t now_ns) const;
  // True when the last Pick had to ignore availability.
  bool panicking() const { return panic_; }

 private:
  BalancerKind kind_;
  std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints_;
  std::vector<UpstreamEndpoint*> candidates_;  // reused by every Pick: no allocation
  uint32_t panic_threshold_percent_;
  size_t next_ = 0;
  bool panic_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_UPSTREAM_LOAD_BALANCER_H_
