// Verification of JSON Web Tokens (RFC 7519) in compact JWS form, signed with HS256, RS256 or
// ES256 by a key of a JsonWebKeySet. Pure function of the token, the keys, the policy and the
// time: no I/O, any thread. Never logs or returns the token.
#ifndef SLUICE_FILTERS_AUTH_JWT_H_
#define SLUICE_FILTERS_AUTH_JWT_H_

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "filters/auth/jwks.h"

namespace sluice {

struct JwtPolicy {
  std::string issuer;                  // the token's "iss" must equal it; empty: any
  std::vector<std::string> audiences;  // "aud" must contain one of them; empty: any
  int64_t leeway_seconds = 30;         // clock skew allowed for exp and nbf
  bool require_exp = true;
  std::string member_claim = "sub";
  std::string home_region_claim = "home_region";
  std::string tier_claim = "tier";
};

struct VerifiedToken {
  std::string member_id;
  std::string home_region;
  std::string tier;
  // Unix seconds after which the token stops being valid (exp + leeway).
  int64_t valid_until = std::numeric_limits<int64_t>::max();
};

enum class JwtError : uint8_t {
  kNone,
  kMalformed,
  kUnsupportedAlgorithm,  // "none", anything but HS256/RS256/ES256, or not the key's own
  kUnknownKey,
  kBadSignature,
  kExpired,
  kNotYetValid,
  kWrongIssuer,
  kWrongAudience,
  kMissingClaim,  // no exp (when required) or no member claim
};

const char* JwtErrorText(JwtError error);

struct JwtResult {
  JwtError error = JwtError::kNone;
  VerifiedToken token;
  bool ok() const { return error == JwtError::kNone; }
};

JwtResult VerifyJwt(std::string_view token, const JsonWebKeySet& keys, const JwtPolicy& policy,
                    int64_t now_unix_seconds);

}  // namespace sluice

#endif  // SLUICE_FILTERS_AUTH_JWT_H_
