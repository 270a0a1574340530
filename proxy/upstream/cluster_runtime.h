// One cluster as one worker runs it: its balancer, outlier detection, circuit breakers and
// retry budget, with the counts they need. Breaker limits and the retry budget's floor are per
// node and divided by the number of workers (at least 1 each). Loop thread only.
#ifndef SLUICE_PROXY_UPSTREAM_CLUSTER_RUNTIME_H_
#define SLUICE_PROXY_UPSTREAM_CLUSTER_RUNTIME_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/observe/metrics.h"
#include "proxy/upstream/load_balancer.h"
#include "proxy/upstream/outlier_detector.h"

namespace sluice {

class ClusterRuntime {
 public:
  ClusterRuntime(const ClusterConfig& config,
                 std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints, int workers);

  const ClusterConfig& config;
  LoadBalancer balancer;
  size_t index = 0;             // in the snapshot's clusters
  ClusterCell* cell = nullptr;  // the worker's metrics for this cluster; null in unit tests

  // Circuit breakers: nullptr when admitted, else why not (for the log line).
  const char* AdmitRequest();
  const char* AdmitConnect();
  // The retry budget: retries in flight may not exceed ratio x requests in flight, with a
  // floor. A denial is counted.
  bool AdmitRetry();

  void RequestStarted() { ++active_requests_; }
  void RequestEnded() { --active_requests_; }
  void RetryStarted() { ++active_retries_; }
  void RetryEnded() { --active_retries_; }
  void ConnectStarted() { ++pending_connects_; }
  void ConnectEnded() { --pending_connects_; }

  // The outcome of one attempt on `endpoint`, for outlier detection.
  void ReportOutcome(UpstreamEndpoint& endpoint, bool failed, int64_t now_ns);

  int64_t active_requests() const { return active_requests_; }
  int64_t active_retries() const { return active_retries_; }
  int64_t pending_connects() const { return pending_connects_; }
  uint64_t budget_denials() const { return budget_denials_; }
  uint64_t breaker_rejections() const { return breaker_rejections_; }
  uint64_t ejections() const { return outliers_.ejections(); }

 private:
  OutlierDetector outliers_;
  uint32_t max_connections_;
  uint32_t max_pending_;
  uint32_t max_requests_;
  double retry_ratio_;
  uint32_t min_retries_;
  int64_t active_requests_ = 0;
  int64_t active_retries_ = 0;
  int64_t pending_connects_ = 0;
  uint64_t budget_denials_ = 0;
  uint64_t breaker_rejections_ = 0;
};

// What one request holds in one cluster's counts (a request in flight, a retry in flight, a
// connect pending), given back exactly once: by Release, by taking it again (perhaps on another
// cluster) or by the destructor. No error path can forget it or give it back twice.
class ClusterSlot {
 public:
  enum Kind : uint8_t { kRequest, kRetry, kConnect };
  explicit ClusterSlot(Kind kind) : kind_(kind) {}
  ClusterSlot(const ClusterSlot&) = delete;
  ClusterSlot& operator=(const ClusterSlot&) = delete;
  ~ClusterSlot() { Release(); }

  bool held() const { return cluster_ != nullptr; }
  void Take(ClusterRuntime* cluster) {
    Release();
    cluster_ = cluster;
    Count(true);
  }
  void Release() {
    if (!cluster_) return;
    Count(false);
    cluster_ = nullptr;
  }

 private:
  void Count(bool started) {
    switch (kind_) {
      case kRequest:
        started ? cluster_->RequestStarted() : cluster_->RequestEnded();
        return;
      case kRetry:
        started ? cluster_->RetryStarted() : cluster_->RetryEnded();
        return;
      case kConnect:
        started ? cluster_->ConnectStarted() : cluster_->ConnectEnded();
        return;
    }
  }

  ClusterRuntime* cluster_ = nullptr;
  Kind kind_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_UPSTREAM_CLUSTER_RUNTIME_H_
