// Rate limit: a token bucket per client key (the client address, the verified member, or the
// API key's name) with a burst; over the rate, 429 with Retry-After.
//   - rate_limit: {key: client_address, rate: 100/s, burst: 200}
// Rate and burst are per node; each worker enforces rate/workers and burst/workers (the
// kernel spreads connections across workers). A request without the chosen key (an anonymous
// one, when keyed by member) is keyed by its client address.
#ifndef SLUICE_FILTERS_RATE_LIMIT_RATE_LIMIT_FILTER_H_
#define SLUICE_FILTERS_RATE_LIMIT_RATE_LIMIT_FILTER_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "common/clock.h"
#include "filters/filter.h"
#include "filters/registry.h"

namespace sluice {

struct RateLimitConfig : FilterConfig {
  enum class Key { kClientAddress, kMember, kApiKey };
  Key key = Key::kClientAddress;
  double rate_per_second = 100;  // per node
  double burst = 100;            // per node
  int status = 429;
  uint32_t max_keys = 100000;  // per worker; beyond it, idle buckets are forgotten
};

class RateLimitFilter final : public Filter {
 public:
  RateLimitFilter(const RateLimitConfig& config, int workers, const Clock& clock);
  static constexpr std::string_view kName = "rate_limit";
  std::string_view name() const override { return kName; }
  FilterStatus OnRequestHead(FilterRequest& request, FilterSlot& slot) override;

  size_t tracked_keys() const { return buckets_.size(); }
  uint64_t rejected() const { return rejected_; }

 private:
  struct Bucket {
    double tokens;
    int64_t updated_ns;
  };
  void Evict(int64_t now);

  RateLimitConfig::Key key_;
  double rate_per_ns_;
  double burst_;
  int status_;
  uint32_t max_keys_;
  const Clock& clock_;
  absl::flat_hash_map<std::string, Bucket> buckets_;
  uint64_t rejected_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_RATE_LIMIT_RATE_LIMIT_FILTER_H_
