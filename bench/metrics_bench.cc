// What recording one request costs on a worker: the counters and the latency histogram that
// /metrics sums at scrape time (single-writer relaxed atomics, no lock), and formatting its
// access log line when it is sampled.
#include <string>

#include "bench/allocation_counter.h"
#include "benchmark/benchmark.h"
#include "proxy/observe/access_log.h"
#include "proxy/observe/metric_families.h"
#include "proxy/observe/metrics.h"

namespace sluice {
namespace {

void BM_RecordExchangeCounters(benchmark::State& state) {
  WorkerMetrics metrics;
  ExchangeCell* exchange = metrics.Exchange("api", "app");
  RouteCell* route = metrics.Route("api");
  ClusterCell* cluster = metrics.Cluster("app");
  int64_t nanos = 1'700'000;
  uint64_t allocations_before = AllocationCount();
  for (auto _ : state) {
    // What Forwarder::RecordExchange and RecordUpstreamHead do for a plain 200.
    exchange->requests[StatusClassIndex(200)][0].Add();
    route->latency.Observe(nanos);
    route->bytes_in.Add(0);
    route->bytes_out.Add(512);
    cluster->latency.Observe(nanos - 200'000);
    cluster->responses[1].Add();
    nanos += 997;
    benchmark::ClobberMemory();
  }
  state.counters["allocs/iter"] =
      benchmark::Counter(static_cast<double>(AllocationCount() - allocations_before) /
                         static_cast<double>(state.iterations()));
}
BENCHMARK(BM_RecordExchangeCounters);

void BM_AccessLogLine(benchmark::State& state) {
  AccessLogRecord r;
  r.unix_micros = 1795327100779123;
  r.request_id = "6f1c1c4e-8a8f-4c31-9a0f-2f4b9d1c7e55";
  r.client = "203.0.113.7:51234";
  r.method = "GET";
  r.host = "api.example.com";
  r.path = "/v1/catalog/items/12345";
  r.status = 200;
  r.bytes_out = 2048;
  r.duration_us = 1734;
  r.route = "api";
  r.cluster = "app";
  r.endpoint = "10.0.3.17:8080";
  r.decision = "local";
  r.region = "us-east-1";
  std::string batch;
  batch.reserve(1 << 20);
  for (auto _ : state) {
    AppendAccessLogLine(r, &batch);
    if (batch.size() > (1 << 19)) batch.clear();
    benchmark::DoNotOptimize(batch.data());
  }
}
BENCHMARK(BM_AccessLogLine);

}  // namespace
}  // namespace sluice
