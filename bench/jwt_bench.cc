// JWT verification: a full check of a token (signature with OpenSSL, then the claims) for each
// algorithm sluice accepts, and the auth filter's answer for a token it has verified before
// (the per-worker cache that spares RS256 on every request).
#include <string>

#include "benchmark/benchmark.h"
#include "filters/auth/auth_filter.h"
#include "filters/auth/jwt.h"
#include "filters/filter_chain.h"
#include "filters/registry.h"
#include "tests/filters/auth/jwt_test_util.h"

namespace sluice {
namespace {

constexpr int64_t kNow = 1800000000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-hs256";

struct Keys {
  Pkey rsa = NewRsaKey();
  Pkey ec = NewEcKey();
  std::shared_ptr<const JsonWebKeySet> set = *JsonWebKeySet::Parse(
      Jwks({RsaJwk(rsa.get(), "rsa1"), EcJwk(ec.get(), "ec1"), OctJwk(kSecret, "hs1")}));
  static std::string Claims() {
    return "{\"sub\":\"member-42\",\"iss\":\"https://login.example\",\"aud\":\"sluice\","
           "\"exp\":" +
           std::to_string(4000000000LL) + ",\"tier\":\"gold\"}";  // 2096: valid for the filter too
  }
  std::string Token(int algorithm) {
    switch (algorithm) {
      case 0:
        return SignJwt("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", Claims(), nullptr, kSecret);
      case 1:
        return SignJwt("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", Claims(), rsa.get());
      default:
        return SignJwt("{\"alg\":\"ES256\",\"kid\":\"ec1\"}", Claims(), ec.get());
    }
  }
};

Keys& SharedKeys() {
  static Keys* keys = new Keys();
  return *keys;
}

void BM_VerifyJwtUncached(benchmark::State& state) {
  Keys& keys = SharedKeys();
  const std::string token = keys.Token(static_cast<int>(state.range(0)));
  JwtPolicy policy;
  policy.issuer = "https://login.example";
  policy.audiences = {"sluice"};
  for (auto _ : state) {
    JwtResult result = VerifyJwt(token, *keys.set, policy, kNow);
    if (!result.ok()) {
      state.SkipWithError(JwtErrorText(result.error));
      break;
    }
    benchmark::DoNotOptimize(result);
  }
  static const char* kNames[] = {"HS256", "RS256", "ES256"};
  state.SetLabel(kNames[state.range(0)]);
}
BENCHMARK(BM_VerifyJwtUncached)->Arg(0)->Arg(1)->Arg(2);

// The auth filter alone, answering from its cache: an RS256 token seen before.
void BM_AuthFilterCachedRs256(benchmark::State& state) {
  Keys& keys = SharedKeys();
  KeySlots slots;
  AuthConfig auth;
  auth.jwks_file = "bench.json";
  auth.jwks = keys.set;
  auth.policy.issuer = "https://login.example";
  auth.policy.audiences = {"sluice"};
  FilterEnvironment env;
  env.key_slots = &slots;
  FilterChain chain;
  chain.Add(CreateFilter(MakeFilterSpec("auth", std::make_shared<AuthConfig>(auth)), env));
  const std::string authorization = "Bearer " + keys.Token(1);
  RequestHeadPtr head = MakeRequestHead();
  FilterRequest request;
  request.head = head.get();
  FilterRun run;
  FilterOutcome outcome;
  outcome.status = 200;
  for (auto _ : state) {
    head->headers.Clear();
    head->headers.Add("Authorization", authorization);
    request.context.identity = Identity{};
    run.Start(&chain);
    if (run.RunRequestHead(request) != FilterStatus::kContinue) {
      state.SkipWithError("the token was refused");
      break;
    }
    run.Complete(request, outcome);
  }
}
BENCHMARK(BM_AuthFilterCachedRs256);

}  // namespace
}  // namespace sluice
