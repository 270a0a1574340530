// Fuzzes JWT and JWKS parsing. The first byte picks the target: a JWKS document, or a token
// checked against a fixed key set (HS256 with a known secret, so the fuzzer can also reach the
// claims of validly signed tokens through the corpus). Invariants: no crash, no sanitizer
// report, and a token accepted always names a member.
#include <cstdlib>
#include <string>

#include "filters/auth/jwks.h"
#include "filters/auth/jwt.h"

namespace {

const sluice::JsonWebKeySet& Keys() {
  // k = base64url("0123456789abcdef0123456789abcdef")
  static const auto keys = *sluice::JsonWebKeySet::Parse(
      R"({"keys":[{"kty":"oct","kid":"k1","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]})");
  return *keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    auto set = sluice::JsonWebKeySet::Parse(input);
    if (set.ok() && (*set)->size() == 0) std::abort();
    return 0;
  }
  sluice::JwtPolicy policy;
  policy.require_exp = (data[0] & 2) != 0;
  sluice::JwtResult result = sluice::VerifyJwt(input, Keys(), policy, 1800000000);
  if (result.ok() && result.token.member_id.empty()) std::abort();
  return 0;
}
