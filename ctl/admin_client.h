// A small blocking HTTP/1.1 client for sluice's admin API, used by sluicectl: one request per
// connection (Connection: close), a deadline for the whole exchange, plain HTTP only (the
// admin listener is on a private address; TLS comes with the TLS issue).
#ifndef SLUICE_CTL_ADMIN_CLIENT_H_
#define SLUICE_CTL_ADMIN_CLIENT_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sluice {

struct AdminEndpoint {
  std::string name;  // as the user named it (a region, or the URL)
  std::string url;   // http://host:port
  std::string host;
  std::string port;
};

// "http://127.0.0.1:9901" (a trailing slash is fine). Other schemes are refused.
absl::StatusOr<AdminEndpoint> ParseAdminUrl(std::string_view url);

struct HttpReply {
  int status = 0;
  std::string body;
};

// Sends one request and reads the whole reply. Errors are connection-level (refused, timed
// out, not HTTP); any HTTP status is a reply.
absl::StatusOr<HttpReply> AdminRequest(const AdminEndpoint& endpoint, std::string_view method,
                                       std::string_view path, std::string_view token,
                                       std::string_view body, absl::Duration timeout);

}  // namespace sluice

#endif  // SLUICE_CTL_ADMIN_CLIENT_H_
