// A small blocking HTTP/1.1 client for sluice's admin API, used by sluicectl: one request per
// connection (Connection: close), a deadline for the whole exchange, plain HTTP or HTTPS (the
// admin listener's admin.tls): TLS 1.2 or newer, the server's certificate verified against
// --cacert (or the system's CA bundle) and checked for the host name or IP address of the URL,
// with OpenSSL contexts from proxy/tls/client_tls.h.
#ifndef SLUICE_CTL_ADMIN_CLIENT_H_
#define SLUICE_CTL_ADMIN_CLIENT_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sluice {

struct AdminEndpoint {
  std::string name;  // as the user named it (a region, or the URL)
  std::string url;   // http://host:port or https://host:port
  std::string host;  // what an https server's certificate must name (a DNS name or an address)
  std::string port;
  bool tls = false;     // https
  std::string ca_file;  // https: the CA bundle (PEM) to verify with; empty: the system's
};

// "http://127.0.0.1:9901" or "https://admin.example.internal:9901" (a trailing slash is fine;
// the port defaults to 80 and 443). Other schemes are refused.
absl::StatusOr<AdminEndpoint> ParseAdminUrl(std::string_view url);

struct HttpReply {
  int status = 0;
  std::string body;
};

// Sends one request and reads the whole reply. Errors are connection-level (refused, timed
// out, a certificate that does not verify, not HTTP); any HTTP status is a reply.
absl::StatusOr<HttpReply> AdminRequest(const AdminEndpoint& endpoint, std::string_view method,
                                       std::string_view path, std::string_view token,
                                       std::string_view body, absl::Duration timeout);

}  // namespace sluice

#endif  // SLUICE_CTL_ADMIN_CLIENT_H_
