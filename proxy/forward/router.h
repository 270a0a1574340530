// Maps a normalized request (host and path) to a route: routes are tried in configuration
// order and the first match wins. Built once per configuration snapshot; read-only after.
//
// Host patterns: "*" (any host), "example.com" (exact, case-insensitive, port ignored) and
// "*.example.com" (any subdomain, not the bare domain). A path prefix matches whole segments:
// "/api" matches "/api" and "/api/v1" but not "/apiary"; a prefix ending in "/" matches as a
// plain prefix.
#ifndef SLUICE_PROXY_FORWARD_ROUTER_H_
#define SLUICE_PROXY_FORWARD_ROUTER_H_

#include <string_view>
#include <vector>

#include "proxy/config/config.h"

namespace sluice {

class Router {
 public:
  explicit Router(const std::vector<RouteConfig>& routes);

  // `host` is lower-case without port (may be empty for HTTP/1.0 without Host); `path` is
  // normalized. Returns nullptr when no route matches.
  const RouteConfig* Match(std::string_view host, std::string_view path) const;

  static bool HostMatches(std::string_view pattern, std::string_view host);
  static bool PathMatches(std::string_view prefix, std::string_view path);

 private:
  const std::vector<RouteConfig>& routes_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_ROUTER_H_
