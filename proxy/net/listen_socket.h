// Listening sockets, made by the control thread before privileges are dropped and adopted by a
// loop with uv_tcp_open (libuv 1.44 cannot set SO_REUSEPORT itself).
#ifndef SLUICE_PROXY_NET_LISTEN_SOCKET_H_
#define SLUICE_PROXY_NET_LISTEN_SOCKET_H_

#include "absl/status/statusor.h"
#include "common/socket_address.h"

namespace sluice {

// Creates a non-blocking TCP socket bound to `address` with SO_REUSEADDR and SO_REUSEPORT and
// listening (IPv6 sockets are IPv6-only). Control thread. The caller owns the descriptor.
absl::StatusOr<int> BindListenSocket(const SocketAddress& address, int backlog);

}  // namespace sluice

#endif  // SLUICE_PROXY_NET_LISTEN_SOCKET_H_
