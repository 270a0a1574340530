#include "proxy/config/filter_config_loader.h"

#include <algorithm>
#include <set>

#include "common/http_headers.h"
#include "filters/filter_chain.h"

namespace sluice {
namespace {

bool IsToken(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!IsAsciiAlnum(c) && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

// Header names that rules may not touch: framing and hop-by-hop fields belong to the codec,
// sluice-* fields to sluice.
absl::Status CheckRuleName(const Field& f, std::string_view name) {
  if (!IsToken(name)) return f.Error(absl::StrFormat("\"%s\" is not a header name", name));
  HeaderKind kind = ClassifyHeaderName(name);
  if (IsHopByHop(kind) || kind == HeaderKind::kContentLength ||
      kind == HeaderKind::kSluiceInternal) {
    return f.Error(absl::StrFormat("header rules cannot change \"%s\"", name));
  }
  return absl::OkStatus();
}

absl::Status ParseRules(const Field& f, HeaderRules* out) {
  RETURN_IF_ERROR(f.ExpectMap({"add", "set", "remove"}));
  for (const char* op : {"add", "set"}) {
    Field field = f.Child(op);
    if (!field.present()) continue;
    ASSIGN_OR_RETURN(auto entries, field.Entries());
    for (auto& [name, value_field] : entries) {
      RETURN_IF_ERROR(CheckRuleName(value_field, name));
      ASSIGN_OR_RETURN(std::string value, value_field.Scalar());
      for (char c : value) {
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
          return value_field.Error("header values cannot contain control characters");
        }
      }
      (std::string_view(op) == "add" ? out->add : out->set).emplace_back(name, value);
    }
  }
  Field remove = f.Child("remove");
  if (remove.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, remove.Sequence());
    for (const Field& item : items) {
      ASSIGN_OR_RETURN(std::string name, item.Scalar());
      RETURN_IF_ERROR(CheckRuleName(item, name));
      out->remove.push_back(name);
    }
  }
  return absl::OkStatus();
}

absl::Status ParseHeaderRules(const Field& f, HeaderRulesConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap({"request", "response"}));
  if (Field r = f.Child("request"); r.present()) RETURN_IF_ERROR(ParseRules(r, &out->request));
  if (Field r = f.Child("response"); r.present()) RETURN_IF_ERROR(ParseRules(r, &out->response));
  return absl::OkStatus();
}

// "100/s", "6000/m", "10/h", or a number per second.
absl::Status ReadRate(const Field& f, double* per_second) {
  if (!f.present()) return f.Error("required, for example 100/s");
  ASSIGN_OR_RETURN(std::string text, f.Scalar());
  std::string_view number = text;
  double unit = 1;
  if (size_t slash = text.find('/'); slash != std::string::npos) {
    std::string_view per = std::string_view(text).substr(slash + 1);
    number = std::string_view(text).substr(0, slash);
    if (per == "s") {
      unit = 1;
    } else if (per == "m") {
      unit = 60;
    } else if (per == "h") {
      unit = 3600;
    } else {
      return f.Error(absl::StrFormat("rate unit must be /s, /m or /h, got \"%s\"", text));
    }
  }
  double value = 0;
  if (!ParseDouble(number, &value) || value <= 0) {
    return f.Error(absl::StrFormat("expected a rate such as 100/s, got \"%s\"", text));
  }
  *per_second = value / unit;
  return absl::OkStatus();
}

absl::Status ParseRateLimit(const Field& f, RateLimitConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap({"key", "rate", "burst", "status", "max_keys"}));
  if (Field key = f.Child("key"); key.present()) {
    ASSIGN_OR_RETURN(std::string text, key.Scalar());
    if (text == "client_address") {
      out->key = RateLimitConfig::Key::kClientAddress;
    } else if (text == "member") {
      out->key = RateLimitConfig::Key::kMember;
    } else if (text == "api_key") {
      out->key = RateLimitConfig::Key::kApiKey;
    } else {
      return key.Error(
          absl::StrFormat("must be client_address, member or api_key, got \"%s\"", text));
    }
  }
  RETURN_IF_ERROR(ReadRate(f.Child("rate"), &out->rate_per_second));
  out->burst = out->rate_per_second;
  RETURN_IF_ERROR(f.Child("burst").ReadDouble(&out->burst, 1, 1e9));
  RETURN_IF_ERROR(f.Child("status").ReadInt(&out->status, 429, 503));
  if (out->status != 429 && out->status != 503) {
    return f.Child("status").Error("must be 429 or 503");
  }
  RETURN_IF_ERROR(f.Child("max_keys").ReadInt(&out->max_keys, 16, 100000000));
  return absl::OkStatus();
}

