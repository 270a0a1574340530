#include "proxy/upstream/load_balancer.h"

namespace sluice {

LoadBalancer::LoadBalancer(BalancerKind kind,
                           std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints,
                           uint32_t panic_threshold_percent)
    : kind_(kind),
      endpoints_(std::move(endpoints)),
      panic_threshold_percent_(panic_threshold_percent) {
  candidates_.reserve(endpoints_.size());
}

void LoadBalancer::SetEndpoints(std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints) {
  endpoints_ = std::move(endpoints);
  candidates_.reserve(endpoints_.size());
}

bool LoadBalancer::AnyAvailable(int64_t now_ns) const {
  for (const auto& e : endpoints_) {
    if (e->available(now_ns)) return true;
  }
  return false;
}

UpstreamEndpoint* LoadBalancer::Pick(uint64_t random, int64_t now_ns,
                                     const UpstreamEndpoint* exclude) {
  candidates_.clear();
  size_t members = 0;  // endpoints that count as capacity (not standby)
  for (const auto& e : endpoints_) {
    if (e->standby()) continue;
    ++members;
    if (e->available(now_ns)) candidates_.push_back(e.get());
  }
  panic_ = candidates_.empty() || candidates_.size() * 100 < members * panic_threshold_percent_;
  if (panic_) {
    candidates_.clear();
    for (const auto& e : endpoints_) {
      if (!e->standby()) candidates_.push_back(e.get());
    }
  }
  const size_t n = candidates_.size();
  if (n == 0) return nullptr;
  if (n == 1) return candidates_[0];

  if (kind_ == BalancerKind::kRoundRobin) {
    // Walk the ring; an endpoint in slow start is skipped with probability 1 - weight.
    for (size_t tries = 0; tries < 2 * n; ++tries) {
      UpstreamEndpoint* pick = candidates_[next_++ % n];
      if (pick == exclude) continue;
      double weight = pick->Weight(now_ns);
      if (weight < 1.0 && static_cast<double>((random >> 11) & 0xffff) / 65536.0 >= weight) {
        random = random * 6364136223846793005ULL + 1442695040888963407ULL;
        continue;
      }
      return pick;
    }
    return candidates_[next_++ % n];
  }
  // Two distinct random choices; the one with fewer outstanding requests wins. An endpoint in
  // slow start stays in the running only with probability = its weight, so its share of
  // traffic grows with the weight whatever the load.
  size_t a = static_cast<size_t>(random % n);
  size_t b = static_cast<size_t>((random >> 32) % (n - 1));
  if (b >= a) ++b;
  UpstreamEndpoint* first = candidates_[a];
  UpstreamEndpoint* second = candidates_[b];
  if (first == exclude) return second;
  if (second == exclude) return first;
  double draw = static_cast<double>((random >> 16) & 0xffff) / 65536.0;
  bool first_in = draw < first->Weight(now_ns);
  bool second_in = draw < second->Weight(now_ns);
  if (first_in != second_in) return first_in ? first : second;
  return second->outstanding() < first->outstanding() ? second : first;
}

}  // namespace sluice
