// Parsing of the `steering:` section: regions and their tunnel endpoints, the local region,
// member id / home region / cohort sources, the tunnel key, and the initial evacuations. Adds
// one cluster per peer region ("region:<name>", its sluice's tunnel endpoints) to the
// configuration, so tunnels use the normal upstream machinery.
#ifndef SLUICE_PROXY_CONFIG_STEERING_CONFIG_LOADER_H_
#define SLUICE_PROXY_CONFIG_STEERING_CONFIG_LOADER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/yaml_field.h"
#include "proxy/config/config.h"

namespace sluice {

inline constexpr std::string_view kTunnelClusterPrefix = "region:";

// `f` is the steering mapping; relative key and cohort CIDR files are resolved against
// `base_dir`. A cohort CIDR file is read here: the cohort names in it join the table's list.
absl::Status ParseSteering(const Field& f, const std::string& base_dir, Config* config);

// The cohort CIDR files `config` reads (each once), for the file watch.
std::vector<std::string> CohortFiles(const Config& config);

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_STEERING_CONFIG_LOADER_H_
