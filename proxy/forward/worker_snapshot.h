// What a worker serves requests with: one configuration snapshot plus the worker's own runtime
// objects built from it (router, clusters with their balancers and endpoints). A reload builds
// a new snapshot; requests in flight keep the one they started with.
#ifndef SLUICE_PROXY_FORWARD_WORKER_SNAPSHOT_H_
#define SLUICE_PROXY_FORWARD_WORKER_SNAPSHOT_H_

#include <memory>
#include <vector>

#include "filters/filter_chain.h"
#include "filters/shed/concurrency_limiter.h"
#include "proxy/config/cohort_cidr_map.h"
#include "proxy/config/config.h"
#include "proxy/forward/router.h"
#include "proxy/http/http1_parser.h"
#include "proxy/observe/access_log.h"
#include "proxy/observe/metrics.h"
#include "proxy/upstream/cluster_runtime.h"
#include "proxy/upstream/load_balancer.h"

namespace sluice {

struct WorkerSnapshot {
  explicit WorkerSnapshot(ConfigPtr c) : config(std::move(c)), router(config->routes) {}
  ConfigPtr config;
  Router router;
  std::vector<std::unique_ptr<ClusterRuntime>> clusters;  // indexed like config->clusters
  // Adaptive concurrency limits, indexed like config->clusters (null where none is set). A
  // reload that keeps a cluster's limit configuration keeps what the limiter learned.
  std::vector<std::shared_ptr<ConcurrencyLimiter>> limiters;
  std::vector<FilterChain> chains;  // indexed like config->routes
  // By route: no filter of its chain decides retries, so the forwarder's default policy does.
  std::vector<bool> default_retries;
  Http1Limits request_limits;
  uint32_t max_connections = 0;  // this worker's share of the node's connection cap; 0: none
  uint32_t max_connections_per_client = 0;  // its share of limits.max_connections_per_client
  SteeringTablePtr steering;                // null when steering is off
  // By index of config->steering.cohort_rules: the newest map of each CIDR file rule (the
  // file watch may have replaced the one read with the configuration); null for other rules.
  std::vector<CohortCidrMapPtr> cohort_maps;
  HopReplayCache* hop_replay = nullptr;   // the node's: nonces of accepted hop markers
  AccessLogBuffer* access_log = nullptr;  // the worker's; disabled when logging is off
  // The node's health document (GET /v1/health), answered to verified peers; the worker's.
  const std::shared_ptr<const std::string>* node_health = nullptr;
  // The worker's: true once it began draining (SIGTERM), for GET /v1/serving.
  const bool* draining = nullptr;

  // The worker's metric cells for this configuration (proxy/observe/metrics.h), by index.
  WorkerMetrics* metrics = nullptr;
  std::vector<ExchangeCell*> exchange_cells;  // [route * clusters + cluster]; last row: no route
  std::vector<RouteCell*> route_cells;        // by route; last: no route
  std::vector<ClusterCell*> cluster_cells;    // by cluster
  std::vector<std::vector<RejectCell*>> reject_cells;  // by route, then filter in its chain
  std::vector<RegionCell*> region_cells;               // by region index of the table
  ExchangeCell* exchange(size_t route, size_t cluster) const {
    return exchange_cells[route * clusters.size() + cluster];
  }
};

using WorkerSnapshotPtr = std::shared_ptr<WorkerSnapshot>;

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_WORKER_SNAPSHOT_H_
