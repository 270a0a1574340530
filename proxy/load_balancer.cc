#include "proxy/load_balancer.h"

namespace sluice {

LoadBalancer::LoadBalancer(BalancerKind kind,
                           std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints)
    : kind_(kind), endpoints_(std::move(endpoints)) {}

UpstreamEndpoint* LoadBalancer::Pick(uint64_t random, const UpstreamEndpoint* exclude) {
  const size_t n = endpoints_.size();
  if (n == 0) return nullptr;
  if (n == 1) return endpoints_[0].get();
  if (kind_ == BalancerKind::kRoundRobin) {
    UpstreamEndpoint* pick = endpoints_[next_++ % n].get();
    if (pick == exclude) pick = endpoints_[next_++ % n].get();
    return pick;
  }
  // Two distinct random choices; the one with fewer outstanding requests wins.
  size_t a = static_cast<size_t>(random % n);
  size_t b = static_cast<size_t>((random >> 32) % (n - 1));
  if (b >= a) ++b;
  UpstreamEndpoint* first = endpoints_[a].get();
  UpstreamEndpoint* second = endpoints_[b].get();
  if (first == exclude) return second;
  if (second == exclude) return first;
  return second->outstanding() < first->outstanding() ? second : first;
}

}  // namespace sluice
