// Passive outlier detection for one cluster on one worker: an endpoint that fails N times in
// a row (connect failures and timeouts, resets before the response, 5xx responses) is ejected
// from balancing for base x (times ejected), capped; never more than a configured share of the
// cluster at once. Success resets the count; an endpoint that stays clear for the cap forgets
// its past ejections. Each worker learns on its own. Loop thread only.
#ifndef SLUICE_PROXY_UPSTREAM_OUTLIER_DETECTOR_H_
#define SLUICE_PROXY_UPSTREAM_OUTLIER_DETECTOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/time/time.h"
#include "proxy/config/config.h"
#include "proxy/upstream/upstream_endpoint.h"

namespace sluice {

class OutlierDetector {
 public:
  // `slow_start`: an endpoint back from an ejection ramps up over this window (0: at once).
  explicit OutlierDetector(const OutlierConfig& config,
                           absl::Duration slow_start = absl::ZeroDuration());

  void OnSuccess(UpstreamEndpoint& endpoint, int64_t now_ns);
  // True when this failure ejected the endpoint.
  bool OnFailure(UpstreamEndpoint& endpoint,
                 const std::vector<std::shared_ptr<UpstreamEndpoint>>& cluster, int64_t now_ns);
  uint64_t ejections() const { return ejections_; }

 private:
  uint32_t threshold_;
  int64_t base_ns_;
  int64_t max_ns_;
  uint32_t max_percent_;
  int64_t slow_start_ns_;
  uint64_t ejections_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_UPSTREAM_OUTLIER_DETECTOR_H_
