// Cost of a full filter chain per request once warm: auth (a cached HS256 token), shed, rate
// limit and header rules, request and response side, plus completion. Also counts heap
// allocations: the target is none per request.
#include <string>

#include "bench/allocation_counter.h"
#include "benchmark/benchmark.h"
#include "filters/auth/auth_filter.h"
#include "filters/filter_chain.h"
#include "filters/headers/header_rules_filter.h"
#include "filters/rate_limit/rate_limit_filter.h"
#include "filters/registry.h"
#include "filters/shed/shed_filter.h"

namespace sluice {
namespace {

// base64url("0123456789abcdef0123456789abcdef") and a token it signed (exp in 2030).
constexpr char kJwks[] =
    R"({"keys":[{"kty":"oct","kid":"k1","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]})";

std::string HmacToken();

void BM_FullFilterChain(benchmark::State& state) {
  KeySlots slots;
  ConcurrencyConfig concurrency;
  concurrency.algorithm = ConcurrencyConfig::Algorithm::kGradient2;
  concurrency.initial_limit = 1000;
  concurrency.partitions = {{"critical", 0.9}, {"bulk", 0.1}};
  ConcurrencyLimiter limiter(concurrency, 1, SystemClock());

  AuthConfig auth;
  auth.jwks_file = "bench.json";
  auth.jwks = *JsonWebKeySet::Parse(kJwks);
  auth.policy.require_exp = true;
  ShedConfig shed;
  shed.classify = {{ShedRule::Source::kClaim, "tier", "gold", "critical"}};
  RateLimitConfig rate;
  rate.rate_per_second = 1e9;
  rate.burst = 1e9;
  HeaderRulesConfig headers;
  headers.request.remove = {"X-Debug"};
  headers.request.set = {{"X-Env", "prod"}};
  headers.request.add = {{"X-Edge", "sluice"}};
  headers.response.remove = {"Server"};
  headers.response.set = {{"Cache-Control", "no-store"}};

  FilterEnvironment env;
  env.limiter = &limiter;
  env.key_slots = &slots;
  FilterChain chain;
  for (const FilterSpec& spec :
       {MakeFilterSpec("auth", std::make_shared<AuthConfig>(auth)),
        MakeFilterSpec("shed", std::make_shared<ShedConfig>(shed)),
        MakeFilterSpec("rate_limit", std::make_shared<RateLimitConfig>(rate)),
        MakeFilterSpec("headers", std::make_shared<HeaderRulesConfig>(headers))}) {
    chain.Add(CreateFilter(spec, env));
  }

  const std::string authorization = "Bearer " + HmacToken();
  RequestHeadPtr head = MakeRequestHead();
  ResponseHeadPtr response = MakeResponseHead();
  FilterRequest request;
  request.head = head.get();
  request.context.client = *SocketAddress::Parse("192.0.2.10:40000");
  FilterRun run;
  FilterOutcome outcome;
  outcome.status = 200;
  uint64_t allocations_before = 0;
  int64_t warm = 0;
  for (auto _ : state) {
    if (warm++ == 100) allocations_before = AllocationCount();
    head->headers.Clear();
    head->headers.Add("Host", "www.example.com");
    head->headers.Add("Authorization", authorization);
    head->headers.Add("X-Debug", "1");
    response->headers.Clear();
    response->headers.Add("Server", "origin");
    request.context.identity = Identity{};
    run.Start(&chain);
    if (run.RunRequestHead(request) != FilterStatus::kContinue) {
      state.SkipWithError("the chain refused the request");
      break;
    }
    run.RunResponseHead(request, *response);
    run.Complete(request, outcome);
  }
  uint64_t allocations = AllocationCount() - allocations_before;
  state.counters["allocs_per_request"] =
      benchmark::Counter(static_cast<double>(allocations) / std::max<int64_t>(1, warm - 100));
}
BENCHMARK(BM_FullFilterChain);

std::string HmacToken() {
  // header {"alg":"HS256","kid":"k1"}, payload {"sub":"member-42","exp":1900000000,"tier":"gold"}
  return "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0."
         "eyJzdWIiOiJtZW1iZXItNDIiLCJleHAiOjE5MDAwMDAwMDAsInRpZXIiOiJnb2xkIn0."
         "xT-2FATGt5FmVGHOl0pkHstmlV9Yw0BSbMhuMjx83XM";
}

}  // namespace
}  // namespace sluice
