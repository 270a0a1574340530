#include "proxy/upstream/cluster_runtime.h"

#include <algorithm>

namespace sluice {
namespace {

uint32_t PerWorker(uint32_t node_value, int workers) {
  if (node_value == 0) return 0;
  uint32_t w = static_cast<uint32_t>(std::max(workers, 1));
  return std::max<uint32_t>(1, (node_value + w - 1) / w);
}

}  // namespace

ClusterRuntime::ClusterRuntime(const ClusterConfig& c,
                               std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints,
                               int workers)
    : config(c),
      balancer(c.balancer, std::move(endpoints), c.panic_threshold_percent),
      outliers_(c.outlier, c.slow_start),
      max_connections_(PerWorker(c.breakers.max_connections, workers)),
      max_pending_(PerWorker(c.breakers.max_pending, workers)),
      max_requests_(PerWorker(c.breakers.max_requests, workers)),
      retry_ratio_(c.retry_budget.ratio),
      min_retries_(PerWorker(c.retry_budget.min_retries, workers)) {}

const char* ClusterRuntime::AdmitRequest() {
  if (max_requests_ != 0 && active_requests_ >= max_requests_) {
    ++breaker_rejections_;
    return "circuit breaker: too many requests in flight";
  }
  return nullptr;
}

const char* ClusterRuntime::AdmitConnect() {
  if (max_pending_ != 0 && pending_connects_ >= max_pending_) {
    ++breaker_rejections_;
    return "circuit breaker: too many requests waiting for a connection";
  }
  if (max_connections_ != 0) {
    uint32_t open = 0;
    for (const auto& e : balancer.endpoints()) open += e->connections();
    if (open >= max_connections_) {
      ++breaker_rejections_;
      return "circuit breaker: too many upstream connections";
    }
  }
  return nullptr;
}

bool ClusterRuntime::AdmitRetry() {
  double allowed =
      std::max<double>(min_retries_, retry_ratio_ * static_cast<double>(active_requests_));
  if (static_cast<double>(active_retries_) + 1 > allowed) {
    ++budget_denials_;
    return false;
  }
  return true;
}

void ClusterRuntime::ReportOutcome(UpstreamEndpoint& endpoint, bool failed, int64_t now_ns) {
  if (failed) {
    if (outliers_.OnFailure(endpoint, balancer.endpoints(), now_ns) && cell) cell->ejections.Add();
  } else {
    outliers_.OnSuccess(endpoint, now_ns);
  }
}

}  // namespace sluice
