#include "filters/auth/jwks.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace sluice {
namespace {

using Json = nlohmann::json;

struct BnDeleter {
  void operator()(BIGNUM* bn) const { BN_free(bn); }
};
struct ParamBuildDeleter {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};

std::shared_ptr<EVP_PKEY> FromParams(const char* type, OSSL_PARAM_BLD* build) {
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(build));
  if (!params) return nullptr;
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(
      EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    return nullptr;
  }
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

// Reads a required base64url member of a key object.
absl::StatusOr<std::string> Member(const Json& key, const char* name, const std::string& kid) {
  auto it = key.find(name);
  std::string decoded;
  if (it == key.end() || !it->is_string() ||
      !DecodeBase64Url(it->get_ref<const std::string&>(), &decoded) || decoded.empty()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("key \"%s\": \"%s\" missing or not base64url", kid, name));
  }
  return decoded;
}

absl::StatusOr<std::shared_ptr<EVP_PKEY>> RsaKey(const Json& key, const std::string& kid) {
  absl::StatusOr<std::string> n = Member(key, "n", kid);
  if (!n.ok()) return n.status();
  absl::StatusOr<std::string> e = Member(key, "e", kid);
  if (!e.ok()) return e.status();
  std::unique_ptr<BIGNUM, BnDeleter> bn_n(BN_bin2bn(
      reinterpret_cast<const unsigned char*>(n->data()), static_cast<int>(n->size()), nullptr));
  std::unique_ptr<BIGNUM, BnDeleter> bn_e(BN_bin2bn(
      reinterpret_cast<const unsigned char*>(e->data()), static_cast<int>(e->size()), nullptr));
  if (!bn_n || !bn_e) return absl::InvalidArgumentError("out of memory");
  if (BN_num_bits(bn_n.get()) < 2048 || BN_num_bits(bn_n.get()) > 8192) {
    return absl::InvalidArgumentError(
        absl::StrFormat("key \"%s\": RSA keys must have 2048 to 8192 bits", kid));
  }
  // A public exponent is odd, at least 3 and (in every real key) at most 32 bits: 65537.
  // Anything else is a forged or broken key, and a huge one costs each verification dearly.
  if (!BN_is_odd(bn_e.get()) || BN_num_bits(bn_e.get()) > 32 || BN_get_word(bn_e.get()) < 3) {
    return absl::InvalidArgumentError(
        absl::StrFormat("key \"%s\": the RSA exponent must be odd, from 3 to 2^32", kid));
  }
  std::unique_ptr<OSSL_PARAM_BLD, ParamBuildDeleter> build(OSSL_PARAM_BLD_new());
  if (!build || !OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return absl::InvalidArgumentError("out of memory");
  }
  std::shared_ptr<EVP_PKEY> pkey = FromParams("RSA", build.get());
  if (!pkey) return absl::InvalidArgumentError(absl::StrFormat("key \"%s\": invalid RSA key", kid));
  return pkey;
}

absl::StatusOr<std::shared_ptr<EVP_PKEY>> EcKey(const Json& key, const std::string& kid) {
  auto crv = key.find("crv");
  if (crv == key.end() || !crv->is_string() || *crv != "P-256") {
    return absl::InvalidArgumentError(absl::StrFormat("key \"%s\": only the P-256 curve", kid));
  }
  absl::StatusOr<std::string> x = Member(key, "x", kid);
  if (!x.ok()) return x.status();
  absl::StatusOr<std::string> y = Member(key, "y", kid);
  if (!y.ok()) return y.status();
  if (x->size() != 32 || y->size() != 32) {
    return absl::InvalidArgumentError(
        absl::StrFormat("key \"%s\": P-256 coordinates are 32 bytes", kid));
  }
  std::string point = "\x04" + *x + *y;  // uncompressed
  std::unique_ptr<OSSL_PARAM_BLD, ParamBuildDeleter> build(OSSL_PARAM_BLD_new());
  if (!build ||
      !OSSL_PARAM_BLD_push_utf8_string(build.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(build.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size())) {
    return absl::InvalidArgumentError("out of memory");
  }
  std::shared_ptr<EVP_PKEY> pkey = FromParams("EC", build.get());
  if (!pkey) {
    return absl::InvalidArgumentError(absl::StrFormat("key \"%s\": not a point on P-256", kid));
  }
  return pkey;
}

}  // namespace

