// Cost of turning a client's request head into the upstream one (hop-by-hop removal,
// X-Forwarded-*, Via, request id) and serializing it.
#include <string>

#include "bench/allocation_counter.h"
#include "benchmark/benchmark.h"
#include "proxy/forward/header_rewriter.h"

namespace sluice {
namespace {

void BM_PrepareAndSerializeUpstreamRequest(benchmark::State& state) {
  ProxyOptions options;
  DownstreamInfo info;
  info.client = *SocketAddress::Parse("192.0.2.10:41000");
  std::string out;
  uint64_t n = 0;
  const uint64_t allocations = AllocationCount();
  for (auto _ : state) {
    RequestHeadPtr head = MakeRequestHead();
    head->method_text = "GET";
    head->path = "/api/v1/titles/81234567";
    head->query = "?size=large";
    head->headers.Add("Host", "www.example.com");
    head->headers.Add("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)");
    head->headers.Add("Accept", "*/*");
    head->headers.Add("Connection", "keep-alive");
    head->headers.Add("Cookie", "session=0123456789abcdef");
    ++n;
    PrepareUpstreamRequest(*head, options, info, n, n * 7);
    out.clear();
    SerializeUpstreamRequest(*head, "10.0.0.1:80", &out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["allocs/op"] = benchmark::Counter(
      static_cast<double>(AllocationCount() - allocations), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_PrepareAndSerializeUpstreamRequest);

void BM_FormatRequestId(benchmark::State& state) {
  char id[kRequestIdLength];
  uint64_t n = 0x9e3779b97f4a7c15ULL;
  for (auto _ : state) {
    n += 0x9e3779b97f4a7c15ULL;
    FormatRequestId(n, ~n, id);
    benchmark::DoNotOptimize(id);
  }
}
BENCHMARK(BM_FormatRequestId);

// Names as a browser and an origin send them: most are none the proxy knows.
void BM_ClassifyHeaderName(benchmark::State& state) {
  static constexpr std::string_view kNames[] = {"Host",
                                                "User-Agent",
                                                "Accept",
                                                "Accept-Language",
                                                "Accept-Encoding",
                                                "Cookie",
                                                "Connection",
                                                "Server",
                                                "Date",
                                                "Content-Type",
                                                "ETag",
                                                "Content-Length",
                                                "X-Forwarded-For",
                                                "Cache-Control",
                                                "Sluice-Hop"};
  for (auto _ : state) {
    for (std::string_view name : kNames) benchmark::DoNotOptimize(ClassifyHeaderName(name));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * std::size(kNames)));
}
BENCHMARK(BM_ClassifyHeaderName);

}  // namespace
}  // namespace sluice
