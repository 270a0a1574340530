#include "filters/retry/retry_filter.h"

#include <algorithm>

namespace sluice {

RetryFilter::RetryFilter(const RetryConfig& config, const Clock& clock)
    : config_(config),
      random_(static_cast<uint64_t>(clock.MonotonicNanos()) ^ reinterpret_cast<uintptr_t>(this)) {
  if (random_ == 0) random_ = 1;
}

int64_t RetryFilter::Backoff(int attempts) {
  int shift = std::clamp(attempts - 1, 0, 30);
  int64_t ceiling = std::min(config_.backoff_max_ns, config_.backoff_base_ns << shift);
  random_ ^= random_ << 13;
  random_ ^= random_ >> 7;
  random_ ^= random_ << 17;
  int64_t half = ceiling / 2;
  return half + static_cast<int64_t>(random_ % static_cast<uint64_t>(half + 1));
}

FilterStatus RetryFilter::OnRequestHead(FilterRequest& request, FilterSlot& slot) {
  slot.flag = config_.any_method || request.head->idempotent();
  if (!slot.flag) return FilterStatus::kContinue;
  FilterContext& context = request.context;
  context.keep_request_body = true;
  context.replay_limit = config_.replay_buffer;
  context.per_try_timeout_ns = config_.per_try_timeout_ns;
  return FilterStatus::kContinue;
}

FilterStatus RetryFilter::Again(FilterRequest& request) {
  if (static_cast<uint32_t>(request.context.attempts) >= config_.attempts) {
    return FilterStatus::kContinue;
  }
  request.context.retry_delay_ns = Backoff(request.context.attempts);
  return FilterStatus::kRetry;
}

FilterStatus RetryFilter::OnUpstreamError(FilterRequest& request, FilterSlot& slot) {
  if (!slot.flag) return FilterStatus::kContinue;
  switch (request.context.last_failure) {
    case UpstreamFailure::kConnect:
      return config_.on_connect_failure ? Again(request) : FilterStatus::kContinue;
    case UpstreamFailure::kReset:
    case UpstreamFailure::kBadResponse:
      return config_.on_reset ? Again(request) : FilterStatus::kContinue;
    case UpstreamFailure::kTimeout:
      return config_.on_timeout ? Again(request) : FilterStatus::kContinue;
    case UpstreamFailure::kNone:
    case UpstreamFailure::kCount:
      return FilterStatus::kContinue;
  }
  return FilterStatus::kContinue;
}

FilterStatus RetryFilter::OnResponseHead(FilterRequest& request, ResponseHead& response,
                                         FilterSlot& slot) {
  if (!slot.flag) return FilterStatus::kContinue;
  int status = response.status;
  bool retry = config_.on_gateway_error && (status == 502 || status == 503 || status == 504);
  retry = retry || std::find(config_.status_codes.begin(), config_.status_codes.end(), status) !=
                       config_.status_codes.end();
  return retry ? Again(request) : FilterStatus::kContinue;
}

}  // namespace sluice
