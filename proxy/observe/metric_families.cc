#include "proxy/observe/metric_families.h"

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <cstdlib>
#include <limits>
#include <map>
#include <sstream>
#include <string>

#include "steering/hop_marker.h"

namespace sluice {
namespace {

// Each worker's cells of one kind, with their keys.
template <typename F>
void ForEachExchange(const MetricSources& s, F f) {
  for (const WorkerMetrics* w : s.workers) {
    w->Visit([&](const auto& cells, const auto&, const auto&, const auto&, const auto&) {
      for (const auto& [key, cell] : cells) f(key.first, key.second, *cell);
    });
  }
}
template <typename F>
void ForEachRoute(const MetricSources& s, F f) {
  for (const WorkerMetrics* w : s.workers) {
    w->Visit([&](const auto&, const auto& cells, const auto&, const auto&, const auto&) {
      for (const auto& [route, cell] : cells) f(route, *cell);
    });
  }
}
template <typename F>
void ForEachCluster(const MetricSources& s, F f) {
  for (const WorkerMetrics* w : s.workers) {
    w->Visit([&](const auto&, const auto&, const auto& cells, const auto&, const auto&) {
      for (const auto& [cluster, cell] : cells) f(cluster, *cell);
    });
  }
}
template <typename F>
void ForEachReject(const MetricSources& s, F f) {
  for (const WorkerMetrics* w : s.workers) {
    w->Visit([&](const auto&, const auto&, const auto&, const auto& cells, const auto&) {
      for (const auto& [key, cell] : cells) f(key.first, key.second, *cell);
    });
  }
}
template <typename F>
void ForEachRegion(const MetricSources& s, F f) {
  for (const WorkerMetrics* w : s.workers) {
    w->Visit([&](const auto&, const auto&, const auto&, const auto&, const auto& cells) {
      for (const auto& [region, cell] : cells) f(region, *cell);
    });
  }
}

double D(uint64_t n) { return static_cast<double>(n); }

// A family with one series per worker field, summed: `field` picks the counter.
#define SLUICE_WORKER_SUM(field)                                                \
  [](const MetricSources& s, MetricSink& sink) {                                \
    for (const WorkerMetrics* w : s.workers) sink.Add({}, D(w->field.value())); \
  }

std::vector<MetricFamily> BuildFamilies() {
  using T = MetricType;
  return {
      {"sluice_requests_total",
       "Downstream requests by route, serving cluster, status class and steering decision.",
       T::kCounter,
       {"route", "cluster", "code", "decision"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachExchange(s, [&](const std::string& route, const std::string& cluster,
                                const ExchangeCell& cell) {
           for (int c = 0; c < kStatusClasses; ++c) {
             for (int d = 0; d < kDecisionLabels; ++d) {
               if (uint64_t n = cell.requests[c][d].value()) {
                 sink.Add({route, cluster, StatusClassName(c), DecisionLabel(d)}, D(n));
               }
             }
           }
         });
       }},
      {"sluice_request_duration_seconds",
       "Downstream request duration, head received to exchange end.",
       T::kHistogram,
       {"route"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachRoute(s, [&](const std::string& route, const RouteCell& cell) {
           sink.AddHistogram({route}, cell.latency);
         });
       }},
      {"sluice_request_body_bytes_total",
       "Request body bytes received.",
       T::kCounter,
       {"route"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachRoute(s, [&](const std::string& route, const RouteCell& cell) {
           sink.Add({route}, D(cell.bytes_in.value()));
         });
       }},
      {"sluice_response_body_bytes_total",
       "Response body bytes sent.",
       T::kCounter,
       {"route"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachRoute(s, [&](const std::string& route, const RouteCell& cell) {
           sink.Add({route}, D(cell.bytes_out.value()));
         });
       }},
      {"sluice_upstream_duration_seconds",
       "Upstream attempt duration, request sent to response head.",
       T::kHistogram,
       {"cluster"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachCluster(s, [&](const std::string& cluster, const ClusterCell& cell) {
           sink.AddHistogram({cluster}, cell.latency);
         });
       }},
      {"sluice_upstream_responses_total",
       "Upstream response heads by cluster and status class.",
       T::kCounter,
       {"cluster", "code"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachCluster(s, [&](const std::string& cluster, const ClusterCell& cell) {
           for (int c = 0; c < kStatusClasses; ++c) {
             if (uint64_t n = cell.responses[c].value()) {
               sink.Add({cluster, StatusClassName(c)}, D(n));
             }
           }
         });
       }},
      {"sluice_upstream_failures_total",
       "Upstream attempts that got no response head, by reason.",
       T::kCounter,
       {"cluster", "reason"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachCluster(s, [&](const std::string& cluster, const ClusterCell& cell) {
           for (int f = 1; f < kUpstreamFailures; ++f) {  // kNone is no failure
             sink.Add({cluster, kFailureLabels[f]}, D(cell.failures[f].value()));
           }
         });
       }},
      {"sluice_retries_total",
       "Retried attempts by cluster and reason.",
       T::kCounter,
       {"cluster", "reason"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachCluster(s, [&](const std::string& cluster, const ClusterCell& cell) {
           for (int f = 0; f < kUpstreamFailures; ++f) {
             if (uint64_t n = cell.retries[f].value()) sink.Add({cluster, kFailureLabels[f]}, D(n));
           }
         });
       }},
      {"sluice_ejections_total",
       "Endpoints ejected by passive outlier detection.",
       T::kCounter,
       {"cluster"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachCluster(s, [&](const std::string& cluster, const ClusterCell& cell) {
           sink.Add({cluster}, D(cell.ejections.value()));
         });
       }},
      {"sluice_upstream_connections_total",
       "Upstream connections opened, by cluster: with keep-alive working, far fewer than "
       "requests.",
       T::kCounter,
       {"cluster"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachCluster(s, [&](const std::string& cluster, const ClusterCell& cell) {
           sink.Add({cluster}, D(cell.connections.value()));
         });
       }},
      {"sluice_rejected_requests_total",
       "Requests a filter answered itself (auth, shed, rate_limit, ...).",
       T::kCounter,
       {"route", "filter"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachReject(
             s, [&](const std::string& route, const std::string& filter, const RejectCell& cell) {
               sink.Add({route, filter}, D(cell.requests.value()));
             });
       }},
      {"sluice_stream_starts_total",
       "Requests matching the stream start criterion, by the region that served them, counted "
       "where they entered.",
       T::kCounter,
       {"region"},
       [](const MetricSources& s, MetricSink& sink) {
         ForEachRegion(s, [&](const std::string& region, const RegionCell& cell) {
           sink.Add({region}, D(cell.stream_starts.value()));
         });
       }},
      {"sluice_entry_stream_starts_total",
       "Stream starts of the requests that entered the region at this node (wherever served), "
       "by this node's region: the detector's entry signal, for Prometheus.",
       T::kCounter,
       {"region"},
       [](const MetricSources& s, MetricSink& sink) {
         if (s.node.local_region.empty()) return;
         double starts = 0;
         ForEachRegion(s, [&](const std::string&, const RegionCell& cell) {
           starts += D(cell.stream_starts.value());
         });
         sink.Add({s.node.local_region}, starts);
       }},
      {"sluice_entry_requests_total",
       "Requests that entered the region at this node (not through a tunnel), by this node's "
       "region.",
       T::kCounter,
       {"region"},
       [](const MetricSources& s, MetricSink& sink) {
         if (s.node.local_region.empty()) return;
         double n = 0;
         for (const WorkerMetrics* w : s.workers) n += D(w->requests_entered.value());
         sink.Add({s.node.local_region}, n);
       }},
      {"sluice_downstream_connections",
       "Open downstream connections.",
       T::kGauge,
       {},
       SLUICE_WORKER_SUM(connections_open)},
      {"sluice_downstream_connections_total",
       "Downstream connections accepted.",
       T::kCounter,
       {},
       SLUICE_WORKER_SUM(connections_total)},
      {"sluice_accept_pauses_total",
       "Times a worker stopped accepting on a listener for 100 ms because accept(2) failed "
       "(e.g. out of file descriptors or memory); the connections waited in the kernel's queue.",
       T::kCounter,
       {},
       SLUICE_WORKER_SUM(accept_pauses)},
      {"sluice_tls_handshakes_total",
       "Downstream TLS handshakes, by negotiated protocol and resumption.",
       T::kCounter,
       {"protocol", "resumed"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const WorkerMetrics* w : s.workers) {
           for (int h2 = 0; h2 < 2; ++h2) {
             for (int resumed = 0; resumed < 2; ++resumed) {
               sink.Add({h2 ? "h2" : "http/1.1", resumed ? "true" : "false"},
                        D(w->tls_handshakes[h2][resumed].value()));
             }
           }
         }
       }},
      {"sluice_tls_handshakes_waited_total",
       "Downstream TLS handshakes that waited for a later loop iteration "
       "(limits.tls_handshake_budget).",
       T::kCounter,
       {},
       SLUICE_WORKER_SUM(tls_handshakes_waited)},
      {"sluice_tls_handshake_failures_total",
       "Downstream TLS handshakes that failed.",
       T::kCounter,
       {},
       SLUICE_WORKER_SUM(tls_handshake_failures)},
      {"sluice_http2_connections_total",
       "Downstream HTTP/2 connections (h2 and h2c).",
       T::kCounter,
       {},
       SLUICE_WORKER_SUM(http2_connections)},
      {"sluice_http2_connections_shed_total",
       "Downstream HTTP/2 connections closed for abuse (rapid reset, floods) or protocol errors.",
       T::kCounter,
       {},
       SLUICE_WORKER_SUM(http2_shed)},
      {"sluice_steering_requests_total",
       "Steering outcomes: served locally, tunneled out by region, tunneled in.",
       T::kCounter,
       {"outcome", "region"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const WorkerMetrics* w : s.workers) {
           const SteeringStats& st = w->steering;
           sink.Add({"local", ""}, D(st.served_local.value()));
           sink.Add({"tunneled_in", ""}, D(st.tunneled_in.value()));
           for (size_t r = 0; r < s.region_names.size() && r < static_cast<size_t>(kMaxRegions);
                ++r) {
             if (uint64_t n = st.tunneled_out[r].value()) {
               sink.Add({"tunneled_out", s.region_names[r]}, D(n));
             }
           }
         }
       }},
      {"sluice_steering_hop_rejected_total",
       "Tunneled requests whose hop marker failed, by reason.",
       T::kCounter,
       {"reason"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const WorkerMetrics* w : s.workers) {
           for (int v = 1; v < kHopVerdicts; ++v) {  // kValid is no rejection
             sink.Add({HopVerdictName(static_cast<HopVerdict>(v))},
                      D(w->steering.hop_rejected[v].value()));
           }
         }
       }},
      {"sluice_steering_fallbacks_total",
       "Tunnels that failed and went to the next savior or local.",
       T::kCounter,
       {},
       SLUICE_WORKER_SUM(steering.fallbacks)},
      {"sluice_steering_failovers_total",
       "Requests the local region failed, sent once to a savior.",
       T::kCounter,
       {},
       SLUICE_WORKER_SUM(steering.failovers)},
      {"sluice_steering_table_version",
       "Version of the steering table in force.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) { sink.Add({}, D(s.node.table_version)); }},
      {"sluice_steering_evacuated_ratio",
       "Share of each region's members being evacuated (0..1).",
       T::kGauge,
       {"region"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const auto& [region, bp] : s.node.evacuated_bp) {
           sink.Add({region}, static_cast<double>(bp) / kBasisPoints);
         }
       }},
      {"sluice_steering_region_healthy",
       "1 when the table marks the region healthy.",
       T::kGauge,
       {"region"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const auto& [region, ok] : s.node.region_healthy) sink.Add({region}, ok);
       }},
      {"sluice_steering_active_plans",
       "Ramps in progress.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) { sink.Add({}, D(s.node.active_plans)); }},
      {"sluice_steering_plan_held_seconds",
       "Seconds each active plan has held (at a gate, preparing its saviors or at the DNS "
       "step) without taking a step; 0 while it runs.",
       T::kGauge,
       {"plan", "region", "kind"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const auto& p : s.node.plans) {
           sink.Add({std::to_string(p.id), p.region, p.kind}, p.held_seconds);
         }
       }},
      {"sluice_ready",
       "1 when the node is ready for traffic.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) { sink.Add({}, s.node.ready ? 1 : 0); }},
      {"sluice_steering_hop_replay_evictions_total",
       "Nonces of accepted hop markers forgotten while still valid, for room (a replay of "
       "those would pass): nonzero means the replay cache is too small for the tunneled load.",
       T::kCounter,
       {},
       [](const MetricSources& s, MetricSink& sink) {
         sink.Add({}, D(s.node.hop_replay_evictions));
       }},
      {"sluice_upstream_window_bytes",
       "HTTP/2 receive windows toward origins and peer regions grown beyond their first 4 MiB "
       "per connection: bytes peers may send ahead, held from limits.upstream_window_memory.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) {
         sink.Add({}, D(s.node.upstream_window_bytes));
       }},
      {"sluice_upstream_window_limit_bytes",
       "limits.upstream_window_memory: what window growth may hold in all.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) {
         sink.Add({}, D(s.node.upstream_window_limit));
       }},
      {"sluice_start_time_seconds",
       "Start time of the process (Unix seconds).",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) { sink.Add({}, s.node.start_time_seconds); }},
      {"sluice_heap_allocated_bytes",
       "Bytes in live heap allocations, as malloc counts them: what connections, requests and "
       "the workers' caches hold now.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) {
         if (s.node.has_heap) sink.Add({}, D(s.node.heap_allocated_bytes));
       }},
      {"sluice_heap_bytes",
       "Bytes malloc holds from the system for the heap; beyond sluice_heap_allocated_bytes, "
       "free memory it keeps for reuse (after a burst, say), much of it still resident.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) {
         if (s.node.has_heap) sink.Add({}, D(s.node.heap_bytes));
       }},
      {"sluice_fleet_connected",
       "1 while the steering store (etcd) answers.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) { sink.Add({}, s.node.fleet_connected); },
       true},
      {"sluice_fleet_leader",
       "1 while this node holds the fleet's controller lease.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) { sink.Add({}, s.node.fleet_leader); },
       true},
      {"sluice_fleet_revision",
       "The store revision this node has seen.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) {
         sink.Add({}, static_cast<double>(s.node.fleet_revision));
       },
       true},
      {"sluice_fleet_seconds_since_sync",
       "Seconds since the store last answered this node.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) {
         sink.Add({}, s.node.fleet_seconds_since_sync);
       },
       true},
      {"sluice_fleet_nodes",
       "Nodes whose view is in the store.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) { sink.Add({}, D(s.node.fleet_nodes)); },
       true},
      {"sluice_fleet_writes_total",
       "Steering writes to the store by outcome.",
       T::kCounter,
       {"outcome"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const auto& [outcome, n] : s.node.fleet_writes) sink.Add({outcome}, D(n));
       },
       true},
      {"sluice_stream_starts_expected",
       "Stream starts per second the detector expects of each region now (from the same time a "
       "day and a week before).",
       T::kGauge,
       {"region"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const auto& d : s.node.detection) {
           if (d.has_expected) sink.Add({d.region}, d.expected_sps);
         }
       }},
      {"sluice_detection_ratio",
       "Each region's stream starts now over what is expected (the lower of entry and serving).",
       T::kGauge,
       {"region"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const auto& d : s.node.detection) {
           if (d.has_ratio) sink.Add({d.region}, d.ratio);
         }
       }},
      {"sluice_detection_state",
       "1 for each region's current detector verdict.",
       T::kGauge,
       {"region", "state"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const auto& d : s.node.detection) {
           for (const char* state :
                {"no_verdict", "ok", "dipping", "vetoed", "sick", "evacuated"}) {
             sink.Add({d.region, state}, d.state == state ? 1 : 0);
           }
         }
       }},
      {"sluice_detection_edge_state",
       "1 for each other region's dead-edge verdict: no node of it alive and its tunnel "
       "endpoints silent makes it suspect, then dead.",
       T::kGauge,
       {"region", "state"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const auto& [region, edge] : s.node.edges) {
           for (const char* state : {"unknown", "alive", "suspect", "dead"}) {
             sink.Add({region, state}, edge == state ? 1 : 0);
           }
         }
       }},
      {"sluice_detection_evacuations_total",
       "Evacuations this node's detector started, by the signal that dipped.",
       T::kCounter,
       {"reason"},
       [](const MetricSources& s, MetricSink& sink) {
         for (const auto& [reason, n] : s.node.detection_evacuations) sink.Add({reason}, D(n));
       }},
      {"sluice_capacity_requests_per_second",
       "What this node can serve (configured, scaled by its injected standbys, or learned; 0: "
       "unknown).",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) {
         if (s.node.has_capacity) sink.Add({}, s.node.capacity_rps);
       }},
      {"sluice_load_requests_per_second",
       "Requests this node's region's origins took per second over the last 5 s.",
       T::kGauge,
       {},
       [](const MetricSources& s, MetricSink& sink) {
         if (s.node.has_capacity) sink.Add({}, s.node.load_rps);
       }},
      {"sluice_standby_endpoints",
       "Hot standby endpoints of this node's origins: waiting or injected (serving).",
       T::kGauge,
       {"state"},
       [](const MetricSources& s, MetricSink& sink) {
         if (!s.node.has_capacity) return;
         sink.Add({"waiting"}, s.node.standby_endpoints);
         sink.Add({"injected"}, s.node.injected_endpoints);
       }},
  };
}

