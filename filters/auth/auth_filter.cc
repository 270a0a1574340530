#include "filters/auth/auth_filter.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/strings.h"

namespace sluice {

AuthFilter::AuthFilter(const AuthConfig& config, const KeySlot* keys, const Clock& clock)
    : config_(config), keys_(keys), clock_(clock) {
  config_.jwks.reset();  // the slot holds the keys in force; the configured copy may be stale
}

FilterStatus AuthFilter::OnRequestHead(FilterRequest& request, FilterSlot&) {
  const HeaderMap& headers = request.head->headers;
  // One credential is verified: a second one must not reach an origin that might read it
  // instead (duplicate Authorization fields are refused before the filters).
  if (!config_.api_keys.empty() && !EqualsIgnoreCase(config_.api_key_header, "authorization")) {
    int keys = headers.Count(config_.api_key_header);
    if (keys > 1 || (keys == 1 && headers.GetKind(HeaderKind::kAuthorization))) {
      return Reject(request, "invalid_request", "more than one credential");
    }
  }
  if (std::optional<std::string_view> authorization = headers.Get("authorization")) {
    std::string_view value = *authorization;
    if (value.size() > 7 && StartsWithIgnoreCase(value, "bearer ") && keys_) {
      std::string_view token = StripWhitespace(value.substr(7));
      return VerifyBearer(request, token);
    }
    if (!config_.api_keys.empty() && value.size() > 7 && StartsWithIgnoreCase(value, "apikey ")) {
      return VerifyApiKey(request, StripWhitespace(value.substr(7)));
    }
    return Reject(request, "invalid_request", "unsupported authorization scheme");
  }
  if (!config_.api_keys.empty()) {
    if (std::optional<std::string_view> key = headers.Get(config_.api_key_header)) {
      return VerifyApiKey(request, *key);
    }
  }
  if (config_.optional) return FilterStatus::kContinue;  // anonymous, and allowed
  return Reject(request, nullptr, nullptr);
}

FilterStatus AuthFilter::VerifyBearer(FilterRequest& request, std::string_view token) {
  if (!keys_->keys) return Reject(request, "invalid_token", "no signing keys");
  if (cache_generation_ != keys_->generation) {
    cache_.clear();  // tokens verified with keys that may be gone
    cache_generation_ = keys_->generation;
  }
  const int64_t now = clock_.UnixSeconds();
  std::shared_ptr<const VerifiedToken> verified;
  auto it = cache_.find(token);
  if (it != cache_.end()) {
    if (it->second->valid_until >= now) {
      verified = it->second;
    } else {
      cache_.erase(it);
      return Reject(request, "invalid_token", JwtErrorText(JwtError::kExpired));
    }
  } else {
    ++signature_checks_;
    JwtResult result = VerifyJwt(token, *keys_->keys, config_.policy, now);
    if (!result.ok()) return Reject(request, "invalid_token", JwtErrorText(result.error));
    verified = std::make_shared<const VerifiedToken>(std::move(result.token));
    if (cache_.size() >= config_.cache_size) {
      absl::erase_if(cache_, [&](const auto& e) { return e.second->valid_until < now; });
      if (cache_.size() >= config_.cache_size) {
        // Full of live tokens: let a quarter go (they are verified again when they come back)
        // rather than all of them at once.
        size_t evict = std::max<size_t>(1, cache_.size() / 4);
        for (auto e = cache_.begin(); e != cache_.end() && evict > 0; --evict) cache_.erase(e++);
      }
    }
    cache_.emplace(std::string(token), verified);
  }
  Identity& id = request.context.identity;
  id.method = Identity::Method::kJwt;
  id.member_id = verified->member_id;
  id.home_region = verified->home_region;
  id.tier = verified->tier;
  id.owner = std::move(verified);
  return FilterStatus::kContinue;
}

FilterStatus AuthFilter::VerifyApiKey(FilterRequest& request, std::string_view key) {
  Sha256Digest digest = Sha256(key);
  const ApiKey* match = nullptr;
  // Every key is compared, in constant time, whichever matches.
  for (const ApiKey& candidate : config_.api_keys) {
    if (DigestsEqual(candidate.sha256, digest)) match = &candidate;
  }
  if (!match) return Reject(request, "invalid_token", "unknown API key");
  Identity& id = request.context.identity;
  id.method = Identity::Method::kApiKey;
  id.member_id = match->name;
  id.home_region = {};
  id.tier = {};
  id.owner.reset();
  return FilterStatus::kContinue;
}

FilterStatus AuthFilter::Reject(FilterRequest& request, const char* error,
                                const char* description) {
  const char* scheme = keys_ ? "Bearer" : "ApiKey";
  std::string challenge = absl::StrFormat("%s realm=\"%s\"", scheme, config_.realm);
  if (error) {
    challenge += absl::StrFormat(", error=\"%s\", error_description=\"%s\"", error, description);
  }
  request.reply.status = 401;
  request.reply.headers.Add("WWW-Authenticate", challenge);
  request.reply.body = "401 Unauthorized";
  if (description) {
    request.reply.body += ": ";
    request.reply.body += description;
  }
  request.reply.body += "\n";
  return FilterStatus::kRespond;
}

}  // namespace sluice
