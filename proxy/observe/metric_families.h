// Every metric family /metrics shows, declared once: its name, help, type, label names and how
// its series are read from the cells (proxy/observe/metrics.h). The table drives the rendering
// and the tests (names follow the Prometheus conventions, labels match the table); adding a
// counter is a field in its cell, the line that counts, and one row here.
//
// Rendering runs on the control thread at scrape time.
#ifndef SLUICE_PROXY_OBSERVE_METRIC_FAMILIES_H_
#define SLUICE_PROXY_OBSERVE_METRIC_FAMILIES_H_

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/observe/metrics.h"

namespace sluice {

enum class MetricType { kCounter, kGauge, kHistogram };

// What a family's series are read from at scrape time.
struct MetricSources {
  const std::vector<const WorkerMetrics*>& workers;
  const NodeGauges& node;
  // Region index of the current table -> name (the steering counters are by index).
  const std::vector<std::string>& region_names;
};

// Receives a family's series; series with the same label values are summed (across workers).
// Label values come in the order of the family's label names.
class MetricSink {
 public:
  virtual ~MetricSink() = default;
  virtual void Add(std::initializer_list<std::string_view> label_values, double value) = 0;
  virtual void AddHistogram(std::initializer_list<std::string_view> label_values,
                            const LatencyHistogram& histogram) = 0;
};

struct MetricFamily {
  std::string_view name;  // sluice_..., _total for counters, _seconds for durations
  std::string_view help;
  MetricType type;
  std::vector<std::string_view> labels;
  void (*collect)(const MetricSources& sources, MetricSink& sink);
  bool fleet_only = false;  // shown only when the fleet is configured
};

// In the order /metrics shows them.
const std::vector<MetricFamily>& MetricFamilies();

// Prometheus text format (version 0.0.4) for the sum of `workers` plus `node`.
std::string RenderMetrics(const std::vector<const WorkerMetrics*>& workers, const NodeGauges& node,
                          const std::vector<std::string>& region_names);

}  // namespace sluice

#endif  // SLUICE_PROXY_OBSERVE_METRIC_FAMILIES_H_
