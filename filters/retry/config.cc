// routes[].filters[].retry: when and how often a failed attempt is tried again.
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/yaml_field.h"
#include "filters/registry.h"
#include "filters/retry/retry_filter.h"

namespace sluice {
namespace {

absl::StatusOr<std::shared_ptr<const FilterConfig>> Parse(const Field& f,
                                                          const FilterParseContext&) {
  auto out = std::make_shared<RetryConfig>();
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
  return out;
}

std::unique_ptr<Filter> Create(const FilterConfig& config, const FilterEnvironment& env) {
  return std::make_unique<RetryFilter>(static_cast<const RetryConfig&>(config),
                                       env.clock ? *env.clock : SystemClock());
}

}  // namespace

extern const FilterRegistration kRetryFilterRegistration = {
    .name = RetryFilter::kName,
    .parse = Parse,
    .create = Create,
    .decides_retries = true,
};

}  // namespace sluice
