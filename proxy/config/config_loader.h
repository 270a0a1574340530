// Reads and validates a YAML configuration file. Every error names the file, the line and the
// key, e.g. "conf/sluice.yaml:14: clusters[0].endpoints[1]: invalid port in \"10.0.0.1:99999\"".
// Unknown keys are errors, so a typo never silently becomes a default.
//
// Runs on the control thread (start and SIGHUP); never on a worker.
#ifndef SLUICE_PROXY_CONFIG_CONFIG_LOADER_H_
#define SLUICE_PROXY_CONFIG_CONFIG_LOADER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/yaml_field.h"
#include "proxy/config/config.h"

namespace sluice {

absl::StatusOr<ConfigPtr> LoadConfigFile(const std::string& path);

// Parses YAML text; `source` names it in error messages.
absl::StatusOr<ConfigPtr> ParseConfig(std::string_view yaml, const std::string& source);

// Cross-field checks shared by the file loader and the quick-start flags; resolves route
// cluster names and a workers value of 0. `source` prefixes the messages.
absl::Status ValidateConfig(Config& config);

// "10.0.0.1:80", "[::1]:80" or "origin.internal:80" (a name the control thread resolves).
absl::StatusOr<EndpointConfig> ParseEndpoint(std::string_view text);

// The HTTP/2 settings of a pool that a cluster's `pool` and `steering.tunnel` share, each
// under its own key names: connections kept warm, the keep-alive PING interval, the first and
// the largest stream window. The caller has checked the map's keys.
struct Http2PoolKeys {
  const char* warm;
  const char* ping_interval;
  const char* window;
  const char* max_window;
};
absl::Status ParseHttp2Pool(const Field& f, const Http2PoolKeys& keys, PoolConfig* pool);

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_CONFIG_LOADER_H_
