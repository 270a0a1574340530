// The configuration of the sick-region detector: `detection:` (steering/detector.h for what
// each value means). Part of proxy/config/config_loader.h; errors name file, line and key.
#ifndef SLUICE_PROXY_CONFIG_DETECTION_CONFIG_LOADER_H_
#define SLUICE_PROXY_CONFIG_DETECTION_CONFIG_LOADER_H_

#include <string>

#include "absl/status/status.h"
#include "common/yaml_field.h"
#include "proxy/config/config.h"

namespace sluice {

// `detection:` comes after `steering:` and `controller:` (it names regions, and its history
// file defaults to one beside the state file). An absent section leaves detection off, with
// its history still kept when there is a state file.
absl::Status ParseDetection(const Field& f, const std::string& base_dir, const Config& config,
                            DetectionConfig* out);

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_DETECTION_CONFIG_LOADER_H_
