#include "proxy/observe/node_traffic.h"

#include "filters/shed/concurrency_limiter.h"

namespace sluice {
namespace {

void AddLatency(TrafficTotals* totals, const LatencyHistogram& h) {
  for (int i = 0; i <= LatencyHistogram::kBounds; ++i) totals->latency[i] += h.bucket(i);
}

}  // namespace

NodeTraffic SampleNodeTraffic(const std::vector<const WorkerMetrics*>& workers) {
  NodeTraffic t;
  for (const WorkerMetrics* worker : workers) {
    t.entered += worker->requests_entered.value();
    t.entered_by_cohort.resize(WorkerMetrics::kMaxCohortCounters);
    for (int c = 0; c < WorkerMetrics::kMaxCohortCounters; ++c) {
      t.entered_by_cohort[static_cast<size_t>(c)] += worker->entered_by_cohort[c].value();
    }
    worker->VisitLimiters([&](const ConcurrencyLimiter& limiter) {
      int64_t rtt = limiter.shared_rtt_ns();
      if (rtt <= 0) return;
      t.learned_rps += limiter.shared_limit() / (static_cast<double>(rtt) / 1e9);
      ++t.limiters;
    });
    worker->Visit([&](const auto&, const auto&, const auto& clusters, const auto& rejects,
                      const auto& regions) {
      // Attempts and failed attempts of the same cells: a rate over the same events, with
      // retries and attempts that then failed over counted like any other.
      for (const auto& [name, cell] : clusters) {
        TrafficTotals& totals =
            cell->tunnel_region.empty() ? t.local : t.tunnels[cell->tunnel_region];
        totals.requests += cell->Responses() + cell->Failures();
        totals.errors += cell->Errors();
        AddLatency(&totals, cell->latency);
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
