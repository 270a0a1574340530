// The upstream side's per-request bookkeeping: picking an endpoint (least outstanding, power
// of two choices over 16 endpoints) and checking a pooled keep-alive connection out and back
// in. The pooled connections are real: connected over loopback to a tiny origin on the same
// loop, after one real exchange each.
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "bench/allocation_counter.h"
#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "proxy/event/loop_context.h"
#include "proxy/upstream/load_balancer.h"
#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/upstream_endpoint.h"
#include "tests/proxy/tiny_origin.h"

namespace sluice {
namespace {

void BM_PickEndpoint(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    LoopContext context(&loop);
    std::vector<std::shared_ptr<UpstreamEndpoint>> endpoints;
    for (int i = 0; i < 16; ++i) {
      endpoints.push_back(std::make_shared<UpstreamEndpoint>(
          &context, "e" + std::to_string(i),
          *SocketAddress::Parse("10.0.0." + std::to_string(i + 1) + ":80"), PoolConfig{},
          Http1Limits{}));
    }
    LoadBalancer balancer(BalancerKind::kLeastOutstanding, endpoints);
    uint64_t random = 0x9E3779B97F4A7C15ULL;
    for (auto _ : state) {
      random = random * 6364136223846793005ULL + 1442695040888963407ULL;
      UpstreamEndpoint* picked = balancer.Pick(random, SystemClock().MonotonicNanos());
      picked->BeginRequest();
      benchmark::DoNotOptimize(picked);
      picked->EndRequest();
    }
    context.Close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
}
BENCHMARK(BM_PickEndpoint);

void BM_PooledConnectionCheckout(benchmark::State& state) {
  constexpr int kConnections = 16;
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    LoopContext context(&loop);
    TinyOrigin origin(&loop);
    auto endpoint = std::make_shared<UpstreamEndpoint>(&context, "origin", origin.address(),
                                                       PoolConfig{}, Http1Limits{});
    std::vector<OneExchange> exchanges(kConnections);
    for (OneExchange& e : exchanges) {
      int error = 0;
      e.connection = endpoint->Connect(&e, &error);
    }
    // Every exchange ends (pooled, or with an error), so this loop ends.
    auto all_done = [&] {
      for (const OneExchange& e : exchanges) {
        if (e.connection != nullptr && !e.done) return false;
      }
      return true;
    };
    while (!all_done()) uv_run(&loop, UV_RUN_ONCE);
    if (endpoint->idle_count() < kConnections) {
      state.SkipWithError("the pool did not fill");
    } else {
      OneExchange holder;
      uint64_t allocations_before = AllocationCount();
      int64_t rounds = 0;
      for (auto _ : state) {
        UpstreamConnection* c = endpoint->TakeIdle();
        c->Attach(&holder);
        benchmark::DoNotOptimize(c);
        c->Release();
        ++rounds;
      }
      state.counters["allocs_per_checkout"] =
          benchmark::Counter(static_cast<double>(AllocationCount() - allocations_before) /
                             static_cast<double>(std::max<int64_t>(1, rounds)));
    }
    endpoint->Retire();
    origin.Close();
    endpoint.reset();
    context.Close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
}
BENCHMARK(BM_PooledConnectionCheckout);

}  // namespace
}  // namespace sluice
