// Worker-local metric cells, summed when /metrics is scraped (STYLE.md rule 4: prometheus-cpp
// 1.0.1 takes a mutex in Histogram::Observe, so nothing of it runs per request).
//
// Every counter has one writer, its worker's thread, which adds with a relaxed load and store
// (no read-modify-write, no lock); the control thread reads them relaxed at scrape time. Cells
// are looked up by name once per configuration snapshot (under a mutex that only snapshot
// building and scraping take) and reached by pointer on the request path, so counts survive
// reloads and a route or cluster keeps its series.
//
// What /metrics shows of these cells (names, help, labels) is declared once, in
// proxy/observe/metric_families.cc; what the health gates read of them, in
// proxy/observe/node_traffic.cc.
#ifndef SLUICE_PROXY_OBSERVE_METRICS_H_
#define SLUICE_PROXY_OBSERVE_METRICS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "filters/filter.h"
#include "steering/decision.h"
#include "steering/health_window.h"
#include "steering/hop_marker.h"
#include "steering/steering_table.h"

namespace sluice {

class ConcurrencyLimiter;  // filters/shed/concurrency_limiter.h

// A single-writer counter.
class MetricCounter {
 public:
  void Add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void operator++() { Add(1); }
  // Gauges: the writer may also set the value.
  void Set(uint64_t v) { value_.store(v, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// Latency in fixed buckets (seconds): 1 ms .. 10 s, then +Inf (steering/health_window.h).
class LatencyHistogram {
 public:
  static constexpr int kBounds = kLatencyBounds;
  static constexpr const double* kUpperBounds = kLatencyUpperBounds;

  void Observe(int64_t nanos);
  uint64_t bucket(int i) const { return buckets_[i].value(); }  // 0..kBounds (the last: +Inf)
  uint64_t count() const;
  double sum_seconds() const { return static_cast<double>(sum_us_.value()) / 1e6; }

 private:
  MetricCounter buckets_[kBounds + 1];
  MetricCounter sum_us_;
};

// 1xx .. 5xx, and "none" when the client got no status (reset, went away).
inline constexpr int kStatusClasses = 6;
inline constexpr int kStatusClass5xx = 4;
int StatusClassIndex(int status);
const char* StatusClassName(int index);

// The steering decision of a request, as a label: SteeringReason values, then "off" when
// steering is not configured.
inline constexpr int kDecisionLabels = kSteeringReasons + 1;
inline constexpr int kDecisionOff = kSteeringReasons;
const char* DecisionLabel(int index);

// Requests by route and serving cluster ("region:eu-west-1" for a tunnel).
struct ExchangeCell {
  MetricCounter requests[kStatusClasses][kDecisionLabels];
  uint64_t Total() const;  // every status class and decision
};

struct RouteCell {
  LatencyHistogram latency;  // downstream: request head to the end of the exchange
  MetricCounter bytes_in;
  MetricCounter bytes_out;
};

// One upstream cluster (local clusters and region:<name> tunnel clusters).
struct ClusterCell {
  LatencyHistogram latency;  // upstream: request sent to response head, per attempt
  MetricCounter responses[kStatusClasses];
  MetricCounter failures[kUpstreamFailures];  // by UpstreamFailure (kNone unused)
  MetricCounter retries[kUpstreamFailures];   // by the failure that caused them; kNone: a status
  MetricCounter ejections;
  MetricCounter connections;  // upstream connections opened (HTTP/1.1 and HTTP/2)

  uint64_t Failures() const;   // attempts without a response head
  uint64_t Responses() const;  // response heads, every status class
  uint64_t Errors() const { return responses[kStatusClass5xx].value() + Failures(); }
  // Set when the cell is created: the peer region a tunnel cluster leads to ("" for origins).
  std::string tunnel_region;
};
// Labels for UpstreamFailure values; kNone reads "status" (a retry asked for by a status).
inline constexpr const char* kFailureLabels[] = {"status", "connect", "reset", "timeout",
                                                 "bad_response"};
static_assert(std::size(kFailureLabels) == kUpstreamFailures);

// Requests a filter answered itself (auth 401, shed 503, rate limit 429, ...).
struct RejectCell {
  MetricCounter requests;
  bool counts_as_shed = false;  // set when created, from the filter's registration
};

// Per region (by name): starts served there (counted at the node the request entered), and
// this node's tunnel traffic toward it.
struct RegionCell {
  MetricCounter stream_starts;
};

// A worker's steering counters.
struct SteeringStats {
  MetricCounter served_local;
  MetricCounter tunneled_out[kMaxRegions];  // by region index
  MetricCounter tunneled_in;
  MetricCounter hop_rejected[kHopVerdicts];  // by HopVerdict (kValid unused)
  MetricCounter fallbacks;                   // a tunnel failed: next savior or local
  MetricCounter failovers;                   // Isthmus: the local region failed a request
};

class WorkerMetrics {
 public:
  // Find-or-create; any thread (the worker, while it builds a snapshot). What a cell is set
  // up with at creation follows from its key, so a later lookup may pass the same again.
  ExchangeCell* Exchange(const std::string& route, const std::string& cluster);
  RouteCell* Route(const std::string& route);
  ClusterCell* Cluster(const std::string& cluster, const std::string& tunnel_region = "");
  RejectCell* Reject(const std::string& route, const std::string& filter,
                     bool counts_as_shed = false);
  RegionCell* Region(const std::string& region);

  MetricCounter connections_open;  // gauge
  MetricCounter connections_total;
  MetricCounter accept_pauses;         // accept(2) failed: the listener waited 100 ms
  MetricCounter tls_handshakes[2][2];  // [ALPN h2: 0 or 1][resumed: 0 or 1]
  MetricCounter tls_handshake_failures;
  MetricCounter tls_handshakes_waited;  // for a later loop iteration (the handshake budget)
  MetricCounter http2_connections;      // h2 and h2c
  MetricCounter http2_shed;             // closed for abuse or protocol errors
  // Requests that entered the region here (from a client, not through a tunnel): the request
  // rate of the detector (steering/detector.h), whatever their answer.
  MetricCounter requests_entered;
  // The same by cohort id (the table's cohorts; those past kMaxCohortCounters are not
  // counted): what share of a region's requests a cohort row moves (steering/capacity.h).
  static constexpr int kMaxCohortCounters = 64;
  MetricCounter entered_by_cohort[kMaxCohortCounters];
  SteeringStats steering;

  // The worker's adaptive concurrency limiters (for the learned capacity). Worker thread
  // sets them with each snapshot; the control thread reads them while sampling.
  void SetLimiters(std::vector<std::shared_ptr<const ConcurrencyLimiter>> limiters) {
    std::lock_guard<std::mutex> lock(mutex_);
    limiters_ = std::move(limiters);
  }
  template <typename F>
  void VisitLimiters(F&& f) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& limiter : limiters_) f(*limiter);
  }

  // Scrape: calls `f` with the mutex held. Control thread.
  template <typename F>
  void Visit(F&& f) const {
    std::lock_guard<std::mutex> lock(mutex_);
    f(exchanges_, routes_, clusters_, rejects_, regions_);
  }

  using Pair = std::pair<std::string, std::string>;
  template <typename T>
  using Cells = std::map<std::string, std::unique_ptr<T>>;
  template <typename T>
  using PairCells = std::map<Pair, std::unique_ptr<T>>;

 private:
  mutable std::mutex mutex_;  // guards the maps' structure, never the counters
  PairCells<ExchangeCell> exchanges_;
  Cells<RouteCell> routes_;
  Cells<ClusterCell> clusters_;
  PairCells<RejectCell> rejects_;
  Cells<RegionCell> regions_;
  std::vector<std::shared_ptr<const ConcurrencyLimiter>> limiters_;
};

// The node's view beyond the workers' counters, filled by the control thread at scrape time.
struct NodeGauges {
  std::string local_region;  // "" without steering
  uint64_t table_version = 0;
  std::vector<std::pair<std::string, uint32_t>> evacuated_bp;  // by region
  std::vector<std::pair<std::string, bool>> region_healthy;
  uint64_t active_plans = 0;
  // Each active plan, and how long it has held (at a gate, preparing, at the DNS step) without
  // taking a step: 0 while it runs.
  struct ActivePlan {
    uint64_t id = 0;
    std::string region;
    std::string kind;  // RampPlanKindName
    double held_seconds = 0;
  };
  std::vector<ActivePlan> plans;
  bool ready = false;
  double start_time_seconds = 0;
  // The heap as malloc counts it (proxy/observe/heap_memory.h); has_heap: the counts exist.
  bool has_heap = false;
  uint64_t heap_allocated_bytes = 0;
  uint64_t heap_bytes = 0;
  uint64_t hop_replay_evictions = 0;  // HopReplayCache::live_evictions
  // Upstream HTTP/2 window growth held from limits.upstream_window_memory (WindowBudget).
  uint64_t upstream_window_bytes = 0;
  uint64_t upstream_window_limit = 0;
  // The fleet (proxy/fleet/fleet.h); rendered only when it is configured.
  bool fleet = false;
  bool fleet_connected = false;
  bool fleet_leader = false;
  int64_t fleet_revision = 0;
  double fleet_seconds_since_sync = 0;
  uint64_t fleet_nodes = 0;
  std::vector<std::pair<std::string, uint64_t>> fleet_writes;  // by outcome label
  // The sick-region detector (proxy/control/detection_control.h), per region.
  struct DetectionRegion {
    std::string region;
    bool has_expected = false;
    double expected_sps = 0;  // of the judged signal (the lower ratio's)
    bool has_ratio = false;
    double ratio = 0;   // SPS now / expected
    std::string state;  // RegionVerdictName
  };
  std::vector<DetectionRegion> detection;
  std::vector<std::pair<std::string, uint64_t>> detection_evacuations;  // by reason
  // The dead-edge watch (steering/edge_watch.h): each other region's state ("unknown",
  // "alive", "suspect", "dead").
  std::vector<std::pair<std::string, std::string>> edges;
  // This node's capacity (steering/fleet_view.h NodeCapacity); has_capacity: steering is on.
  bool has_capacity = false;
  double capacity_rps = 0;
  double load_rps = 0;
  uint32_t standby_endpoints = 0;   // waiting
  uint32_t injected_endpoints = 0;  // serving
};

}  // namespace sluice

#endif  // SLUICE_PROXY_OBSERVE_METRICS_H_