absl::Status ParseShed(const Field& f, const ConcurrencyConfig* concurrency, ShedConfig* out) {
  if (!concurrency) {
    return f.Error("the route's cluster has no concurrency limit (clusters[].concurrency)");
  }
  std::set<std::string> partitions;
  for (const auto& p : concurrency->partitions) partitions.insert(p.name);
  if (partitions.empty()) partitions.insert("default");
  auto check_partition = [&](const Field& field, const std::string& name) -> absl::Status {
    if (partitions.count(name) == 0) {
      return field.Error(absl::StrFormat("the cluster has no partition named \"%s\"", name));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(f.ExpectMap({"partition", "classify", "status", "retry_after"}));
  if (Field p = f.Child("partition"); p.present()) {
    RETURN_IF_ERROR(p.Read(&out->partition));
    RETURN_IF_ERROR(check_partition(p, out->partition));
  }
  if (Field classify = f.Child("classify"); classify.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, classify.Sequence());
    for (const Field& item : items) {
      RETURN_IF_ERROR(item.ExpectMap({"header", "claim", "value", "partition"}));
      ShedRule rule;
      bool has_header = item.Child("header").present();
      bool has_claim = item.Child("claim").present();
      if (has_header == has_claim) return item.Error("needs exactly one of header or claim");
      if (has_header) {
        rule.source = ShedRule::Source::kHeader;
        RETURN_IF_ERROR(item.Child("header").Read(&rule.name));
      } else {
        rule.source = ShedRule::Source::kClaim;
        RETURN_IF_ERROR(item.Child("claim").Read(&rule.name));
        if (rule.name != "tier" && rule.name != "home_region" && rule.name != "member") {
          return item.Child("claim").Error("must be tier, home_region or member");
        }
      }
      Field value = item.Child("value");
      if (!value.present()) return value.Error("required");
      RETURN_IF_ERROR(value.Read(&rule.value));
      Field partition = item.Child("partition");
      if (!partition.present()) return partition.Error("required");
      RETURN_IF_ERROR(partition.Read(&rule.partition));
      RETURN_IF_ERROR(check_partition(partition, rule.partition));
      out->classify.push_back(std::move(rule));
    }
  }
  RETURN_IF_ERROR(f.Child("status").ReadInt(&out->status, 429, 503));
  if (out->status != 429 && out->status != 503) {
    return f.Child("status").Error("must be 429 or 503");
  }
  absl::Duration retry_after = absl::Seconds(out->retry_after_seconds);
  RETURN_IF_ERROR(f.Child("retry_after").ReadDuration(&retry_after, absl::Seconds(1)));
  out->retry_after_seconds = absl::ToInt64Seconds(absl::Ceil(retry_after, absl::Seconds(1)));
  return absl::OkStatus();
}

absl::Status ParseAuth(const Field& f, const std::string& base_dir, AuthConfig* out) {
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
      ASSIGN_OR_RETURN(std::string hex, hash.Scalar());
      if (hex.size() != 64) {
        return hash.Error(
            "must be the 64 hex digits of the key's SHA-256 (printf %s KEY | sha256sum)");
      }
      for (size_t i = 0; i < 32; ++i) {
        int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return hash.Error("not hexadecimal");
        key.sha256[i] = static_cast<unsigned char>(hi * 16 + lo);
      }
      out->api_keys.push_back(std::move(key));
    }
  }
  if (out->jwks_file.empty() && out->api_keys.empty()) {
    return f.Error("needs jwks_file, api_keys or both");
  }
  RETURN_IF_ERROR(f.Child("api_key_header").Read(&out->api_key_header));
  if (!IsToken(out->api_key_header)) return f.Child("api_key_header").Error("not a header name");
  RETURN_IF_ERROR(f.Child("optional").Read(&out->optional));
  RETURN_IF_ERROR(f.Child("realm").Read(&out->realm));
  for (char c : out->realm) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      return f.Child("realm").Error("must not contain quotes, backslashes or control characters");
    }
  }
  RETURN_IF_ERROR(f.Child("cache_size").ReadInt(&out->cache_size, 1, 10000000));
  return absl::OkStatus();
}

