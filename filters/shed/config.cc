// routes[].filters[].shed (admission into the route's cluster's concurrency limit) and
// clusters[].concurrency (the limit itself).
#include <set>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "common/yaml_field.h"
#include "filters/registry.h"
#include "filters/shed/concurrency_config.h"
#include "filters/shed/shed_filter.h"

namespace sluice {
namespace {

absl::StatusOr<std::shared_ptr<const FilterConfig>> Parse(const Field& f,
                                                          const FilterParseContext& context) {
  const ConcurrencyConfig* concurrency = context.concurrency;
  auto out = std::make_shared<ShedConfig>();
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
  return out;
}

std::unique_ptr<Filter> Create(const FilterConfig& config, const FilterEnvironment& env) {
  // The loader refuses a shed filter on a cluster without a limit, so `limiter` is set.
  return std::make_unique<ShedFilter>(static_cast<const ShedConfig&>(config), env.limiter,
                                      env.clock ? *env.clock : SystemClock());
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

extern const FilterRegistration kShedFilterRegistration = {
    .name = ShedFilter::kName,
    .parse = Parse,
    .create = Create,
    .counts_as_shed = true,
};

}  // namespace sluice
