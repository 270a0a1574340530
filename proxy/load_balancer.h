// Choosing an endpoint for a request among a cluster's endpoints, per worker: round robin, or
// least outstanding requests by the power of two random choices (Mitzenmacher), which avoids
// the herd that "always the least loaded" causes when every worker sees the same counts.
// Loop thread only.
#ifndef SLUICE_PROXY_LOAD_BALANCER_H_
#define SLUICE_PROXY_LOAD_BALANCER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "proxy/config.h"
#include "proxy/upstream_endpoint.h"

namespace sluice {

class LoadBalancer {
 public:
  LoadBalancer(BalancerKind kind, std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints);

  // Picks an endpoint; avoids `exclude` when there is another. `random` is a uniform 64-bit
  // draw (injected so tests are deterministic).
  UpstreamEndpoint* Pick(uint64_t random, const UpstreamEndpoint* exclude = nullptr);

  const std::vector<std::shared_ptr<UpstreamEndpoint>>& endpoints() const { return endpoints_; }

 private:
  BalancerKind kind_;
  std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints_;
  size_t next_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_LOAD_BALANCER_H_
