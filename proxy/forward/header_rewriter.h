// What a proxy changes in the heads it forwards (RFC 9110 section 7.6): hop-by-hop fields go,
// X-Forwarded-For / X-Forwarded-Proto / Via say who forwarded, a request id is added when
// absent, and sluice-* fields from outside are dropped (they are internal between regions).
// Pure functions; any thread.
#ifndef SLUICE_PROXY_FORWARD_HEADER_REWRITER_H_
#define SLUICE_PROXY_FORWARD_HEADER_REWRITER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/http_message.h"
#include "proxy/config/config.h"
#include "proxy/http/http_codec.h"

namespace sluice {

// Rewrites a client's request head in place into the head to send upstream. `random_hi/lo`
// seed the request id when one is generated.
// `trusted_peer`: the request came from a peer region's sluice through a verified tunnel, so
// its X-Forwarded-For and X-Forwarded-Proto are kept as from a trusted proxy.
void PrepareUpstreamRequest(RequestHead& head, const ProxyOptions& options,
                            const DownstreamInfo& downstream, uint64_t random_hi,
                            uint64_t random_lo, bool trusted_peer = false);

// Serializes the prepared head for an HTTP/1.1 origin: origin-form target, the framing of the
// body as it will be sent (`framing`), "Connection: upgrade" for an upgrade. `default_host`
// fills Host for an HTTP/1.0 client that sent none.
void SerializeUpstreamRequest(const RequestHead& head, std::string_view default_host,
                              std::string* out);

// Rewrites an origin's response head in place into the head to send to the client. The
// codec adds its own framing fields, so Content-Length goes unless the response has no body.
void PrepareDownstreamResponse(ResponseHead& head, const ProxyOptions& options);

// A random (version 4) UUID: "3f2a...-....-4...-....-............", written into `out`
// (exactly kRequestIdLength bytes, no terminator), or returned as a string.
inline constexpr size_t kRequestIdLength = 36;
void FormatRequestId(uint64_t hi, uint64_t lo, char out[kRequestIdLength]);
std::string FormatRequestId(uint64_t hi, uint64_t lo);

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_HEADER_REWRITER_H_
