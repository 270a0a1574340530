// Parsing of the filter chains of routes and the concurrency limits of clusters from YAML,
// with the same file:line: key errors as the rest of the configuration.
#ifndef SLUICE_PROXY_CONFIG_FILTER_CONFIG_LOADER_H_
#define SLUICE_PROXY_CONFIG_FILTER_CONFIG_LOADER_H_

#include <vector>

#include "absl/status/status.h"
#include "common/yaml_field.h"
#include "filters/filter_factory.h"

namespace sluice {

// clusters[].concurrency
absl::Status ParseConcurrency(const Field& f, ConcurrencyConfig* out);

// routes[].filters. `concurrency` is the route's cluster's limit (nullptr if it has none);
// relative file names (JWKS) are resolved against `base_dir`.
absl::Status ParseFilterChain(const Field& f, const ConcurrencyConfig* concurrency,
                              const std::string& base_dir, std::vector<FilterSpec>* out);

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_FILTER_CONFIG_LOADER_H_
