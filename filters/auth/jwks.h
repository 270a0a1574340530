// JSON Web Key Sets (RFC 7517) for JWT verification: RSA (RS256, at least 2048 bits), EC
// P-256 (ES256) and symmetric (HS256) keys, chosen by kid. Immutable once parsed, so one set
// is shared read-only by every worker (OpenSSL 3 keys are safe for concurrent verification).
#ifndef SLUICE_FILTERS_AUTH_JWKS_H_
#define SLUICE_FILTERS_AUTH_JWKS_H_

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base64.h"

namespace sluice {

enum class JwtAlgorithm : uint8_t { kHs256, kRs256, kEs256 };

// "HS256" -> kHs256 ...; false for anything else (including "none").
bool ParseJwtAlgorithm(std::string_view name, JwtAlgorithm* out);

struct JsonWebKey {
  std::string kid;
  JwtAlgorithm algorithm;  // what this key verifies; a token naming another is refused
  std::string secret;      // HS256
  std::shared_ptr<EVP_PKEY> public_key;  // RS256 / ES256
};

class JsonWebKeySet {
 public:
  // Parses {"keys": [...]}. Keys of unsupported types are skipped; a set with no usable key,
  // or with a malformed supported key, is an error.
  static absl::StatusOr<std::shared_ptr<const JsonWebKeySet>> Parse(std::string_view json);
  static absl::StatusOr<std::shared_ptr<const JsonWebKeySet>> Load(const std::string& path);

  // The key with this kid; with an empty kid, the only key if there is exactly one.
  const JsonWebKey* Find(std::string_view kid) const;
  size_t size() const { return keys_.size(); }
  // Increases with every set parsed in this process: of two sets, the higher one is newer.
  uint64_t version() const { return version_; }

 private:
  std::vector<JsonWebKey> keys_;
  uint64_t version_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_AUTH_JWKS_H_
