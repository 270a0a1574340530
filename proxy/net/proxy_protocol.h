// Parser for the PROXY protocol header (versions 1 and 2, haproxy.org/download/2.9/doc/
// proxy-protocol.txt) that an L4 load balancer puts before the client's first byte, so that
// the real client address is known.
//
// Stateless: call it with every byte received so far; it says whether more are needed. Pure
// function; any thread.
#ifndef SLUICE_PROXY_NET_PROXY_PROTOCOL_H_
#define SLUICE_PROXY_NET_PROXY_PROTOCOL_H_

#include <cstddef>
#include <string_view>

#include "common/socket_address.h"

namespace sluice {

// Longest header accepted (v1 is at most 107 bytes; v2 TLVs beyond this are refused).
inline constexpr size_t kMaxProxyHeaderBytes = 4096;

struct ProxyHeader {
  // False for "PROXY UNKNOWN" and v2 LOCAL or unspecified families: keep the socket's own
  // addresses (health checks from the balancer itself).
  bool has_addresses = false;
  SocketAddress source;
  SocketAddress destination;
};

struct ProxyParseResult {
  enum class Status { kNeedMore, kDone, kError };
  Status status = Status::kNeedMore;
  size_t consumed = 0;     // kDone: length of the header
  const char* error = "";  // kError: why
  ProxyHeader header;
};

ProxyParseResult ParseProxyHeader(std::string_view data);

}  // namespace sluice

#endif  // SLUICE_PROXY_NET_PROXY_PROTOCOL_H_
