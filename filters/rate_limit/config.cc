// routes[].filters[].rate_limit: token buckets per client address, member or API key.
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/yaml_field.h"
#include "filters/rate_limit/rate_limit_filter.h"
#include "filters/registry.h"

namespace sluice {
namespace {

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

absl::StatusOr<std::shared_ptr<const FilterConfig>> Parse(const Field& f,
                                                          const FilterParseContext&) {
  auto out = std::make_shared<RateLimitConfig>();
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
  return out;
}

std::unique_ptr<Filter> Create(const FilterConfig& config, const FilterEnvironment& env) {
  return std::make_unique<RateLimitFilter>(static_cast<const RateLimitConfig&>(config), env.workers,
                                           env.clock ? *env.clock : SystemClock());
}

}  // namespace

extern const FilterRegistration kRateLimitFilterRegistration = {
    .name = RateLimitFilter::kName,
    .parse = Parse,
    .create = Create,
    .counts_as_shed = true,
};

}  // namespace sluice