bool ParseJwtAlgorithm(std::string_view name, JwtAlgorithm* out) {
  if (name == "HS256") {
    *out = JwtAlgorithm::kHs256;
  } else if (name == "RS256") {
    *out = JwtAlgorithm::kRs256;
  } else if (name == "ES256") {
    *out = JwtAlgorithm::kEs256;
  } else {
    return false;
  }
  return true;
}

absl::StatusOr<std::shared_ptr<const JsonWebKeySet>> JsonWebKeySet::Parse(std::string_view text) {
  Json json = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError("not a JSON object");
  }
  auto keys = json.find("keys");
  if (keys == json.end() || !keys->is_array()) {
    return absl::InvalidArgumentError("no \"keys\" array");
  }
  auto set = std::make_shared<JsonWebKeySet>();
  for (const Json& key : *keys) {
    if (!key.is_object()) return absl::InvalidArgumentError("a key is not a JSON object");
    auto kty = key.find("kty");
    if (kty == key.end() || !kty->is_string()) {
      return absl::InvalidArgumentError("a key without \"kty\"");
    }
    JsonWebKey out;
    if (auto kid = key.find("kid"); kid != key.end() && kid->is_string()) {
      out.kid = kid->get<std::string>();
    }
    if (auto use = key.find("use"); use != key.end() && use->is_string() && *use != "sig") {
      continue;  // an encryption key: not ours to use
    }
    const std::string& type = kty->get_ref<const std::string&>();
    if (type == "RSA") {
      out.algorithm = JwtAlgorithm::kRs256;
      absl::StatusOr<std::shared_ptr<EVP_PKEY>> pkey = RsaKey(key, out.kid);
      if (!pkey.ok()) return pkey.status();
      out.public_key = *pkey;
    } else if (type == "EC") {
      out.algorithm = JwtAlgorithm::kEs256;
      absl::StatusOr<std::shared_ptr<EVP_PKEY>> pkey = EcKey(key, out.kid);
      if (!pkey.ok()) return pkey.status();
      out.public_key = *pkey;
    } else if (type == "oct") {
      out.algorithm = JwtAlgorithm::kHs256;
      absl::StatusOr<std::string> secret = Member(key, "k", out.kid);
      if (!secret.ok()) return secret.status();
      if (secret->size() < 32) {
        return absl::InvalidArgumentError(
            absl::StrFormat("key \"%s\": HS256 secrets must have at least 32 bytes", out.kid));
      }
      out.secret = *secret;
    } else {
      continue;  // OKP and others: not supported, not fatal
    }
    if (auto alg = key.find("alg"); alg != key.end()) {
      JwtAlgorithm declared;
      if (!alg->is_string() || !ParseJwtAlgorithm(alg->get_ref<const std::string&>(), &declared) ||
          declared != out.algorithm) {
        return absl::InvalidArgumentError(
            absl::StrFormat("key \"%s\": \"alg\" does not fit its key type", out.kid));
      }
    }
    for (const JsonWebKey& other : set->keys_) {
      if (other.kid == out.kid) {
        return absl::InvalidArgumentError(absl::StrFormat("kid \"%s\" is used twice", out.kid));
      }
    }
    set->keys_.push_back(std::move(out));
  }
  if (set->keys_.empty()) return absl::InvalidArgumentError("no usable signing key");
  static std::atomic<uint64_t> versions{0};
  set->version_ = ++versions;
  return std::shared_ptr<const JsonWebKeySet>(std::move(set));
}

absl::StatusOr<std::shared_ptr<const JsonWebKeySet>> JsonWebKeySet::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrFormat("cannot open %s", path));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::shared_ptr<const JsonWebKeySet>> set = Parse(text.str());
  if (!set.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s", path, std::string(set.status().message())));
  }
  return set;
}

const JsonWebKey* JsonWebKeySet::Find(std::string_view kid) const {
  if (kid.empty()) return keys_.size() == 1 ? &keys_[0] : nullptr;
  for (const JsonWebKey& key : keys_) {
    if (key.kid == kid) return &key;
  }
  return nullptr;
}

}  // namespace sluice
