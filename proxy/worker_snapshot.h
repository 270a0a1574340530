// What a worker serves requests with: one configuration snapshot plus the worker's own runtime
// objects built from it (router, clusters with their balancers and endpoints). A reload builds
// a new snapshot; requests in flight keep the one they started with.
#ifndef SLUICE_PROXY_WORKER_SNAPSHOT_H_
#define SLUICE_PROXY_WORKER_SNAPSHOT_H_

#include <memory>
#include <vector>

#include "filters/concurrency_limiter.h"
#include "filters/filter_chain.h"
#include "proxy/cluster_runtime.h"
#include "proxy/config.h"
#include "proxy/http1_parser.h"
#include "proxy/load_balancer.h"
#include "proxy/router.h"

namespace sluice {

// A worker's steering counters (summed by /metrics later). Owned by the worker, so they
// survive reloads; loop thread only.
struct SteeringStats {
  uint64_t served_local = 0;
  uint64_t tunneled_out[kMaxRegions] = {};  // by region index
  uint64_t tunneled_in = 0;
  uint64_t hop_rejected[5] = {};  // by HopVerdict
  uint64_t fallbacks = 0;         // a tunnel failed: next savior or local
  uint64_t failovers = 0;         // Isthmus: the local region failed a request
};

struct WorkerSnapshot {
  explicit WorkerSnapshot(ConfigPtr c) : config(std::move(c)), router(config->routes) {}
  ConfigPtr config;
  Router router;
  std::vector<std::unique_ptr<ClusterRuntime>> clusters;  // indexed like config->clusters
  // Adaptive concurrency limits, indexed like config->clusters (null where none is set). A
  // reload that keeps a cluster's limit configuration keeps what the limiter learned.
  std::vector<std::shared_ptr<ConcurrencyLimiter>> limiters;
  std::vector<FilterChain> chains;  // indexed like config->routes
  Http1Limits request_limits;
  uint32_t max_connections = 0;  // this worker's share of limits.max_connections; 0: none
  SteeringTablePtr steering;     // null when steering is off
  SteeringStats* steering_stats = nullptr;
};

using WorkerSnapshotPtr = std::shared_ptr<WorkerSnapshot>;

}  // namespace sluice

#endif  // SLUICE_PROXY_WORKER_SNAPSHOT_H_
