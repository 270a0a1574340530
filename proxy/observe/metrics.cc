#include "proxy/observe/metrics.h"

namespace sluice {
namespace {

// The cell under `key`, made and set up by `init` (under the mutex) the first time.
template <typename T, typename Key, typename Init>
T* FindOrCreate(std::mutex& mutex, std::map<Key, std::unique_ptr<T>>& cells, const Key& key,
                Init init) {
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<T>& cell = cells[key];
  if (!cell) {
    cell = std::make_unique<T>();
    init(*cell);
  }
  return cell.get();
}
template <typename T, typename Key>
T* FindOrCreate(std::mutex& mutex, std::map<Key, std::unique_ptr<T>>& cells, const Key& key) {
  return FindOrCreate(mutex, cells, key, [](T&) {});
}

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
  static const char* const kNames[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "none"};
  static_assert(std::size(kNames) == kStatusClasses);
  return kNames[index];
}

const char* DecisionLabel(int index) {
  if (index == kDecisionOff) return "off";
  return SteeringReasonName(static_cast<SteeringReason>(index));
}

uint64_t ExchangeCell::Total() const {
  uint64_t n = 0;
  for (const auto& by_class : requests) {
    for (const MetricCounter& c : by_class) n += c.value();
  }
  return n;
}

uint64_t ClusterCell::Failures() const {
  uint64_t n = 0;
  for (int f = 1; f < kUpstreamFailures; ++f) n += failures[f].value();
  return n;
}

uint64_t ClusterCell::Responses() const {
  uint64_t n = 0;
  for (const MetricCounter& c : responses) n += c.value();
  return n;
}

ExchangeCell* WorkerMetrics::Exchange(const std::string& route, const std::string& cluster) {
  return FindOrCreate(mutex_, exchanges_, Pair(route, cluster));
}
RouteCell* WorkerMetrics::Route(const std::string& route) {
  return FindOrCreate(mutex_, routes_, route);
}
ClusterCell* WorkerMetrics::Cluster(const std::string& cluster, const std::string& tunnel_region) {
  return FindOrCreate(mutex_, clusters_, cluster,
                      [&](ClusterCell& cell) { cell.tunnel_region = tunnel_region; });
}
RejectCell* WorkerMetrics::Reject(const std::string& route, const std::string& filter,
                                  bool counts_as_shed) {
  return FindOrCreate(mutex_, rejects_, Pair(route, filter),
                      [&](RejectCell& cell) { cell.counts_as_shed = counts_as_shed; });
}
RegionCell* WorkerMetrics::Region(const std::string& region) {
  return FindOrCreate(mutex_, regions_, region);
}

}  // namespace sluice
