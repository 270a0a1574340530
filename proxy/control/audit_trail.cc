#include "proxy/control/audit_trail.h"

#include <algorithm>

namespace sluice {
namespace {

// Runs of dropped events remembered (one a second at most): beyond, the oldest merge.
constexpr size_t kMaxDroppedRuns = 4096;

}  // namespace

AuditTrail::AuditTrail(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {
  ring_.resize(capacity_);
}

const AuditRecord& AuditTrail::At(size_t i) const { return ring_[(start_ + i) % capacity_]; }

uint64_t AuditTrail::Add(const ControllerEvent& event) {
  const uint64_t seq = next_seq_++;
  if (count_ == capacity_) {
    CountDropped(ring_[start_].event);
    ring_[start_] = AuditRecord{seq, event};
    start_ = (start_ + 1) % capacity_;
  } else {
    ring_[(start_ + count_) % capacity_] = AuditRecord{seq, event};
    ++count_;
  }
  return seq;
}

void AuditTrail::CountDropped(const ControllerEvent& event) {
  const int64_t second = absl::ToUnixSeconds(event.time);
  if (!dropped_runs_.empty() && absl::ToUnixSeconds(dropped_runs_.back().first) == second) {
    dropped_runs_.back().first = std::max(dropped_runs_.back().first, event.time);
    ++dropped_runs_.back().second;
    return;
  }
  if (dropped_runs_.size() == kMaxDroppedRuns) {
    dropped_runs_[1].second += dropped_runs_[0].second;
    dropped_runs_.erase(dropped_runs_.begin());
  }
  dropped_runs_.emplace_back(event.time, 1);
}

AuditPage AuditTrail::Query(const AuditQuery& query) const {
  AuditPage page;
  const uint64_t oldest = count_ == 0 ? next_seq_ : At(0).seq;  // kept: oldest .. next_seq_ - 1
  std::vector<size_t> matching;
  for (size_t i = 0; i < count_; ++i) {
    const AuditRecord& r = At(i);
    if (query.after_seq && r.seq <= *query.after_seq) continue;
    // By the events' own times (a clock stepped back leaves them out of order).
    if (!query.after_seq && query.since && r.event.time < *query.since) continue;
    matching.push_back(i);
  }
  if (query.after_seq) {
    if (*query.after_seq + 1 < oldest) page.dropped = oldest - (*query.after_seq + 1);
  } else if (query.since) {
    for (const auto& [latest, n] : dropped_runs_) {
      if (latest >= *query.since) page.dropped += n;
    }
  } else {
    page.dropped = oldest - 1;
  }
  const size_t limit = std::max<size_t>(query.limit, 1);
  const size_t skip = matching.size() > limit ? matching.size() - limit : 0;
  page.events.reserve(matching.size() - skip);
  for (size_t k = skip; k < matching.size(); ++k) page.events.push_back(At(matching[k]));
  page.next = page.events.empty() ? next_seq_ : page.events.back().seq + 1;
  return page;
}

}  // namespace sluice
