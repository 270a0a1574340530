#include "filters/registry.h"

#include <cstdlib>

namespace sluice {

// Each defined in its folder's config.cc.
extern const FilterRegistration kAuthFilterRegistration;
extern const FilterRegistration kHeadersFilterRegistration;
extern const FilterRegistration kRateLimitFilterRegistration;
extern const FilterRegistration kRetryFilterRegistration;
extern const FilterRegistration kShedFilterRegistration;

const std::vector<const FilterRegistration*>& FilterRegistry() {
  static const std::vector<const FilterRegistration*> kFilters = {
      &kAuthFilterRegistration,  &kHeadersFilterRegistration, &kRateLimitFilterRegistration,
      &kRetryFilterRegistration, &kShedFilterRegistration,
  };
  return kFilters;
}

const FilterRegistration* FindFilter(std::string_view name) {
  for (const FilterRegistration* r : FilterRegistry()) {
    if (r->name == name) return r;
  }
  return nullptr;
}

std::string FilterNames() {
  const auto& filters = FilterRegistry();
  std::string names;
  for (size_t i = 0; i < filters.size(); ++i) {
    if (i > 0) names += i + 1 == filters.size() ? " or " : ", ";
    names += filters[i]->name;
  }
  return names;
}

FilterSpec MakeFilterSpec(std::string_view name, std::shared_ptr<const FilterConfig> config) {
  const FilterRegistration* registration = FindFilter(name);
  if (!registration) std::abort();  // a programming error: tests name built-in filters
  return FilterSpec{registration, std::move(config)};
}

std::unique_ptr<Filter> CreateFilter(const FilterSpec& spec, const FilterEnvironment& env) {
  return spec.registration->create(*spec.config, env);
}

}  // namespace sluice
