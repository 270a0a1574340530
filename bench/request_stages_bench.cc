// What one proxied HTTP/1.1 request costs, stage by stage, on the request bench/compare.py
// sends (h2load --h1: Host, user-agent, and the bearer token every row gets) and the answer of
// its origin (nginx, "hello world\n"):
//   parse      the request head through Http1Parser, and the origin's response head;
//   normalise  NormalizeRequest (Host, target, the path normaliser);
//   route      Router::Match over the one route of the benches' configurations;
//   filters    the chain: "default" is the quick start's (none), "full" sluice-full's (auth with
//              an HS256 token, shed, rate limit, header rules), request and response side;
//   steering   the member read from the request (ReadSteeringInputs) and the decision;
//   serialise  the request head prepared and written for the origin (header_rewriter), and
//              the response head prepared and written back to the client.
// bench/request_stages.py runs each under callgrind at two fixed iteration counts: set
// SLUICE_STAGE_ITERATIONS=N and every stage runs exactly N iterations (libbenchmark 1.7 has no
// --benchmark_min_time=Nx), so the difference of two runs is the instructions of N2 - N1
// requests without start-up.
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "filters/auth/auth_filter.h"
#include "filters/filter_chain.h"
#include "filters/headers/header_rules_filter.h"
#include "filters/rate_limit/rate_limit_filter.h"
#include "filters/registry.h"
#include "filters/shed/shed_filter.h"
#include "proxy/config/config.h"
#include "proxy/config/steering_config.h"
#include "proxy/forward/header_rewriter.h"
#include "proxy/forward/request_normalizer.h"
#include "proxy/forward/router.h"
#include "proxy/forward/steering_inputs.h"
#include "proxy/http/http1_parser.h"
#include "proxy/http/http1_serializer.h"
#include "steering/decision.h"
#include "steering/steering_table.h"

namespace sluice {
namespace {

// base64url("0123456789abcdef0123456789abcdef"): the key that signed kToken.
constexpr char kJwks[] =
    R"({"keys":[{"kty":"oct","kid":"k1","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]})";
// header {"alg":"HS256","kid":"k1"}, payload {"sub":"member-42","exp":1900000000,"tier":"gold"}
constexpr char kToken[] =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0."
    "eyJzdWIiOiJtZW1iZXItNDIiLCJleHAiOjE5MDAwMDAwMDAsInRpZXIiOiJnb2xkIn0."
    "xT-2FATGt5FmVGHOl0pkHstmlV9Yw0BSbMhuMjx83XM";

// What h2load --h1 sends (nghttp2 1.52), with compare.py's Authorization field.
const std::string kRequest = std::string(
                                 "GET / HTTP/1.1\r\n"
                                 "Host: 127.0.0.1:8080\r\n"
                                 "user-agent: h2load nghttp2/1.52.0\r\n"
                                 "Authorization: Bearer ") +
                             kToken + "\r\n\r\n";

// What the benches' origin (nginx 1.22, `return 200 "hello world\n"`) answers; the body too,
// so that each parse ends at a message boundary.
constexpr char kResponse[] =
    "HTTP/1.1 200 OK\r\n"
    "Server: nginx/1.22.1\r\n"
    "Date: Wed, 02 Dec 2026 23:00:00 GMT\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Length: 12\r\n"
    "Connection: keep-alive\r\n"
    "\r\n"
    "hello world\n";

// The head as it stands after parsing and normalising kRequest (what later stages start from).
class ParsedRequest : public Http1Parser::Handler {
 public:
  ParsedRequest() : parser_(Http1Parser::Mode::kRequest, Http1Limits{}, this) {}
  // Parses kRequest; false if it did not complete.
  bool Parse() {
    Http1Parser::Result r = parser_.Execute(kRequest.data(), kRequest.size());
    parser_.ResumeAfterMessage();
    return r.outcome == Http1Parser::Outcome::kMessageComplete && head_ != nullptr;
  }
  bool ParseAndNormalise() { return Parse() && NormalizeRequest(head_.get(), {}).ok(); }
  RequestHeadPtr& head() { return head_; }

  void OnHead() override { head_ = parser_.TakeRequest(); }
  void OnBody(std::string_view) override {}
  void OnMessageComplete() override {}

 private:
  Http1Parser parser_;
  RequestHeadPtr head_;
};

