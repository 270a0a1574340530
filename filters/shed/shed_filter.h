// Load shedding: classifies a request into a partition of its cluster's adaptive concurrency
// limit (by route, header or verified claim) and admits it, or answers 503 with Retry-After
// (429 where configured) before anything goes upstream.
//   - shed:
//       partition: bulk                  # this route's default partition
//       classify:                        # first match wins
//         - {header: x-priority, value: critical, partition: critical}
//         - {claim: tier, value: gold, partition: critical}
//       status: 503
//       retry_after: 1s
// The slot holds the admission (partition, start time) until OnComplete releases it with the
// request's latency as a sample.
#ifndef SLUICE_FILTERS_SHED_SHED_FILTER_H_
#define SLUICE_FILTERS_SHED_SHED_FILTER_H_

#include <string>
#include <vector>

#include "common/clock.h"
#include "filters/filter.h"
#include "filters/registry.h"
#include "filters/shed/concurrency_limiter.h"

namespace sluice {

struct ShedRule {
  enum class Source { kHeader, kClaim };
  Source source = Source::kHeader;
  std::string name;   // header name, or "tier" / "home_region" / "member" for claims
  std::string value;  // exact match (headers: case-sensitive value, case-insensitive name)
  std::string partition;
};

struct ShedConfig : FilterConfig {
  std::string partition;  // empty: the limiter's last partition (the lowest priority)
  std::vector<ShedRule> classify;
  int status = 503;
  int64_t retry_after_seconds = 1;
};

class ShedFilter final : public Filter {
 public:
  // `limiter` belongs to the worker's cluster and outlives the filter. Partition names must
  // exist in it (the configuration loader checks).
  ShedFilter(const ShedConfig& config, ConcurrencyLimiter* limiter, const Clock& clock);
  static constexpr std::string_view kName = "shed";
  std::string_view name() const override { return kName; }
  FilterStatus OnRequestHead(FilterRequest& request, FilterSlot& slot) override;
  void OnComplete(FilterRequest& request, const FilterOutcome& outcome, FilterSlot& slot) override;

  int Classify(const FilterRequest& request) const;

 private:
  struct Rule {
    ShedRule::Source source;
    std::string name;
    std::string value;
    int partition;
  };
  ConcurrencyLimiter* limiter_;
  const Clock& clock_;
  std::vector<Rule> rules_;
  int default_partition_;
  int status_;
  std::string retry_after_;
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_SHED_SHED_FILTER_H_
