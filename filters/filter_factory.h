// Filter configurations as the loader produces them, and the factory that turns one into a
// filter for one worker.
#ifndef SLUICE_FILTERS_FILTER_FACTORY_H_
#define SLUICE_FILTERS_FILTER_FACTORY_H_

#include <memory>
#include <string_view>
#include <variant>

#include "common/clock.h"
#include "filters/auth_filter.h"
#include "filters/concurrency_limiter.h"
#include "filters/filter.h"
#include "filters/header_rules_filter.h"
#include "filters/rate_limit_filter.h"
#include "filters/retry_filter.h"
#include "filters/shed_filter.h"

namespace sluice {

using FilterSpec =
    std::variant<AuthConfig, HeaderRulesConfig, RateLimitConfig, RetryConfig, ShedConfig>;

std::string_view FilterSpecName(const FilterSpec& spec);

// What a filter may use from the worker that runs it.
struct FilterEnvironment {
  int workers = 1;
  const Clock* clock = nullptr;
  ConcurrencyLimiter* limiter = nullptr;  // the route's cluster limiter, if it has one
  KeySlots* key_slots = nullptr;          // the worker's JWKS keys, by file
};

// Builds a filter. The configuration was validated by the loader; a shed filter on a cluster
// without a concurrency limit is a loader error, so `limiter` is set when one is needed.
std::unique_ptr<Filter> CreateFilter(const FilterSpec& spec, const FilterEnvironment& env);

}  // namespace sluice

#endif  // SLUICE_FILTERS_FILTER_FACTORY_H_