class ParsedResponse : public Http1Parser::Handler {
 public:
  ParsedResponse() : parser_(Http1Parser::Mode::kResponse, Http1Limits{}, this) {}
  bool Parse() {
    parser_.ExpectResponse(HttpMethod::kGet, false);
    Http1Parser::Result r = parser_.Execute(kResponse, sizeof(kResponse) - 1);
    parser_.ResumeAfterMessage();
    return r.outcome == Http1Parser::Outcome::kMessageComplete && head_ != nullptr;
  }
  ResponseHeadPtr& head() { return head_; }

  void OnHead() override { head_ = parser_.TakeResponse(); }
  void OnBody(std::string_view) override {}
  void OnMessageComplete() override {}

 private:
  Http1Parser parser_;
  ResponseHeadPtr head_;
};

void BM_Stage_Parse(benchmark::State& state) {
  ParsedRequest request;
  ParsedResponse response;
  for (auto _ : state) {
    if (!request.Parse() || !response.Parse()) {
      state.SkipWithError("parse failed");
      break;
    }
    request.head().reset();  // back to the pool, as after a request
    response.head().reset();
  }
}

void BM_Stage_Normalise(benchmark::State& state) {
  ParsedRequest request;
  if (!request.Parse()) return state.SkipWithError("parse failed");
  RequestHead& head = *request.head();
  for (auto _ : state) {  // it writes host, path and query from the target: the same each time
    RequestVerdict verdict = NormalizeRequest(&head, {});
    benchmark::DoNotOptimize(verdict);
  }
}

void BM_Stage_Route(benchmark::State& state) {
  ParsedRequest request;
  if (!request.ParseAndNormalise()) return state.SkipWithError("parse failed");
  std::vector<RouteConfig> routes(1);
  routes[0].cluster = "origin";
  Router router(routes);
  const RequestHead& head = *request.head();
  for (auto _ : state) {
    const RouteConfig* route = router.Match(head.host, head.path);
    benchmark::DoNotOptimize(route);
  }
}

// range(0): 0 = the quick start's chain (no filter), 1 = sluice-full's.
void BM_Stage_Filters(benchmark::State& state) {
  KeySlots slots;
  ConcurrencyConfig concurrency;
  concurrency.algorithm = ConcurrencyConfig::Algorithm::kGradient2;
  concurrency.initial_limit = 1000;
  concurrency.min_limit = 1000;
  concurrency.max_limit = 5000;
  concurrency.partitions = {{"critical", 0.9}, {"bulk", 0.1}};
  ConcurrencyLimiter limiter(concurrency, 1, SystemClock());
  FilterEnvironment env;
  env.limiter = &limiter;
  env.key_slots = &slots;
  FilterChain chain;
  if (state.range(0) == 1) {
    AuthConfig auth;
    auth.jwks_file = "bench.json";
    auth.jwks = *JsonWebKeySet::Parse(kJwks);
    auth.policy.require_exp = true;
    ShedConfig shed;
    shed.classify = {{ShedRule::Source::kClaim, "tier", "gold", "critical"}};
    RateLimitConfig rate;
    rate.rate_per_second = 1e6;
    rate.burst = 1e6;
    HeaderRulesConfig headers;
    headers.request.set = {{"X-Edge", "sluice"}};
    headers.request.remove = {"X-Debug"};
    headers.response.set = {{"Cache-Control", "no-store"}};
    for (const FilterSpec& spec :
         {MakeFilterSpec("auth", std::make_shared<AuthConfig>(auth)),
          MakeFilterSpec("shed", std::make_shared<ShedConfig>(shed)),
          MakeFilterSpec("rate_limit", std::make_shared<RateLimitConfig>(rate)),
          MakeFilterSpec("headers", std::make_shared<HeaderRulesConfig>(headers))}) {
      chain.Add(CreateFilter(spec, env));
    }
  }
  ParsedRequest parsed;
  ParsedResponse parsed_response;
  if (!parsed.ParseAndNormalise() || !parsed_response.Parse()) {
    return state.SkipWithError("parse failed");
  }
  ResponseHead& response = *parsed_response.head();
  FilterRequest request;
  request.head = parsed.head().get();
  request.context.client = *SocketAddress::Parse("127.0.0.1:40000");
  FilterRun run;
  FilterOutcome outcome;
  outcome.status = 200;
  for (auto _ : state) {  // the header rules set and remove: the same fields each time
    request.context.identity = Identity{};
    run.Start(&chain);
    if (run.RunRequestHead(request) != FilterStatus::kContinue) {
      state.SkipWithError("the chain refused the request");
      break;
    }
    run.RunResponseHead(request, response);
    run.Complete(request, outcome);
  }
}

