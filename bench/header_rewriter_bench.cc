// Cost of turning a client's request head into the upstream one (hop-by-hop removal,
// X-Forwarded-*, Via, request id) and serializing it.
#include <string>

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
}
BENCHMARK(BM_PrepareAndSerializeUpstreamRequest);

}  // namespace
}  // namespace sluice
