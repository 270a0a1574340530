// The origin part of an http:// or https:// URL (scheme, host, port), as sluice's control-plane
// clients are configured with it: "http://127.0.0.1:2379", "https://[::1]:2379",
// "https://etcd-1.internal:2379". No path, query or user info. And a whole URL with a path, for
// a webhook: "http://127.0.0.1:8000/scale".
#ifndef SLUICE_PROXY_HTTP_URL_H_
#define SLUICE_PROXY_HTTP_URL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/socket_address.h"

namespace sluice {

struct HttpOrigin {
  std::string url;        // as written
  SocketAddress address;  // when the host is an IP address
  bool tls = false;       // https://
  std::string host;       // as in the URL (without brackets): what a certificate must name
  uint16_t port = 0;
  bool named = false;  // a host name: resolve it (off the loop) before connecting
};

// Case-insensitive scheme; one trailing slash is allowed. The error says what is expected.
absl::StatusOr<HttpOrigin> ParseHttpOrigin(std::string_view url);

// An origin and a request target: "https://hooks.internal:8443/scale?fast=1". The origin as
// above, its `url` the whole URL; the target "/" when the URL has no path. No fragment, no user
// info; the target is printable ASCII without spaces.
struct HttpUrl {
  HttpOrigin origin;
  std::string target;  // "/scale?fast=1"
};
absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url);

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_URL_H_
