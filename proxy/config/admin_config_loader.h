// The configuration of the control plane: `admin:` (the admin listener and its bearer tokens),
// `controller:` (state file, audit log, gates, hooks) and `metrics:` (what counts as a stream
// start). Part of proxy/config/config_loader.h; errors name file, line and key like the rest.
#ifndef SLUICE_PROXY_CONFIG_ADMIN_CONFIG_LOADER_H_
#define SLUICE_PROXY_CONFIG_ADMIN_CONFIG_LOADER_H_

#include <string>

#include "absl/status/status.h"
#include "common/yaml_field.h"
#include "proxy/config/config.h"

namespace sluice {

// The defaults when the file has no `admin:` section: on, at kDefaultAdminAddress, no tokens
// (the JSON API then answers 401 to everything; /metrics, /healthz and /readyz stay open).
AdminConfig DefaultAdminConfig();

absl::Status ParseAdmin(const Field& f, const std::string& base_dir, AdminConfig* out);
absl::Status ParseController(const Field& f, const std::string& base_dir, ControllerConfig* out);
absl::Status ParseMetrics(const Field& f, const Config& config, std::vector<StreamStartRule>* out);

// `fleet:` needs `steering:` (it shares the steering table) and comes after it.
absl::Status ParseFleet(const Field& f, const std::string& base_dir, const Config& config,
                        FleetConfig* out);

absl::Status ParseAccessLog(const Field& f, const std::string& base_dir, AccessLogConfig* out);

// A list of address ranges ("10.0.0.0/8", "::1/128", "192.0.2.7") into `out`.
absl::Status ReadCidrSet(const Field& f, CidrSet* out);

// "--admin ADDRESS" or "--admin off" on the command line.
absl::Status ApplyAdminFlag(const std::string& value, AdminConfig* out);

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_ADMIN_CONFIG_LOADER_H_
