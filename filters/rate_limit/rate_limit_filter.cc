#include "filters/rate_limit/rate_limit_filter.h"

#include <algorithm>
#include <cmath>

namespace sluice {

RateLimitFilter::RateLimitFilter(const RateLimitConfig& config, int workers, const Clock& clock)
    : key_(config.key),
      rate_per_ns_(config.rate_per_second / std::max(workers, 1) / 1e9),
      burst_(std::max(1.0, config.burst / std::max(workers, 1))),
      status_(config.status),
      max_keys_(std::max<uint32_t>(config.max_keys, 16)),
      clock_(clock) {}

FilterStatus RateLimitFilter::OnRequestHead(FilterRequest& request, FilterSlot&) {
  char address[64];
  std::string_view key;
  const Identity& id = request.context.identity;
  if (key_ == RateLimitConfig::Key::kMember && id.verified() && !id.member_id.empty()) {
    key = id.member_id;
  } else if (key_ == RateLimitConfig::Key::kApiKey && id.method == Identity::Method::kApiKey) {
    key = id.member_id;
  } else {
    key = std::string_view(address, request.context.client.FormatIp(address, sizeof(address)));
  }

  const int64_t now = clock_.MonotonicNanos();
  auto it = buckets_.find(absl::string_view(key.data(), key.size()));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_keys_) Evict(now);
    it = buckets_.emplace(std::string(key), Bucket{burst_, now}).first;
  }
  Bucket& bucket = it->second;
  bucket.tokens = std::min(burst_, bucket.tokens + (now - bucket.updated_ns) * rate_per_ns_);
  bucket.updated_ns = now;
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return FilterStatus::kContinue;
  }
  ++rejected_;
  double wait_seconds = rate_per_ns_ > 0 ? (1.0 - bucket.tokens) / rate_per_ns_ / 1e9 : 60;
  request.reply.status = status_;
  request.reply.headers.Add("Retry-After",
                            std::to_string(static_cast<int64_t>(std::ceil(wait_seconds))));
  request.reply.body = "rate limit exceeded\n";
  return FilterStatus::kRespond;
}

void RateLimitFilter::Evict(int64_t now) {
  // A bucket that has refilled completely is the same as no bucket: forget those first.
  absl::erase_if(buckets_, [&](const auto& entry) {
    const Bucket& b = entry.second;
    return b.tokens + (now - b.updated_ns) * rate_per_ns_ >= burst_;
  });
  // Still full of active keys: start over rather than grow without bound.
  if (buckets_.size() >= max_keys_) buckets_.clear();
}

}  // namespace sluice
