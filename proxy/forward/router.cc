#include "proxy/forward/router.h"
#include "common/strings.h"

namespace sluice {

Router::Router(const std::vector<RouteConfig>& routes) : routes_(routes) {}

bool Router::HostMatches(std::string_view pattern, std::string_view host) {
  if (pattern == "*") return true;
  // A fully qualified name may end with a dot; it names the same host.
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (pattern.starts_with("*.")) {
    std::string_view domain = pattern.substr(1);  // ".example.com"
    return host.size() > domain.size() && host.ends_with(domain);
  }
  return host == pattern;
}

bool Router::PathMatches(std::string_view prefix, std::string_view path) {
  if (!path.starts_with(prefix)) {
    return false;
  }
  if (prefix.back() == '/' || path.size() == prefix.size()) return true;
  char next = path[prefix.size()];
  return next == '/';
}

const RouteConfig* Router::Match(std::string_view host, std::string_view path) const {
  // "OPTIONS *" targets the server as a whole: it matches routes for "/".
  if (path == "*") path = "/";
  for (const RouteConfig& route : routes_) {
    if (HostMatches(route.host, host) && PathMatches(route.path_prefix, path)) return &route;
  }
  return nullptr;
}

}  // namespace sluice
