#include "proxy/observe/node_traffic.h"

namespace sluice {
namespace {

void AddLatency(TrafficTotals* totals, const LatencyHistogram& h) {
  for (int i = 0; i <= LatencyHistogram::kBounds; ++i) totals->latency[i] += h.bucket(i);
}

}  // namespace

NodeTraffic SampleNodeTraffic(const std::vector<const WorkerMetrics*>& workers) {
  NodeTraffic t;
  for (const WorkerMetrics* worker : workers) {
    worker->Visit([&](const auto& exchanges, const auto&, const auto& clusters, const auto& rejects,
                      const auto& regions) {
      for (const auto& [key, cell] : exchanges) {
        if (cell->local) t.local.requests += cell->Total();
      }
      for (const auto& [name, cell] : clusters) {
        if (!cell->tunnel_region.empty()) {
          TrafficTotals& tunnel = t.tunnels[cell->tunnel_region];
          tunnel.requests += cell->Responses() + cell->Failures();
          tunnel.errors += cell->Errors();
          AddLatency(&tunnel, cell->latency);
        } else {
          t.local.errors += cell->Errors();
          AddLatency(&t.local, cell->latency);
        }
      }
      for (const auto& [key, cell] : rejects) {
        if (cell->counts_as_shed) t.local.sheds += cell->requests.value();
      }
      for (const auto& [name, cell] : regions) t.starts[name] += cell->stream_starts.value();
    });
  }
  return t;
}

}  // namespace sluice
