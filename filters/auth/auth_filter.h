// Authentication: a verified JWT bearer token (JWKS keys by kid) or a static API key, with
// the identity (member id, home region, tier) exposed to later filters and to steering.
//   - auth:
//       jwks_file: jwks.json             # relative to the configuration file
//       issuer: https://login.example.com
//       audience: [sluice]
//       leeway: 30s
//       claims: {member: sub, home_region: home_region, tier: tier}
//       api_keys: [{name: partner-a, sha256: <hex of the key's SHA-256>}]
//       api_key_header: x-api-key
//       optional: false                  # true: anonymous requests pass, bad credentials do not
// Failure answers 401 with WWW-Authenticate (RFC 6750). Verified tokens are cached per worker
// until they expire, so a signature is checked once per token, not once per request; the
// cache is emptied when the key set changes. API keys are stored hashed and compared in
// constant time. Credentials never appear in logs or answers.
#ifndef SLUICE_FILTERS_AUTH_AUTH_FILTER_H_
#define SLUICE_FILTERS_AUTH_AUTH_FILTER_H_

#include <array>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "common/clock.h"
#include "common/sha256.h"
#include "filters/auth/jwt.h"
#include "filters/auth/key_slots.h"
#include "filters/filter.h"
#include "filters/registry.h"

namespace sluice {

struct ApiKey {
  std::string name;
  Sha256Digest sha256{};
};

struct AuthConfig : FilterConfig {
  std::string jwks_file;                      // empty: no JWT
  std::shared_ptr<const JsonWebKeySet> jwks;  // loaded with the configuration
  JwtPolicy policy;
  std::vector<ApiKey> api_keys;
  std::string api_key_header = "x-api-key";
  bool optional = false;
  std::string realm = "sluice";
  uint32_t cache_size = 10000;  // verified tokens per worker
};

class AuthFilter final : public Filter {
 public:
  // `keys` (may be null without JWT) belongs to the worker and outlives the filter.
  AuthFilter(const AuthConfig& config, const KeySlot* keys, const Clock& clock);
  static constexpr std::string_view kName = "auth";
  std::string_view name() const override { return kName; }
  FilterStatus OnRequestHead(FilterRequest& request, FilterSlot& slot) override;

  size_t cached_tokens() const { return cache_.size(); }
  uint64_t signature_checks() const { return signature_checks_; }

 private:
  FilterStatus VerifyBearer(FilterRequest& request, std::string_view token);
  FilterStatus VerifyApiKey(FilterRequest& request, std::string_view key);
  FilterStatus Reject(FilterRequest& request, const char* error, const char* description);

  // The cache's hash: the token's last bytes, which are its signature's. Only verified tokens
  // are cached, and nobody but the issuer chooses a valid signature, so they spread the entries
  // as well as the whole token would (which is still compared); hashing all of a 300-byte
  // token was about 170 instructions a request.
  struct TokenTailHash {
    using is_transparent = void;
    static constexpr size_t kTail = 16;
    size_t operator()(std::string_view token) const {
      return absl::Hash<std::string_view>()(
          token.size() > kTail ? token.substr(token.size() - kTail) : token);
    }
  };
  struct TokenEq {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };

  AuthConfig config_;
  const KeySlot* keys_;
  const Clock& clock_;
  uint64_t cache_generation_ = 0;
  absl::flat_hash_map<std::string, std::shared_ptr<const VerifiedToken>, TokenTailHash, TokenEq>
      cache_;
  uint64_t signature_checks_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_AUTH_AUTH_FILTER_H_
