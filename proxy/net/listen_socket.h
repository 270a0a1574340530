// Listening sockets, made by the control thread before privileges are dropped and accepted from
// by a loop's SocketAcceptor (libuv 1.44 cannot set SO_REUSEPORT itself).
#ifndef SLUICE_PROXY_NET_LISTEN_SOCKET_H_
#define SLUICE_PROXY_NET_LISTEN_SOCKET_H_

#include "absl/status/statusor.h"
#include "common/socket_address.h"

namespace sluice {

enum class PortSharing {
  kWorkers,    // SO_REUSEPORT: each worker binds its own socket, the kernel spreads connections
  kExclusive,  // one socket, and no other may bind the address while it is open
};

// Creates a non-blocking TCP socket bound to `address` with SO_REUSEADDR (and SO_REUSEPORT when
// shared by workers) and listening (IPv6 sockets are IPv6-only). Control thread. The caller
// owns the descriptor.
absl::StatusOr<int> BindListenSocket(const SocketAddress& address, int backlog,
                                     PortSharing sharing = PortSharing::kWorkers);

// OK if no socket (of this process or another) listens on `address`: SO_REUSEPORT would let a
// second process of the same user share a port silently, so a new listener checks first.
absl::Status CheckPortFree(const SocketAddress& address);

}  // namespace sluice

#endif  // SLUICE_PROXY_NET_LISTEN_SOCKET_H_
