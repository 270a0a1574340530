// The TLS and HTTP/2 parts of the configuration: listener TLS (certificates, versions,
// tickets, client certificates), TLS toward a cluster's endpoints, and the HTTP/2 limits.
// Files are loaded while parsing, so a bad certificate stops a start or a reload with its
// name. Control thread only.
#ifndef SLUICE_PROXY_CONFIG_TLS_CONFIG_LOADER_H_
#define SLUICE_PROXY_CONFIG_TLS_CONFIG_LOADER_H_

#include <string>

#include "absl/status/status.h"
#include "common/yaml_field.h"
#include "proxy/config/config.h"

namespace sluice {

// `listener.tls`; builds listener.tls_context too (needs listener.name and http2 set).
absl::Status ParseListenerTls(const Field& f, const std::string& base_dir,
                              ListenerConfig* listener);
// `admin.tls`: the same keys as a listener's, except client_ca_file (bearer tokens
// authenticate); builds admin->tls_context (HTTP/1.1 only).
absl::Status ParseAdminTls(const Field& f, const std::string& base_dir, AdminConfig* admin);
// A cluster's (or the tunnels') `tls`.
absl::Status ParseUpstreamTls(const Field& f, const std::string& base_dir, UpstreamTlsConfig* out);
absl::Status ParseHttp2(const Field& f, Http2Settings* out);
// Rebuilds every listener's TLS context, and the admin listener's, from their files (a
// certificate file changed).
absl::Status RebuildTlsContexts(Config* config);
// Once `config` is the one in force: each TLS listener's ticket keys as it says
// (ServerTlsContext::ApplyTicketKeys).
void ApplyTicketKeys(const Config& config);
// Every certificate, key, OCSP and CA file the listeners (and the admin listener) read.
std::vector<std::string> TlsFiles(const Config& config);

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_TLS_CONFIG_LOADER_H_
