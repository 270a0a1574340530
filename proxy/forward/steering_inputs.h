// What the steering decision needs to know about one request, read from the request as the
// configuration says: the member id (a verified claim, a cookie, a header, or the client
// address as the last resort), the home region (a verified claim, a header, or the configured
// map from member ids to regions) and the cohort (a header or a claim whose value names one).
#ifndef SLUICE_PROXY_FORWARD_STEERING_INPUTS_H_
#define SLUICE_PROXY_FORWARD_STEERING_INPUTS_H_

#include <string_view>

#include "common/http_message.h"
#include "common/socket_address.h"
#include "filters/filter.h"
#include "proxy/config/steering_config.h"
#include "steering/decision.h"

namespace sluice {

// Holds the client address text when that is the member id (the views in MemberRequest point
// into the request's headers, the identity, or here).
struct MemberIdBuffer {
  char text[64];
};

// Fills `out` (member, home, cohort); tunneled_in and unreachable are the caller's. Header
// and cookie sources count only when `trust_headers` (FilterContext::trusted_headers); claims
// count when verified.
void ReadSteeringInputs(const SteeringConfig& config, const SteeringTable& table,
                        const RequestHead& request, const Identity& identity,
                        const SocketAddress& client, bool trust_headers, MemberIdBuffer* buffer,
                        MemberRequest* out);

// The value of cookie `name` in the request's Cookie fields; empty if none.
std::string_view FindCookie(const HeaderMap& headers, std::string_view name);

// The client a peer region's sluice forwarded for: the last element of X-Forwarded-For (the
// address that sluice appended). False when there is none or it is not an IP address.
bool TunneledClient(const HeaderMap& headers, SocketAddress* out);

// The home region of `member` by the map (prefix first, then hash range); -1 if none.
int MapHomeRegion(const HomeRegionMap& map, std::string_view member);

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_STEERING_INPUTS_H_