absl::Status ParseRetry(const Field& f, RetryConfig* out) {
  RETURN_IF_ERROR(
      f.ExpectMap({"attempts", "on", "methods", "replay_buffer", "per_try_timeout", "backoff"}));
  RETURN_IF_ERROR(f.Child("attempts").ReadInt(&out->attempts, 1, 10));
  if (Field on = f.Child("on"); on.present()) {
    out->on_connect_failure = out->on_reset = out->on_timeout = out->on_gateway_error = false;
    ASSIGN_OR_RETURN(std::vector<Field> items, on.Sequence());
    for (const Field& item : items) {
      ASSIGN_OR_RETURN(std::string condition, item.Scalar());
      int status = 0;
      if (condition == "connect_failure") {
        out->on_connect_failure = true;
      } else if (condition == "reset") {
        out->on_reset = true;
      } else if (condition == "timeout") {
        out->on_timeout = true;
      } else if (condition == "gateway_error") {
        out->on_gateway_error = true;
      } else if (ParseInteger(condition, &status) && status >= 500 && status <= 599) {
        out->status_codes.push_back(status);
      } else {
        return item.Error(absl::StrFormat(
            "must be connect_failure, reset, timeout, gateway_error or a 5xx status, got \"%s\"",
            condition));
      }
    }
  }
  if (Field methods = f.Child("methods"); methods.present()) {
    ASSIGN_OR_RETURN(std::string text, methods.Scalar());
    if (text == "any") {
      out->any_method = true;
    } else if (text != "idempotent") {
      return methods.Error(absl::StrFormat("must be idempotent or any, got \"%s\"", text));
    }
  }
  RETURN_IF_ERROR(f.Child("replay_buffer").ReadSize(&out->replay_buffer, 0, 64u << 20));
  absl::Duration per_try = absl::ZeroDuration();
  RETURN_IF_ERROR(f.Child("per_try_timeout").ReadDuration(&per_try, absl::Milliseconds(1)));
  out->per_try_timeout_ns = absl::ToInt64Nanoseconds(per_try);
  if (Field backoff = f.Child("backoff"); backoff.present()) {
    RETURN_IF_ERROR(backoff.ExpectMap({"base", "max"}));
    absl::Duration base = absl::Nanoseconds(out->backoff_base_ns);
    absl::Duration max = absl::Nanoseconds(out->backoff_max_ns);
    RETURN_IF_ERROR(backoff.Child("base").ReadDuration(&base, absl::Milliseconds(1)));
    RETURN_IF_ERROR(backoff.Child("max").ReadDuration(&max, absl::Milliseconds(1)));
    if (max < base) return backoff.Child("max").Error("must not be below base");
    if (max > absl::Seconds(10)) return backoff.Child("max").Error("must be at most 10s");
    out->backoff_base_ns = absl::ToInt64Nanoseconds(base);
    out->backoff_max_ns = absl::ToInt64Nanoseconds(max);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseConcurrency(const Field& f, ConcurrencyConfig* out) {
  RETURN_IF_ERROR(
      f.ExpectMap({"algorithm", "initial_limit", "min_limit", "max_limit", "window",
                   "min_window_samples", "aimd_backoff", "aimd_rtt_bound", "partitions"}));
  if (Field a = f.Child("algorithm"); a.present()) {
    ASSIGN_OR_RETURN(std::string text, a.Scalar());
    if (text == "gradient2") {
      out->algorithm = ConcurrencyConfig::Algorithm::kGradient2;
    } else if (text == "vegas") {
      out->algorithm = ConcurrencyConfig::Algorithm::kVegas;
    } else if (text == "aimd") {
      out->algorithm = ConcurrencyConfig::Algorithm::kAimd;
    } else if (text == "fixed") {
      out->algorithm = ConcurrencyConfig::Algorithm::kFixed;
    } else {
      return a.Error(absl::StrFormat("must be gradient2, vegas, aimd or fixed, got \"%s\"", text));
    }
  }
  RETURN_IF_ERROR(f.Child("initial_limit").ReadInt(&out->initial_limit, 1, 1000000));
  RETURN_IF_ERROR(f.Child("min_limit").ReadInt(&out->min_limit, 1, 1000000));
  RETURN_IF_ERROR(f.Child("max_limit").ReadInt(&out->max_limit, 1, 1000000));
  if (out->min_limit > out->max_limit) return f.Child("min_limit").Error("exceeds max_limit");
  if (out->initial_limit < out->min_limit || out->initial_limit > out->max_limit) {
    return f.Child("initial_limit").Error("must lie between min_limit and max_limit");
  }
  absl::Duration window = absl::Nanoseconds(out->window_ns);
  RETURN_IF_ERROR(f.Child("window").ReadDuration(&window, absl::Milliseconds(1)));
  out->window_ns = absl::ToInt64Nanoseconds(window);
  RETURN_IF_ERROR(f.Child("min_window_samples").ReadInt(&out->min_window_samples, 1, 100000));
  RETURN_IF_ERROR(f.Child("aimd_backoff").ReadDouble(&out->aimd_backoff, 0.1, 0.99));
  absl::Duration bound = absl::ZeroDuration();
  RETURN_IF_ERROR(f.Child("aimd_rtt_bound").ReadDuration(&bound, absl::ZeroDuration()));
  out->aimd_rtt_bound_ns = absl::ToInt64Nanoseconds(bound);
  if (Field parts = f.Child("partitions"); parts.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, parts.Sequence());
    double total = 0;
    for (const Field& item : items) {
      RETURN_IF_ERROR(item.ExpectMap({"name", "share"}));
      ConcurrencyConfig::Partition p;
      Field name = item.Child("name");
      if (!name.present()) return name.Error("required");
      RETURN_IF_ERROR(name.Read(&p.name));
      for (const auto& other : out->partitions) {
        if (other.name == p.name) return name.Error("partition names must be unique");
      }
      Field share = item.Child("share");
      if (!share.present()) return share.Error("required (a fraction of the limit, 0..1)");
      RETURN_IF_ERROR(share.ReadDouble(&p.share, 0.001, 1.0));
      total += p.share;
      out->partitions.push_back(std::move(p));
    }
    if (total > 1.0001) return parts.Error("shares add up to more than 1");
  }
  return absl::OkStatus();
}

absl::Status ParseFilterChain(const Field& f, const ConcurrencyConfig* concurrency,
                              const std::string& base_dir, std::vector<FilterSpec>* out) {
  ASSIGN_OR_RETURN(std::vector<Field> items, f.Sequence());
  if (items.size() > kMaxFiltersPerChain) {
    return f.Error(absl::StrFormat("at most %d filters per route", kMaxFiltersPerChain));
  }
  for (const Field& item : items) {
    ASSIGN_OR_RETURN(auto entries, item.Entries());
    if (entries.size() != 1) {
      return item.Error(
          "each filter is one key naming it: auth, headers, rate_limit, retry or shed");
    }
    auto& [kind, body] = entries[0];
    // Filled in place: moving a variant of these makes g++ 12 warn falsely.
    if (kind == "auth") {
      auto& config = std::get<AuthConfig>(out->emplace_back(std::in_place_type<AuthConfig>));
      RETURN_IF_ERROR(ParseAuth(body, base_dir, &config));
    } else if (kind == "headers") {
      auto& config =
          std::get<HeaderRulesConfig>(out->emplace_back(std::in_place_type<HeaderRulesConfig>));
      RETURN_IF_ERROR(ParseHeaderRules(body, &config));
    } else if (kind == "rate_limit") {
      auto& config =
          std::get<RateLimitConfig>(out->emplace_back(std::in_place_type<RateLimitConfig>));
      RETURN_IF_ERROR(ParseRateLimit(body, &config));
    } else if (kind == "retry") {
      auto& config = std::get<RetryConfig>(out->emplace_back(std::in_place_type<RetryConfig>));
      RETURN_IF_ERROR(ParseRetry(body, &config));
    } else if (kind == "shed") {
      auto& config = std::get<ShedConfig>(out->emplace_back(std::in_place_type<ShedConfig>));
      RETURN_IF_ERROR(ParseShed(body, concurrency, &config));
    } else {
      return item.Error(absl::StrFormat(
          "unknown filter \"%s\" (expected auth, headers, rate_limit, retry or shed)", kind));
    }
  }
  return absl::OkStatus();
}

}  // namespace sluice