// sluice-full's steering: two regions, the local one serving its own; the member is the
// verified claim (sub).
void BM_Stage_Steering(benchmark::State& state) {
  SteeringConfig config;
  config.enabled = true;
  config.spec.local_region = "us-east-1";
  RegionSpec east;
  east.name = "us-east-1";
  RegionSpec west;
  west.name = "us-west-2";
  config.spec.regions = {east, west};
  absl::StatusOr<SteeringTablePtr> table = BuildSteeringTable(config.spec, 1);
  if (!table.ok()) return state.SkipWithError("steering table refused");
  config.table = *table;
  config.member_id = {MemberIdSource{}};  // the claim
  ParsedRequest parsed;
  if (!parsed.ParseAndNormalise()) return state.SkipWithError("parse failed");
  Identity identity;
  identity.method = Identity::Method::kJwt;
  identity.member_id = "member-42";
  identity.tier = "gold";
  RequestClient client;
  client.address = *SocketAddress::Parse("127.0.0.1:40000");
  client.cohort_address = client.address;
  MemberIdBuffer buffer;
  for (auto _ : state) {
    MemberRequest member;
    ReadSteeringInputs(config, *config.table, {}, *parsed.head(), identity, client, &buffer,
                       &member);
    SteeringDecision decision = Decide(*config.table, member);
    benchmark::DoNotOptimize(decision);
  }
}

// The upstream head gains a request id, X-Forwarded-For and Via, so every iteration starts from
// a copy of the parsed fields; range(0) = 1 runs only that copy, which
// bench/request_stages.py subtracts (PauseTiming would add clock reads to the instructions).
void BM_Stage_Serialise(benchmark::State& state) {
  const bool copy_only = state.range(0) == 1;
  ParsedRequest parsed;
  ParsedResponse parsed_response;
  if (!parsed.ParseAndNormalise() || !parsed_response.Parse()) {
    return state.SkipWithError("parse failed");
  }
  RequestHead& head = *parsed.head();
  ResponseHead& response = *parsed_response.head();
  const RequestHead request_fields = head;
  const ResponseHead response_fields = response;
  ProxyOptions options;
  DownstreamInfo info;
  info.client = *SocketAddress::Parse("127.0.0.1:40000");
  std::string upstream;
  std::string downstream;
  uint64_t n = 0;
  for (auto _ : state) {
    head.headers = request_fields.headers;
    response.headers = response_fields.headers;
    if (copy_only) {
      benchmark::DoNotOptimize(head.headers);
      continue;
    }
    ++n;
    PrepareUpstreamRequest(head, options, info, n, n * 7);
    upstream.clear();
    SerializeUpstreamRequest(head, "127.0.0.1:9000", &upstream);
    PrepareDownstreamResponse(response, options);
    downstream.clear();
    AppendStatusLine(&downstream, response.status, response.reason);
    AppendFields(&downstream, response.headers);
    downstream.append("Content-Length: ");
    AppendDecimal(&downstream, response.content_length);
    downstream.append("\r\n\r\n");
    benchmark::DoNotOptimize(upstream.data());
    benchmark::DoNotOptimize(downstream.data());
  }
}

// Registered here rather than with BENCHMARK() so that SLUICE_STAGE_ITERATIONS can fix the
// iteration count.
const bool kRegistered = [] {
  const char* fixed = std::getenv("SLUICE_STAGE_ITERATIONS");
  const int64_t iterations = fixed != nullptr ? std::atoll(fixed) : 0;
  std::vector<benchmark::internal::Benchmark*> all = {
      benchmark::RegisterBenchmark("BM_Stage_Parse", BM_Stage_Parse),
      benchmark::RegisterBenchmark("BM_Stage_Normalise", BM_Stage_Normalise),
      benchmark::RegisterBenchmark("BM_Stage_Route", BM_Stage_Route),
      benchmark::RegisterBenchmark("BM_Stage_Filters", BM_Stage_Filters)
          ->ArgName("full")
          ->Arg(0)
          ->Arg(1),
      benchmark::RegisterBenchmark("BM_Stage_Steering", BM_Stage_Steering),
      benchmark::RegisterBenchmark("BM_Stage_Serialise", BM_Stage_Serialise)
          ->ArgName("copy_only")
          ->Arg(0)
          ->Arg(1),
  };
  if (iterations > 0) {
    for (benchmark::internal::Benchmark* b : all) b->Iterations(iterations);
  }
  return true;
}();

}  // namespace
}  // namespace sluice
