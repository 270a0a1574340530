#include "proxy/upstream/outlier_detector.h"

#include <algorithm>

namespace sluice {

OutlierDetector::OutlierDetector(const OutlierConfig& config, absl::Duration slow_start)
    : threshold_(config.consecutive_failures),
      base_ns_(absl::ToInt64Nanoseconds(config.base_ejection)),
      max_ns_(absl::ToInt64Nanoseconds(config.max_ejection)),
      max_percent_(config.max_ejection_percent),
      slow_start_ns_(absl::ToInt64Nanoseconds(slow_start)) {}

void OutlierDetector::OnSuccess(UpstreamEndpoint& endpoint, int64_t now_ns) {
  endpoint.consecutive_failures = 0;
  if (endpoint.times_ejected > 0 && now_ns > endpoint.last_ejection_end_ns + max_ns_) {
    endpoint.times_ejected = 0;  // well behaved for long enough: a clean slate
  }
}

bool OutlierDetector::OnFailure(UpstreamEndpoint& endpoint,
                                const std::vector<std::shared_ptr<UpstreamEndpoint>>& cluster,
                                int64_t now_ns) {
  if (threshold_ == 0 || endpoint.ejected(now_ns)) return false;
  if (++endpoint.consecutive_failures < threshold_) return false;
  size_t ejected = 0;
  for (const auto& e : cluster) ejected += e->ejected(now_ns) ? 1 : 0;
  if ((ejected + 1) * 100 > cluster.size() * max_percent_) return false;  // too many out already
  endpoint.consecutive_failures = 0;
  ++endpoint.times_ejected;
  int64_t duration = std::min(max_ns_, base_ns_ * static_cast<int64_t>(endpoint.times_ejected));
  endpoint.ejected_until_ns_ = now_ns + duration;
  endpoint.last_ejection_end_ns = endpoint.ejected_until_ns_;
  // Readmitted with a trickle, not the full share that made it fail.
  if (slow_start_ns_ > 0) endpoint.StartSlowStart(endpoint.ejected_until_ns_, slow_start_ns_);
  ++ejections_;
  return true;
}

}  // namespace sluice
