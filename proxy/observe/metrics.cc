#include "proxy/observe/metrics.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "steering/hop_marker.h"

namespace sluice {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

template <typename T, typename Key>
T* FindOrCreate(std::mutex& mutex, std::map<Key, std::unique_ptr<T>>& cells, const Key& key) {
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<T>& cell = cells[key];
  if (!cell) cell = std::make_unique<T>();
  return cell.get();
}

// Series of one family, merged by label set across workers.
class FamilyBuilder {
 public:
  FamilyBuilder(std::string name, std::string help, MetricType type) {
    family_.name = std::move(name);
    family_.help = std::move(help);
    family_.type = type;
  }

  void Add(std::vector<ClientMetric::Label> labels, double value) {
    ClientMetric& m = Series(std::move(labels));
    if (family_.type == MetricType::Counter) {
      m.counter.value += value;
    } else {
      m.gauge.value += value;
    }
  }

  void AddHistogram(std::vector<ClientMetric::Label> labels, const LatencyHistogram& h) {
    ClientMetric& m = Series(std::move(labels));
    if (m.histogram.bucket.empty()) {
      m.histogram.bucket.resize(LatencyHistogram::kBounds + 1);
      for (int i = 0; i < LatencyHistogram::kBounds; ++i) {
        m.histogram.bucket[static_cast<size_t>(i)].upper_bound = LatencyHistogram::kUpperBounds[i];
      }
      m.histogram.bucket.back().upper_bound = std::numeric_limits<double>::infinity();
    }
    uint64_t cumulative = 0;
    for (int i = 0; i <= LatencyHistogram::kBounds; ++i) {
      cumulative += h.bucket(i);
      m.histogram.bucket[static_cast<size_t>(i)].cumulative_count += cumulative;
    }
    m.histogram.sample_count += cumulative;
    m.histogram.sample_sum += h.sum_seconds();
  }

  MetricFamily Take() {
    for (auto& [key, metric] : series_) family_.metric.push_back(std::move(metric));
    return std::move(family_);
  }

 private:
  ClientMetric& Series(std::vector<ClientMetric::Label> labels) {
    std::string key;
    for (const auto& l : labels) key += l.name + '\x1f' + l.value + '\x1e';
    ClientMetric& m = series_[key];
    if (m.label.empty()) m.label = std::move(labels);
    return m;
  }

  MetricFamily family_;
  std::map<std::string, ClientMetric> series_;  // sorted: a stable output order
};

}  // namespace

void LatencyHistogram::Observe(int64_t nanos) {
  double seconds = static_cast<double>(nanos) / 1e9;
  int i = 0;
  while (i < kBounds && seconds > kUpperBounds[i]) ++i;
  buckets_[i].Add();
  sum_us_.Add(nanos > 0 ? static_cast<uint64_t>(nanos / 1000) : 0);
}

uint64_t LatencyHistogram::count() const {
  uint64_t n = 0;
  for (int i = 0; i <= kBounds; ++i) n += buckets_[i].value();
  return n;
}

int StatusClassIndex(int status) {
  if (status >= 100 && status < 600) return status / 100 - 1;
  return 5;
}

const char* StatusClassName(int index) {
  static const char* const kNames[kStatusClasses] = {"1xx", "2xx", "3xx", "4xx", "5xx", "none"};
  return kNames[index];
}

const char* DecisionLabel(int index) {
  if (index == kDecisionOff) return "off";
  return SteeringReasonName(static_cast<SteeringReason>(index));
}

ExchangeCell* WorkerMetrics::Exchange(const std::string& route, const std::string& cluster) {
  return FindOrCreate(mutex_, exchanges_, Pair(route, cluster));
}
RouteCell* WorkerMetrics::Route(const std::string& route) {
  return FindOrCreate(mutex_, routes_, route);
}
ClusterCell* WorkerMetrics::Cluster(const std::string& cluster) {
  return FindOrCreate(mutex_, clusters_, cluster);
}
RejectCell* WorkerMetrics::Reject(const std::string& route, const std::string& filter) {
  return FindOrCreate(mutex_, rejects_, Pair(route, filter));
}
RegionCell* WorkerMetrics::Region(const std::string& region) {
  return FindOrCreate(mutex_, regions_, region);
}

