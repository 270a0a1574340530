// The configuration of the DNS step: `dns:` (proxy/control/dns_control.h for what it does).
// Part of proxy/config/config_loader.h; errors name file, line and key like the rest.
#ifndef SLUICE_PROXY_CONFIG_DNS_CONFIG_LOADER_H_
#define SLUICE_PROXY_CONFIG_DNS_CONFIG_LOADER_H_

#include <string>

#include "absl/status/status.h"
#include "common/yaml_field.h"
#include "proxy/config/config.h"

namespace sluice {

// `dns:` comes after `steering:` (its records are keyed by region).
absl::Status ParseDns(const Field& f, const std::string& base_dir, const Config& config,
                      DnsConfig* out);

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_DNS_CONFIG_LOADER_H_
