// The registry of filters: what the configuration loader, the workers and the metrics know of
// a filter, so that none of them names one. A filter is one folder, filters/<name>/, holding
// the filter, its configuration parsing and one FilterRegistration (in its config.cc); the
// list of registrations is in filters/registry.cc. Adding a filter touches its folder and that
// list (README, "Writing a filter").
//
// Registrations are constants; everything here may be used from any thread.
#ifndef SLUICE_FILTERS_REGISTRY_H_
#define SLUICE_FILTERS_REGISTRY_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "filters/filter.h"

namespace sluice {

class Field;  // common/yaml_field.h
class ConcurrencyLimiter;
class KeySlots;
struct ConcurrencyConfig;

// A filter's parsed configuration. Each filter's config struct derives from it; the loader
// builds it once and every worker's filter reads it.
class FilterConfig {
 public:
  virtual ~FilterConfig() = default;
};

// What parsing a filter's YAML may look at besides its own body.
struct FilterParseContext {
  const ConcurrencyConfig* concurrency = nullptr;  // the route's cluster's limit, if any
  std::string base_dir;                            // relative file names are resolved here
};

// What a filter may use from the worker that runs it.
struct FilterEnvironment {
  int workers = 1;
  const Clock* clock = nullptr;           // null: the system clock
  ConcurrencyLimiter* limiter = nullptr;  // the route's cluster limiter, if it has one
  KeySlots* key_slots = nullptr;          // the worker's signing keys, by file
};

struct FilterRegistration {
  // The key that names the filter in a route's chain (routes[].filters[].<name>).
  std::string_view name;
  // Reads the filter's YAML body; errors come from Field::Error (file:line: key: message).
  absl::StatusOr<std::shared_ptr<const FilterConfig>> (*parse)(const Field& body,
                                                               const FilterParseContext& context);
  // Builds one worker's filter. The configuration came from `parse`.
  std::unique_ptr<Filter> (*create)(const FilterConfig& config, const FilterEnvironment& env);
  // Its own answers (429, 503) are load being shed: they count in the region's shed rate
  // that the steering gates read.
  bool counts_as_shed = false;
  // It decides whether a failed attempt is tried again. A route without such a filter gets the
  // forwarder's default: a connect failure once more on another endpoint (nothing reached an
  // origin), an idempotent request reset before any response byte once more, in the budget.
  bool decides_retries = false;
  // Files of signing keys the configuration reads: the server watches them and a change
  // reaches every worker's key slots (FilterEnvironment::key_slots). Null: none.
  std::vector<std::string> (*key_files)(const FilterConfig& config) = nullptr;
};

// One filter of a route's chain, as the loader produced it.
struct FilterSpec {
  const FilterRegistration* registration = nullptr;
  std::shared_ptr<const FilterConfig> config;

  std::string_view name() const { return registration->name; }
  // The configuration as its own type, or null when the filter is of another kind.
  template <typename T>
  const T* As() const {
    return dynamic_cast<const T*>(config.get());
  }
};

// Every filter, in the order messages list them.
const std::vector<const FilterRegistration*>& FilterRegistry();
// The registration named `name`, or null.
const FilterRegistration* FindFilter(std::string_view name);
// "auth, headers, rate_limit, retry or shed", for error messages.
std::string FilterNames();

// A spec made in code (tests, benchmarks) for the registered filter `name`, which must exist.
FilterSpec MakeFilterSpec(std::string_view name, std::shared_ptr<const FilterConfig> config);

// Builds a filter for one worker.
std::unique_ptr<Filter> CreateFilter(const FilterSpec& spec, const FilterEnvironment& env);

}  // namespace sluice

#endif  // SLUICE_FILTERS_REGISTRY_H_
