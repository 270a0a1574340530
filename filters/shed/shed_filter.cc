#include "filters/shed/shed_filter.h"

namespace sluice {

ShedFilter::ShedFilter(const ShedConfig& config, ConcurrencyLimiter* limiter, const Clock& clock)
    : limiter_(limiter),
      clock_(clock),
      status_(config.status),
      retry_after_(std::to_string(config.retry_after_seconds)) {
  default_partition_ = config.partition.empty() ? static_cast<int>(limiter->partition_count()) - 1
                                                : limiter->PartitionIndex(config.partition);
  if (default_partition_ < 0) default_partition_ = static_cast<int>(limiter->partition_count()) - 1;
  for (const ShedRule& rule : config.classify) {
    int p = limiter->PartitionIndex(rule.partition);
    if (p >= 0) rules_.push_back({rule.source, rule.name, rule.value, p});
  }
}

int ShedFilter::Classify(const FilterRequest& request) const {
  for (const Rule& rule : rules_) {
    if (rule.source == ShedRule::Source::kHeader) {
      if (!request.context.trusted_headers) continue;  // any client could claim to be critical
      std::optional<std::string_view> value = request.head->headers.Get(rule.name);
      if (value && *value == rule.value) return rule.partition;
    } else {
      const Identity& id = request.context.identity;
      std::string_view claim = rule.name == "tier"          ? id.tier
                               : rule.name == "home_region" ? id.home_region
                               : rule.name == "member"      ? id.member_id
                                                            : std::string_view();
      if (id.verified() && claim == rule.value) return rule.partition;
    }
  }
  return default_partition_;
}

FilterStatus ShedFilter::OnRequestHead(FilterRequest& request, FilterSlot& slot) {
  int partition = Classify(request);
  request.context.partition = partition;
  if (!limiter_->TryAcquire(partition)) {
    request.reply.status = status_;
    request.reply.headers.Add("Retry-After", retry_after_);
    request.reply.body = "overloaded: request shed (";
    request.reply.body.append(limiter_->partition_name(partition));
    request.reply.body.append(")\n");
    return FilterStatus::kRespond;
  }
  slot.flag = true;
  slot.extra = partition;
  slot.value = clock_.MonotonicNanos();
  return FilterStatus::kContinue;
}

void ShedFilter::OnComplete(FilterRequest& request, const FilterOutcome& outcome,
                            FilterSlot& slot) {
  if (!slot.flag) return;
  slot.flag = false;
  bool overload = outcome.upstream_failed || outcome.timed_out ||
                  (!outcome.answered_by_filter && (outcome.status == 503 || outcome.status == 429));
  // A client that left says nothing about the cluster's latency; a request answered by a later
  // filter never reached it.
  bool sample = !outcome.cancelled && !outcome.answered_by_filter;
  limiter_->Release(slot.extra, clock_.MonotonicNanos() - slot.value, overload, sample);
}

}  // namespace sluice