#undef SLUICE_WORKER_SUM

// One family's series, merged by label values.
class FamilyBuilder final : public MetricSink {
 public:
  explicit FamilyBuilder(const MetricFamily& family) : labels_(family.labels) {
    family_.name = std::string(family.name);
    family_.help = std::string(family.help);
    family_.type = family.type == MetricType::kCounter ? prometheus::MetricType::Counter
                   : family.type == MetricType::kGauge ? prometheus::MetricType::Gauge
                                                       : prometheus::MetricType::Histogram;
  }

  void Add(std::initializer_list<std::string_view> values, double value) override {
    prometheus::ClientMetric& m = Series(values);
    if (family_.type == prometheus::MetricType::Counter) {
      m.counter.value += value;
    } else {
      m.gauge.value += value;
    }
  }

  void AddHistogram(std::initializer_list<std::string_view> values,
                    const LatencyHistogram& h) override {
    prometheus::ClientMetric& m = Series(values);
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

  prometheus::MetricFamily Take() {
    for (auto& [key, metric] : series_) family_.metric.push_back(std::move(metric));
    return std::move(family_);
  }

 private:
  prometheus::ClientMetric& Series(std::initializer_list<std::string_view> values) {
    // A collector that passes other labels than its row declares is a programming error that
    // the metric families test catches; never render a series with misnamed labels.
    if (values.size() != labels_.size()) std::abort();
    std::string key;
    for (std::string_view v : values) {
      key.append(v);
      key += '\x1e';
    }
    prometheus::ClientMetric& m = series_[key];
    if (m.label.empty() && !labels_.empty()) {
      size_t i = 0;
      for (std::string_view v : values) {
        m.label.push_back({std::string(labels_[i++]), std::string(v)});
      }
    }
    return m;
  }

  const std::vector<std::string_view>& labels_;
  prometheus::MetricFamily family_;
  std::map<std::string, prometheus::ClientMetric> series_;  // sorted: a stable output order
};

}  // namespace

const std::vector<MetricFamily>& MetricFamilies() {
  static const std::vector<MetricFamily> kFamilies = BuildFamilies();
  return kFamilies;
}

std::string RenderMetrics(const std::vector<const WorkerMetrics*>& workers, const NodeGauges& node,
                          const std::vector<std::string>& region_names) {
  MetricSources sources{workers, node, region_names};
  std::vector<prometheus::MetricFamily> families;
  for (const MetricFamily& family : MetricFamilies()) {
    if (family.fleet_only && !node.fleet) continue;
    FamilyBuilder builder(family);
    family.collect(sources, builder);
    families.push_back(builder.Take());
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

}  // namespace sluice
