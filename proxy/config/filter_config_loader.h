// routes[].filters: a route's chain, each entry one key naming a filter of the registry
// (filters/registry.h) whose own parser reads the body, with the same file:line: key errors
// as the rest of the configuration.
#ifndef SLUICE_PROXY_CONFIG_FILTER_CONFIG_LOADER_H_
#define SLUICE_PROXY_CONFIG_FILTER_CONFIG_LOADER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/yaml_field.h"
#include "filters/registry.h"

namespace sluice {

// `context` carries the route's cluster's concurrency limit (null if it has none) and the
// directory relative file names (JWKS) are resolved against.
absl::Status ParseFilterChain(const Field& f, const FilterParseContext& context,
                              std::vector<FilterSpec>* out);

// The signing-key files that the configuration's filters read (to watch them for changes).
struct Config;
std::vector<std::string> FilterKeyFiles(const Config& config);

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_FILTER_CONFIG_LOADER_H_
