#include "filters/auth/jwt.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cmath>
#include <memory>

#include "nlohmann/json.hpp"

namespace sluice {
namespace {

using Json = nlohmann::json;

JwtResult Fail(JwtError error) {
  JwtResult r;
  r.error = error;
  return r;
}

bool VerifyDigest(EVP_PKEY* key, std::string_view data, const unsigned char* sig, size_t sig_len) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx) return false;
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, sig, sig_len, reinterpret_cast<const unsigned char*>(data.data()),
                             data.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

bool VerifySignature(const JsonWebKey& key, std::string_view signing_input,
                     const std::string& signature) {
  switch (key.algorithm) {
    case JwtAlgorithm::kHs256: {
      if (signature.size() != 32) return false;
      unsigned char mac[EVP_MAX_MD_SIZE];
      unsigned int mac_len = 0;
      if (!HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()),
                reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
                mac, &mac_len) ||
          mac_len != 32) {
        return false;
      }
      return CRYPTO_memcmp(mac, signature.data(), 32) == 0;
    }
    case JwtAlgorithm::kRs256:
      return VerifyDigest(key.public_key.get(), signing_input,
                          reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size());
    case JwtAlgorithm::kEs256: {
      // JWS carries r || s (32 bytes each); OpenSSL verifies the DER form.
      if (signature.size() != 64) return false;
      const auto* raw = reinterpret_cast<const unsigned char*>(signature.data());
      ECDSA_SIG* sig = ECDSA_SIG_new();
      BIGNUM* r = BN_bin2bn(raw, 32, nullptr);
      BIGNUM* s = BN_bin2bn(raw + 32, 32, nullptr);
      if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return false;
      }
      unsigned char* der = nullptr;
      int der_len = i2d_ECDSA_SIG(sig, &der);
      ECDSA_SIG_free(sig);
      if (der_len <= 0) return false;
      bool ok =
          VerifyDigest(key.public_key.get(), signing_input, der, static_cast<size_t>(der_len));
      OPENSSL_free(der);
      return ok;
    }
  }
  return false;
}

// A NumericDate claim as whole seconds; false if present but not a number.
bool ReadTime(const Json& claims, const char* name, int64_t* out, bool* present) {
  auto it = claims.find(name);
  *present = it != claims.end();
  if (!*present) return true;
  if (!it->is_number()) return false;
  double value = it->get<double>();
  if (!std::isfinite(value) || value < 0 || value > 1e15) return false;
  *out = static_cast<int64_t>(value);
  return true;
}

// A claim as text: strings as they are, integers in decimal; empty otherwise.
std::string ReadText(const Json& claims, const std::string& name) {
  if (name.empty()) return {};
  auto it = claims.find(name);
  if (it == claims.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return {};
}

}  // namespace

const char* JwtErrorText(JwtError error) {
  switch (error) {
    case JwtError::kNone:
      return "ok";
    case JwtError::kMalformed:
      return "malformed token";
    case JwtError::kUnsupportedAlgorithm:
      return "unsupported algorithm";
    case JwtError::kUnknownKey:
      return "unknown signing key";
    case JwtError::kBadSignature:
      return "invalid signature";
    case JwtError::kExpired:
      return "token expired";
    case JwtError::kNotYetValid:
      return "token not yet valid";
    case JwtError::kWrongIssuer:
      return "wrong issuer";
    case JwtError::kWrongAudience:
      return "wrong audience";
    case JwtError::kMissingClaim:
      return "required claim missing";
  }
  return "?";
}

JwtResult VerifyJwt(std::string_view token, const JsonWebKeySet& keys, const JwtPolicy& policy,
                    int64_t now) {
  size_t first = token.find('.');
  size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos ||
      token.size() > 16384) {
    return Fail(JwtError::kMalformed);
  }
  std::string_view signing_input = token.substr(0, second);
  std::string header_text, payload_text, signature;
  if (!DecodeBase64Url(token.substr(0, first), &header_text) ||
      !DecodeBase64Url(token.substr(first + 1, second - first - 1), &payload_text) ||
      !DecodeBase64Url(token.substr(second + 1), &signature)) {
    return Fail(JwtError::kMalformed);
  }
  Json header = Json::parse(header_text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return Fail(JwtError::kMalformed);
  auto alg = header.find("alg");
  JwtAlgorithm algorithm;
  if (alg == header.end() || !alg->is_string() ||
      !ParseJwtAlgorithm(alg->get_ref<const std::string&>(), &algorithm)) {
    return Fail(JwtError::kUnsupportedAlgorithm);
  }
  if (header.contains("crit")) return Fail(JwtError::kUnsupportedAlgorithm);  // extensions we lack
  std::string kid;
  if (auto it = header.find("kid"); it != header.end()) {
    if (!it->is_string()) return Fail(JwtError::kMalformed);
    kid = it->get<std::string>();
  }
  const JsonWebKey* key = keys.Find(kid);
  if (!key) return Fail(JwtError::kUnknownKey);
  // The key decides the algorithm: an RS256 public key is never used as an HS256 secret.
  if (key->algorithm != algorithm) return Fail(JwtError::kUnsupportedAlgorithm);
  if (!VerifySignature(*key, signing_input, signature)) return Fail(JwtError::kBadSignature);

  // Only a token with a valid signature gets its claims read.
  Json claims = Json::parse(payload_text, nullptr, /*allow_exceptions=*/false);
  if (claims.is_discarded() || !claims.is_object()) return Fail(JwtError::kMalformed);
  int64_t exp = 0, nbf = 0;
  bool has_exp = false, has_nbf = false;
  if (!ReadTime(claims, "exp", &exp, &has_exp) || !ReadTime(claims, "nbf", &nbf, &has_nbf)) {
    return Fail(JwtError::kMalformed);
  }
  if (!has_exp && policy.require_exp) return Fail(JwtError::kMissingClaim);
  if (has_exp && now > exp + policy.leeway_seconds) return Fail(JwtError::kExpired);
  if (has_nbf && now < nbf - policy.leeway_seconds) return Fail(JwtError::kNotYetValid);
  if (!policy.issuer.empty()) {
    auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() || *iss != policy.issuer) {
      return Fail(JwtError::kWrongIssuer);
    }
  }
  if (!policy.audiences.empty()) {
    auto aud = claims.find("aud");
    bool match = false;
    auto matches = [&](const Json& value) {
      if (!value.is_string()) return false;
      for (const std::string& a : policy.audiences) {
        if (value == a) return true;
      }
      return false;
    };
    if (aud != claims.end()) {
      if (aud->is_array()) {
        for (const Json& value : *aud) match = match || matches(value);
      } else {
        match = matches(*aud);
      }
    }
    if (!match) return Fail(JwtError::kWrongAudience);
  }
  JwtResult result;
  result.token.member_id = ReadText(claims, policy.member_claim);
  if (result.token.member_id.empty()) return Fail(JwtError::kMissingClaim);
  result.token.home_region = ReadText(claims, policy.home_region_claim);
  result.token.tier = ReadText(claims, policy.tier_claim);
  if (has_exp) result.token.valid_until = exp + policy.leeway_seconds;
  return result;
}

}  // namespace sluice
