// What the steering decision needs to know about one request, read from the request as the
// configuration says: the member id (a verified claim, a cookie, a header, or the client
// address as the last resort), the home region (a verified claim, a header, or the configured
// map from member ids to regions) and the cohort (a header or a claim whose value names one, or
// a CIDR file that holds the real client address).
#ifndef SLUICE_PROXY_FORWARD_STEERING_INPUTS_H_
#define SLUICE_PROXY_FORWARD_STEERING_INPUTS_H_

#include <span>
#include <string_view>

#include "common/http_message.h"
#include "common/socket_address.h"
#include "filters/filter.h"
#include "proxy/config/cohort_cidr_map.h"
#include "proxy/config/steering_config.h"
#include "steering/decision.h"

namespace sluice {

// Holds the client address text when that is the member id (the views in MemberRequest point
// into the request's headers, the identity, or here).
struct MemberIdBuffer {
  char text[64];
};

// Where a request comes from, as the forwarder established it.
struct RequestClient {
  // The peer after the PROXY protocol; for a request tunneled in from a peer region, the client
  // that region's sluice forwarded for (FilterContext::client). The member id of last resort.
  SocketAddress address;
  // What cohort CIDR files are matched against (CohortClientAddress).
  SocketAddress cohort_address;
  // Header and cookie sources count (FilterContext::trusted_headers).
  bool trust_headers = false;
};

// The address cohort CIDR files are matched against: for a peer in proxy.trusted_proxies
// (`from_trusted_proxy`), the client it forwarded for (TunneledClient: the last element of
// X-Forwarded-For as the request arrived, before this node appends the peer to it), or the
// peer itself when it names none; otherwise `client` (FilterContext::client).
SocketAddress CohortClientAddress(const HeaderMap& headers, const SocketAddress& client,
                                  bool from_trusted_proxy);

// Fills `out` (member, home, cohort); tunneled_in and unreachable are the caller's. Header
// and cookie sources count only when `client.trust_headers`; claims count when verified.
// `cidr_maps`, by index of config.cohort_rules: the map a CIDR file rule uses now (a worker's
// newest, WorkerSnapshot::cohort_maps); an empty span or a null entry: the rule's own, read
// with the configuration. Allocates nothing.
void ReadSteeringInputs(const SteeringConfig& config, const SteeringTable& table,
                        std::span<const CohortCidrMapPtr> cidr_maps, const RequestHead& request,
                        const Identity& identity, const RequestClient& client,
                        MemberIdBuffer* buffer, MemberRequest* out);

// The value of cookie `name` in the request's Cookie fields; empty if none.
std::string_view FindCookie(const HeaderMap& headers, std::string_view name);

// The client a peer region's sluice (or a trusted proxy) forwarded for: the last element of
// X-Forwarded-For (the address that sluice, or that proxy, appended). False when there is none
// or it is not an IP address.
bool TunneledClient(const HeaderMap& headers, SocketAddress* out);

// The home region of `member` by the map (prefix first, then hash range); -1 if none.
int MapHomeRegion(const HomeRegionMap& map, std::string_view member);

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_STEERING_INPUTS_H_
