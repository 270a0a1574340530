// This node's traffic counters summed over its workers at one instant, in the shape the
// health windows take (steering/health_window.h): the local region's origins, each tunnel to a
// peer region, and stream starts by serving region. Read from the workers' metric cells by
// what each cell was set up as (a local exchange, a tunnel cluster, a filter whose answers are
// sheds), never by its name.
#ifndef SLUICE_PROXY_OBSERVE_NODE_TRAFFIC_H_
#define SLUICE_PROXY_OBSERVE_NODE_TRAFFIC_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "proxy/observe/metrics.h"
#include "steering/health_window.h"

namespace sluice {

// Cumulative counters of this node at one instant.
struct NodeTraffic {
  TrafficTotals local;                           // the local region's origins
  std::map<std::string, TrafficTotals> tunnels;  // by peer region
  std::map<std::string, uint64_t> starts;        // stream starts by serving region
  uint64_t entered = 0;                          // requests that entered the region here
  std::vector<uint64_t> entered_by_cohort;       // the same by cohort id
  // Learned capacity: the sum over the adaptive concurrency limiters of limit / mean latency
  // of their last window (requests per second they admit at that latency); `limiters` of
  // them had a window.
  double learned_rps = 0;
  int limiters = 0;
};

// Control thread (takes each worker's cell mutex briefly, as a scrape does).
NodeTraffic SampleNodeTraffic(const std::vector<const WorkerMetrics*>& workers);

}  // namespace sluice

#endif  // SLUICE_PROXY_OBSERVE_NODE_TRAFFIC_H_