std::string RenderMetrics(const std::vector<const WorkerMetrics*>& workers, const NodeGauges& node,
                          const std::vector<std::string>& region_names) {
  FamilyBuilder requests("sluice_requests_total",
                         "Downstream requests by route, serving cluster, status class and "
                         "steering decision.",
                         MetricType::Counter);
  FamilyBuilder latency("sluice_request_duration_seconds",
                        "Downstream request duration, head received to exchange end.",
                        MetricType::Histogram);
  FamilyBuilder bytes_in("sluice_request_body_bytes_total", "Request body bytes received.",
                         MetricType::Counter);
  FamilyBuilder bytes_out("sluice_response_body_bytes_total", "Response body bytes sent.",
                          MetricType::Counter);
  FamilyBuilder upstream_latency("sluice_upstream_duration_seconds",
                                 "Upstream attempt duration, request sent to response head.",
                                 MetricType::Histogram);
  FamilyBuilder upstream_responses("sluice_upstream_responses_total",
                                   "Upstream response heads by cluster and status class.",
                                   MetricType::Counter);
  FamilyBuilder upstream_failures("sluice_upstream_failures_total",
                                  "Upstream attempts that got no response head, by reason.",
                                  MetricType::Counter);
  FamilyBuilder retries("sluice_retries_total", "Retried attempts by cluster and reason.",
                        MetricType::Counter);
  FamilyBuilder ejections("sluice_ejections_total",
                          "Endpoints ejected by passive outlier detection.", MetricType::Counter);
  FamilyBuilder upstream_connections(
      "sluice_upstream_connections_total",
      "Upstream connections opened, by cluster: with keep-alive working, far fewer than requests.",
      MetricType::Counter);
  FamilyBuilder rejected("sluice_rejected_requests_total",
                         "Requests a filter answered itself (auth, shed, rate_limit, ...).",
                         MetricType::Counter);
  FamilyBuilder starts("sluice_stream_starts_total",
                       "Requests matching the stream start criterion, by the region that "
                       "served them, counted where they entered.",
                       MetricType::Counter);
  FamilyBuilder open("sluice_downstream_connections", "Open downstream connections.",
                     MetricType::Gauge);
  FamilyBuilder accepted("sluice_downstream_connections_total", "Downstream connections accepted.",
                         MetricType::Counter);
  FamilyBuilder handshakes("sluice_tls_handshakes_total",
                           "Downstream TLS handshakes, by negotiated protocol and resumption.",
                           MetricType::Counter);
  FamilyBuilder handshake_failures("sluice_tls_handshake_failures_total",
                                   "Downstream TLS handshakes that failed.", MetricType::Counter);
  FamilyBuilder h2_connections("sluice_http2_connections_total",
                               "Downstream HTTP/2 connections (h2 and h2c).", MetricType::Counter);
  FamilyBuilder h2_shed("sluice_http2_connections_shed_total",
                        "Downstream HTTP/2 connections closed for abuse (rapid reset, floods) "
                        "or protocol errors.",
                        MetricType::Counter);
  FamilyBuilder steered("sluice_steering_requests_total",
                        "Steering outcomes: served locally, tunneled out by region, tunneled "
                        "in.",
                        MetricType::Counter);
  FamilyBuilder hop_rejected("sluice_steering_hop_rejected_total",
                             "Tunneled requests whose hop marker failed, by reason.",
                             MetricType::Counter);
  FamilyBuilder fallbacks("sluice_steering_fallbacks_total",
                          "Tunnels that failed and went to the next savior or local.",
                          MetricType::Counter);
  FamilyBuilder failovers("sluice_steering_failovers_total",
                          "Requests the local region failed, sent once to a savior.",
                          MetricType::Counter);

  for (const WorkerMetrics* w : workers) {
    w->Visit([&](const auto& exchange_cells, const auto& route_cells, const auto& cluster_cells,
                 const auto& reject_cells, const auto& region_cells) {
      for (const auto& [key, cell] : exchange_cells) {
        for (int c = 0; c < kStatusClasses; ++c) {
          for (int d = 0; d < kDecisionLabels; ++d) {
            uint64_t n = cell->requests[c][d].value();
            if (n == 0) continue;
            requests.Add({{"route", key.first},
                          {"cluster", key.second},
                          {"code", StatusClassName(c)},
                          {"decision", DecisionLabel(d)}},
                         static_cast<double>(n));
          }
        }
      }
      for (const auto& [route, cell] : route_cells) {
        latency.AddHistogram({{"route", route}}, cell->latency);
        bytes_in.Add({{"route", route}}, static_cast<double>(cell->bytes_in.value()));
        bytes_out.Add({{"route", route}}, static_cast<double>(cell->bytes_out.value()));
      }
      for (const auto& [cluster, cell] : cluster_cells) {
        upstream_latency.AddHistogram({{"cluster", cluster}}, cell->latency);
        for (int c = 0; c < kStatusClasses; ++c) {
          if (uint64_t n = cell->responses[c].value()) {
            upstream_responses.Add({{"cluster", cluster}, {"code", StatusClassName(c)}},
                                   static_cast<double>(n));
          }
        }
        for (int f = 1; f < 5; ++f) {
          upstream_failures.Add({{"cluster", cluster}, {"reason", kFailureLabels[f]}},
                                static_cast<double>(cell->failures[f].value()));
        }
        for (int f = 0; f < 5; ++f) {
          if (uint64_t n = cell->retries[f].value()) {
            retries.Add({{"cluster", cluster}, {"reason", kFailureLabels[f]}},
                        static_cast<double>(n));
          }
        }
        ejections.Add({{"cluster", cluster}}, static_cast<double>(cell->ejections.value()));
        upstream_connections.Add({{"cluster", cluster}},
                                 static_cast<double>(cell->connections.value()));
      }
      for (const auto& [key, cell] : reject_cells) {
        rejected.Add({{"route", key.first}, {"filter", key.second}},
                     static_cast<double>(cell->requests.value()));
      }
      for (const auto& [region, cell] : region_cells) {
        starts.Add({{"region", region}}, static_cast<double>(cell->stream_starts.value()));
      }
    });
    open.Add({}, static_cast<double>(w->connections_open.value()));
    accepted.Add({}, static_cast<double>(w->connections_total.value()));
    for (int h2 = 0; h2 < 2; ++h2) {
      for (int resumed = 0; resumed < 2; ++resumed) {
        handshakes.Add(
            {{"protocol", h2 ? "h2" : "http/1.1"}, {"resumed", resumed ? "true" : "false"}},
            static_cast<double>(w->tls_handshakes[h2][resumed].value()));
      }
    }
    handshake_failures.Add({}, static_cast<double>(w->tls_handshake_failures.value()));
    h2_connections.Add({}, static_cast<double>(w->http2_connections.value()));
    h2_shed.Add({}, static_cast<double>(w->http2_shed.value()));
    const SteeringStats& s = w->steering;
    steered.Add({{"outcome", "local"}, {"region", ""}},
                static_cast<double>(s.served_local.value()));
    steered.Add({{"outcome", "tunneled_in"}, {"region", ""}},
                static_cast<double>(s.tunneled_in.value()));
    for (size_t r = 0; r < region_names.size() && r < static_cast<size_t>(kMaxRegions); ++r) {
      if (uint64_t n = s.tunneled_out[r].value()) {
        steered.Add({{"outcome", "tunneled_out"}, {"region", region_names[r]}},
                    static_cast<double>(n));
      }
    }
    for (int v = 1; v < 5; ++v) {
      hop_rejected.Add({{"reason", HopVerdictName(static_cast<HopVerdict>(v))}},
                       static_cast<double>(s.hop_rejected[v].value()));
    }
    fallbacks.Add({}, static_cast<double>(s.fallbacks.value()));
    failovers.Add({}, static_cast<double>(s.failovers.value()));
  }

  FamilyBuilder version("sluice_steering_table_version", "Version of the steering table in force.",
                        MetricType::Gauge);
  version.Add({}, static_cast<double>(node.table_version));
  FamilyBuilder fraction("sluice_steering_evacuated_ratio",
                         "Share of each region's members being evacuated (0..1).",
                         MetricType::Gauge);
  for (const auto& [region, bp] : node.evacuated_bp) {
    fraction.Add({{"region", region}}, static_cast<double>(bp) / kBasisPoints);
  }
  FamilyBuilder healthy("sluice_steering_region_healthy",
                        "1 when the table marks the region healthy.", MetricType::Gauge);
  for (const auto& [region, ok] : node.region_healthy) healthy.Add({{"region", region}}, ok);
  FamilyBuilder plans("sluice_steering_active_plans", "Ramps in progress.", MetricType::Gauge);
  plans.Add({}, static_cast<double>(node.active_plans));
  FamilyBuilder ready("sluice_ready", "1 when the node is ready for traffic.", MetricType::Gauge);
  ready.Add({}, node.ready ? 1 : 0);
  FamilyBuilder start("sluice_start_time_seconds", "Start time of the process (Unix seconds).",
                      MetricType::Gauge);
  start.Add({}, node.start_time_seconds);

  FamilyBuilder fleet_connected("sluice_fleet_connected",
                                "1 while the steering store (etcd) answers.", MetricType::Gauge);
  FamilyBuilder fleet_leader("sluice_fleet_leader",
                             "1 while this node holds the fleet's controller lease.",
                             MetricType::Gauge);
  FamilyBuilder fleet_revision("sluice_fleet_revision", "The store revision this node has seen.",
                               MetricType::Gauge);
  FamilyBuilder fleet_since_sync("sluice_fleet_seconds_since_sync",
                                 "Seconds since the store last answered this node.",
                                 MetricType::Gauge);
  FamilyBuilder fleet_nodes("sluice_fleet_nodes", "Nodes whose view is in the store.",
                            MetricType::Gauge);
  FamilyBuilder fleet_writes("sluice_fleet_writes_total",
                             "Steering writes to the store by outcome.", MetricType::Counter);
  if (node.fleet) {
    fleet_connected.Add({}, node.fleet_connected);
    fleet_leader.Add({}, node.fleet_leader);
    fleet_revision.Add({}, static_cast<double>(node.fleet_revision));
    fleet_since_sync.Add({}, node.fleet_seconds_since_sync);
    fleet_nodes.Add({}, static_cast<double>(node.fleet_nodes));
    const char* outcomes[] = {"written", "conflict", "unavailable"};
    for (int i = 0; i < 3; ++i) {
      fleet_writes.Add({{"outcome", outcomes[i]}}, static_cast<double>(node.fleet_writes[i]));
    }
  }

  std::vector<MetricFamily> families;
  for (FamilyBuilder* b : {&requests,
                           &latency,
                           &bytes_in,
                           &bytes_out,
                           &upstream_latency,
                           &upstream_responses,
                           &upstream_failures,
                           &retries,
                           &ejections,
                           &upstream_connections,
                           &rejected,
                           &starts,
                           &open,
                           &accepted,
                           &handshakes,
                           &handshake_failures,
                           &h2_connections,
                           &h2_shed,
                           &steered,
                           &hop_rejected,
                           &fallbacks,
                           &failovers,
                           &version,
                           &fraction,
                           &healthy,
                           &plans,
                           &ready,
                           &start}) {
    families.push_back(b->Take());
  }
  if (node.fleet) {
    for (FamilyBuilder* b : {&fleet_connected, &fleet_leader, &fleet_revision, &fleet_since_sync,
                             &fleet_nodes, &fleet_writes}) {
      families.push_back(b->Take());
    }
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace sluice
