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
#include "proxy/load_balancer.h"
#include "proxy/loop_context.h"
#include "proxy/upstream_connection.h"
#include "proxy/upstream_endpoint.h"

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

// Answers every read with an empty 200 (keep-alive).
struct TinyOrigin {
  uv_tcp_t server;
  std::vector<std::unique_ptr<uv_tcp_t>> peers;
  static void OnConnection(uv_stream_t* s, int status) {
    if (status != 0) return;
    auto* self = static_cast<TinyOrigin*>(s->data);
    auto peer = std::make_unique<uv_tcp_t>();
    uv_tcp_init(s->loop, peer.get());
    if (uv_accept(s, reinterpret_cast<uv_stream_t*>(peer.get())) != 0) return;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(peer.get()),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static char buffer[4096];
          *buf = uv_buf_init(buffer, sizeof(buffer));
        },
        [](uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
          if (nread <= 0) return;
          static char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
          uv_buf_t out = uv_buf_init(reply, sizeof(reply) - 1);
          uv_try_write(stream, &out, 1);
        });
    self->peers.push_back(std::move(peer));
  }
};

// One exchange on a fresh connection, then back to the pool.
struct Exchange : UpstreamStream::Handler {
  UpstreamConnection* connection = nullptr;
  bool done = false;
  void OnUpstreamConnected() override {
    connection->SendRequestHead("GET / HTTP/1.1\r\nHost: origin\r\n\r\n", HttpMethod::kGet,
                                BodyFraming::kNone, false);
    connection->EndRequest();
  }
  void OnUpstreamHead(ResponseHeadPtr) override {}
  void OnUpstreamBody(std::string_view) override {}
  void OnUpstreamTrailers(const HeaderMap&) override {}
  void OnUpstreamEnd() override {
    connection->Release();
    done = true;
  }
  void OnUpstreamError(UpstreamError, int, const char*) override { done = true; }
  void OnUpstreamDrained() override {}
};

void BM_PooledConnectionCheckout(benchmark::State& state) {
  constexpr int kConnections = 16;
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    LoopContext context(&loop);
    TinyOrigin origin;
    uv_tcp_init(&loop, &origin.server);
    origin.server.data = &origin;
    SocketAddress listen = *SocketAddress::Parse("127.0.0.1:0");
    uv_tcp_bind(&origin.server, listen.sockaddr_ptr(), 0);
    uv_listen(reinterpret_cast<uv_stream_t*>(&origin.server), 64, &TinyOrigin::OnConnection);
    sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&origin.server, reinterpret_cast<sockaddr*>(&bound), &len);
    auto endpoint = std::make_shared<UpstreamEndpoint>(
        &context, "origin", SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&bound)),
        PoolConfig{}, Http1Limits{});
    std::vector<Exchange> exchanges(kConnections);
    for (Exchange& e : exchanges) {
      int error = 0;
      e.connection = endpoint->Connect(&e, &error);
    }
    // Every exchange ends (pooled, or with an error), so this loop ends.
    auto all_done = [&] {
      for (const Exchange& e : exchanges) {
        if (e.connection != nullptr && !e.done) return false;
      }
      return true;
    };
    while (!all_done()) uv_run(&loop, UV_RUN_ONCE);
    if (endpoint->idle_count() < kConnections) {
      state.SkipWithError("the pool did not fill");
    } else {
      Exchange holder;
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
    for (auto& peer : origin.peers) uv_close(reinterpret_cast<uv_handle_t*>(peer.get()), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&origin.server), nullptr);
    endpoint.reset();
    context.Close();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop);
}
BENCHMARK(BM_PooledConnectionCheckout);

}  // namespace
}  // namespace sluice
