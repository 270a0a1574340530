// Keys and tokens made with OpenSSL inside the test, for JWT and auth tests.
#ifndef SLUICE_TESTS_FILTERS_JWT_TEST_UTIL_H_
#define SLUICE_TESTS_FILTERS_JWT_TEST_UTIL_H_

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <memory>
#include <string>

namespace sluice {

inline std::string B64Url(std::string_view in) {
  static constexpr char kTable[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kTable[(buffer >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kTable[(buffer << (6 - bits)) & 63]);
  return out;
}

using Pkey = std::shared_ptr<EVP_PKEY>;

inline Pkey NewRsaKey() {
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}), EVP_PKEY_free);
}
inline Pkey NewEcKey() {
  return Pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), EVP_PKEY_free);
}

inline std::string BnBytes(EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(key, name, &bn);
  std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
  BN_free(bn);
  return out;
}

inline std::string RsaJwk(EVP_PKEY* key, const std::string& kid) {
  return "{\"kty\":\"RSA\",\"kid\":\"" + kid + "\",\"n\":\"" +
         B64Url(BnBytes(key, OSSL_PKEY_PARAM_RSA_N)) + "\",\"e\":\"" +
         B64Url(BnBytes(key, OSSL_PKEY_PARAM_RSA_E)) + "\"}";
}

inline std::string EcJwk(EVP_PKEY* key, const std::string& kid) {
  unsigned char point[65];
  size_t len = 0;
  EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &len);
  std::string raw(reinterpret_cast<char*>(point), len);  // 0x04 || x || y
  return "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"" + kid + "\",\"x\":\"" +
         B64Url(raw.substr(1, 32)) + "\",\"y\":\"" + B64Url(raw.substr(33, 32)) + "\"}";
}

inline std::string OctJwk(const std::string& secret, const std::string& kid) {
  return "{\"kty\":\"oct\",\"kid\":\"" + kid + "\",\"k\":\"" + B64Url(secret) + "\"}";
}

inline std::string Jwks(std::initializer_list<std::string> keys) {
  std::string out = "{\"keys\":[";
  bool first = true;
  for (const std::string& k : keys) {
    if (!first) out += ",";
    out += k;
    first = false;
  }
  return out + "]}";
}

// header and payload are JSON; `key` signs for RS256/ES256, `secret` for HS256.
inline std::string SignJwt(const std::string& header, const std::string& payload, EVP_PKEY* key,
                           const std::string& secret = {}) {
  std::string input = B64Url(header) + "." + B64Url(payload);
  std::string signature;
  if (!key) {
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    signature.assign(reinterpret_cast<char*>(mac), len);
  } else {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key);
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string der(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    der.resize(len);
    EVP_MD_CTX_free(ctx);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
      // DER ECDSA signature to JWS r || s.
      const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
      ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
      unsigned char rs[64];
      BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32);
      BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32);
      ECDSA_SIG_free(sig);
      signature.assign(reinterpret_cast<char*>(rs), 64);
    } else {
      signature = der;
    }
  }
  return input + "." + B64Url(signature);
}

}  // namespace sluice

#endif  // SLUICE_TESTS_FILTERS_JWT_TEST_UTIL_H_
