#include "filters/rate_limit/rate_limit_filter.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

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
  // Still full of active keys: forget the quarter nearest to full, whose clients lose least by
  // starting over, and keep the ones being held back (a flood of new keys frees no one).
  if (buckets_.size() < max_keys_) return;
  std::vector<std::pair<double, const std::string*>> levels;
  levels.reserve(buckets_.size());
  for (const auto& [key, b] : buckets_) {
    levels.emplace_back(b.tokens + (now - b.updated_ns) * rate_per_ns_, &key);
  }
  const size_t evict = std::max<size_t>(1, levels.size() / 4);
  std::nth_element(levels.begin(), levels.begin() + static_cast<std::ptrdiff_t>(evict - 1),
                   levels.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> gone;
  gone.reserve(evict);
  for (size_t i = 0; i < evict; ++i) gone.push_back(*levels[i].second);
  for (const std::string& key : gone) buckets_.erase(key);
}

}  // namespace sluice
