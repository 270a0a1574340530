// routes[].filters[].auth: JWT bearer tokens (JWKS keys from a file) and API keys.
#include "absl/strings/str_format.h"
#include "common/http_headers.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/yaml_field.h"
#include "filters/auth/auth_filter.h"
#include "filters/registry.h"

namespace sluice {
namespace {

absl::StatusOr<std::shared_ptr<const FilterConfig>> Parse(const Field& f,
                                                          const FilterParseContext& context) {
  const std::string& base_dir = context.base_dir;
  auto out = std::make_shared<AuthConfig>();
  RETURN_IF_ERROR(f.ExpectMap({"jwks_file", "issuer", "audience", "leeway", "require_exp", "claims",
                               "api_keys", "api_key_header", "optional", "realm", "cache_size"}));
  if (Field jwks = f.Child("jwks_file"); jwks.present()) {
    ASSIGN_OR_RETURN(std::string path, jwks.Scalar());
    if (!path.empty() && path.front() != '/' && !base_dir.empty()) path = base_dir + "/" + path;
    absl::StatusOr<std::shared_ptr<const JsonWebKeySet>> keys = JsonWebKeySet::Load(path);
    if (!keys.ok()) return jwks.Error(keys.status());
    out->jwks_file = path;
    out->jwks = *keys;
  }
  RETURN_IF_ERROR(f.Child("issuer").Read(&out->policy.issuer));
  if (Field aud = f.Child("audience"); aud.present()) {
    if (absl::StatusOr<std::vector<Field>> items = aud.Sequence(); items.ok()) {
      for (const Field& item : *items) {
        ASSIGN_OR_RETURN(std::string a, item.Scalar());
        out->policy.audiences.push_back(a);
      }
    } else {
      ASSIGN_OR_RETURN(std::string a, aud.Scalar());
      out->policy.audiences.push_back(a);
    }
  }
  absl::Duration leeway = absl::Seconds(out->policy.leeway_seconds);
  RETURN_IF_ERROR(f.Child("leeway").ReadDuration(&leeway, absl::ZeroDuration()));
  if (leeway > absl::Minutes(5)) {
    return f.Child("leeway").Error("at most 5m: it stretches every token's lifetime by as much");
  }
  out->policy.leeway_seconds = absl::ToInt64Seconds(leeway);
  RETURN_IF_ERROR(f.Child("require_exp").Read(&out->policy.require_exp));
  if (Field claims = f.Child("claims"); claims.present()) {
    RETURN_IF_ERROR(claims.ExpectMap({"member", "home_region", "tier"}));
    RETURN_IF_ERROR(claims.Child("member").Read(&out->policy.member_claim));
    RETURN_IF_ERROR(claims.Child("home_region").Read(&out->policy.home_region_claim));
    RETURN_IF_ERROR(claims.Child("tier").Read(&out->policy.tier_claim));
    if (out->policy.member_claim.empty()) return claims.Child("member").Error("must not be empty");
  }
  if (Field keys = f.Child("api_keys"); keys.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, keys.Sequence());
    for (const Field& item : items) {
      RETURN_IF_ERROR(item.ExpectMap({"name", "sha256"}));
      ApiKey key;
      Field name = item.Child("name");
      if (!name.present()) return name.Error("required");
      RETURN_IF_ERROR(name.Read(&key.name));
      Field hash = item.Child("sha256");
      RETURN_IF_ERROR(hash.ReadSha256Hex("key", &key.sha256));
      out->api_keys.push_back(std::move(key));
    }
  }
  if (out->jwks_file.empty() && out->api_keys.empty()) {
    return f.Error("needs jwks_file, api_keys or both");
  }
  RETURN_IF_ERROR(f.Child("api_key_header").Read(&out->api_key_header));
  if (!IsHttpToken(out->api_key_header))
    return f.Child("api_key_header").Error("not a header name");
  RETURN_IF_ERROR(f.Child("optional").Read(&out->optional));
  RETURN_IF_ERROR(f.Child("realm").Read(&out->realm));
  for (char c : out->realm) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return f.Child("realm").Error("must not contain quotes, backslashes or control characters");
    }
  }
  RETURN_IF_ERROR(f.Child("cache_size").ReadInt(&out->cache_size, 1, 10000000));
  return out;
}

std::unique_ptr<Filter> Create(const FilterConfig& filter_config, const FilterEnvironment& env) {
  const auto& config = static_cast<const AuthConfig&>(filter_config);
  KeySlot* slot = nullptr;
  if (!config.jwks_file.empty() && env.key_slots) {
    slot = env.key_slots->Get(config.jwks_file);
    slot->Install(config.jwks);
  }
  return std::make_unique<AuthFilter>(config, slot, env.clock ? *env.clock : SystemClock());
}

std::vector<std::string> KeyFiles(const FilterConfig& config) {
  const auto& auth = static_cast<const AuthConfig&>(config);
  if (auth.jwks_file.empty()) return {};
  return {auth.jwks_file};
}

}  // namespace

extern const FilterRegistration kAuthFilterRegistration = {
    .name = AuthFilter::kName,
    .parse = Parse,
    .create = Create,
    .key_files = KeyFiles,
};

}  // namespace sluice
