// Cost of parsing and validating a typical browser request (the one-pass parser and its checks),
// and of the request normalization that follows; allocations per parse once warm.
#include <string>
#include <string_view>
#include <vector>

#include "bench/allocation_counter.h"
#include "benchmark/benchmark.h"
#include "proxy/forward/request_normalizer.h"
#include "proxy/http/http1_lines.h"
#include "proxy/http/http1_parser.h"

namespace sluice {
namespace {

constexpr char kRequest[] =
    "GET /api/v1/titles/81234567/artwork?size=large&format=webp HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

class Sink : public Http1Parser::Handler {
 public:
  Http1Parser* parser = nullptr;
  RequestHeadPtr head;
  void OnHead() override { head = parser->TakeRequest(); }
  void OnBody(std::string_view) override {}
  void OnMessageComplete() override {}
};

void BM_ParseRequest(benchmark::State& state) {
  Sink sink;
  Http1Parser parser(Http1Parser::Mode::kRequest, Http1Limits{}, &sink);
  sink.parser = &parser;
  const size_t len = sizeof(kRequest) - 1;
  const uint64_t allocations = AllocationCount();
  for (auto _ : state) {
    Http1Parser::Result r = parser.Execute(kRequest, len);
    if (r.outcome != Http1Parser::Outcome::kMessageComplete) state.SkipWithError("parse failed");
    parser.ResumeAfterMessage();
    sink.head.reset();  // back to the pool, as after a request
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
  state.counters["allocs/op"] = benchmark::Counter(
      static_cast<double>(AllocationCount() - allocations), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_ParseRequest);

void BM_ParseAndNormalize(benchmark::State& state) {
  Sink sink;
  Http1Parser parser(Http1Parser::Mode::kRequest, Http1Limits{}, &sink);
  sink.parser = &parser;
  PathNormalizerOptions options;
  for (auto _ : state) {
    parser.Execute(kRequest, sizeof(kRequest) - 1);
    parser.ResumeAfterMessage();
    RequestVerdict v = NormalizeRequest(sink.head.get(), options);
    benchmark::DoNotOptimize(v);
    sink.head.reset();
  }
}
BENCHMARK(BM_ParseAndNormalize);

void BM_ParseResponse(benchmark::State& state) {
  static constexpr char kResponse[] =
      "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 22 Nov 2026 02:00:00 GMT\r\n"
      "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}";
  struct ResponseSink : Http1Parser::Handler {
    Http1Parser* parser = nullptr;
    void OnHead() override { parser->TakeResponse().reset(); }
    void OnBody(std::string_view) override {}
    void OnMessageComplete() override {}
  } sink;
  Http1Parser parser(Http1Parser::Mode::kResponse, Http1Limits{}, &sink);
  sink.parser = &parser;
  const uint64_t allocations = AllocationCount();
  for (auto _ : state) {
    parser.ExpectResponse(HttpMethod::kGet, false);
    parser.Execute(kResponse, sizeof(kResponse) - 1);
    parser.ResumeAfterMessage();
  }
  state.counters["allocs/op"] = benchmark::Counter(
      static_cast<double>(AllocationCount() - allocations), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_ParseResponse);

// The head's lines alone, each parsed and validated as the parser does (http1_lines.h),
// without storing the fields: what the strict single pass costs over the same request head.
void BM_ParseRequestLines(benchmark::State& state) {
  std::vector<std::string_view> lines;
  std::string_view head(kRequest, sizeof(kRequest) - 1);
  for (size_t lf = head.find('\n'); lf != std::string_view::npos; lf = head.find('\n')) {
    if (lf > 1) lines.push_back(head.substr(0, lf));
    head.remove_prefix(lf + 1);
  }
  for (auto _ : state) {
    http1::RequestLine request;
    benchmark::DoNotOptimize(http1::ParseRequestLine(lines[0], &request));
    for (size_t i = 1; i < lines.size(); ++i) {
      http1::FieldLine field;
      benchmark::DoNotOptimize(http1::ParseFieldLine(lines[i], &field));
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * (sizeof(kRequest) - 1)));
}
BENCHMARK(BM_ParseRequestLines);

}  // namespace
}  // namespace sluice
