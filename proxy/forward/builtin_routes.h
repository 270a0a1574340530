// The routes every sluice answers itself, before the configured routes and their filters,
// whatever the routes say, and never forwarded to an origin:
// - GET or HEAD of exactly "/v1/serving" (origin-form, any query, any Host): whether this node
//   serves (steering/serving.h), for a DNS provider's health check, which no auth filter may
//   hold. "/v1/serving/", and paths that only normalize to it, are routed as usual.
// - GET "/v1/health" tunneled in from a peer region (a verified sluice-hop marker): this node's
//   view, which the peer's controller polls (proxy/control/region_health.h), signed for the poll
//   that asked. From anyone else it is an ordinary path.
//
// Pure: the forwarder finds the route and sends the answer.
#ifndef SLUICE_PROXY_FORWARD_BUILTIN_ROUTES_H_
#define SLUICE_PROXY_FORWARD_BUILTIN_ROUTES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/http_headers.h"
#include "common/http_message.h"
#include "steering/hop_marker.h"
#include "steering/steering_table.h"

namespace sluice {

struct LocalAnswer {
  int status = 200;
  std::string body;
  HeaderMap headers;
};

// Exactly "/v1/serving" as the client sent it, with or without a query: not a path that only
// normalizes to it ("/v1//serving", "/v1/%73erving"), which the routes may serve. Inline: every
// request asks.
inline bool IsServingTarget(std::string_view target) {
  constexpr std::string_view kPath = "/v1/serving";
  return target.size() >= kPath.size() && target.compare(0, kPath.size(), kPath) == 0 &&
         (target.size() == kPath.size() || target[kPath.size()] == '?');
}
// `table` null: steering is off. `draining`: the worker began draining (SIGTERM).
LocalAnswer AnswerServing(HttpMethod method, const SteeringTable* table, bool draining);

// Only for a request tunneled in from a peer region.
inline bool IsPeerHealthRequest(const RequestHead& request, bool tunneled_in) {
  return tunneled_in && request.method == HttpMethod::kGet && request.path == "/v1/health";
}
// `view` null: the node has no view yet (503). `from`, `nonce`: the poll's hop marker.
LocalAnswer AnswerPeerHealth(const std::string* view, const HopSigner& signer,
                             const SteeringTable& table, std::string_view from, uint64_t nonce);

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_BUILTIN_ROUTES_H_
