// Loopback sockets for tests of clients: a port something listens on, or one nothing does.
#ifndef SLUICE_TESTS_PROXY_SOCKET_TEST_UTIL_H_
#define SLUICE_TESTS_PROXY_SOCKET_TEST_UTIL_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/socket_address.h"
#include "gtest/gtest.h"

namespace sluice {

// A socket bound to 127.0.0.1 on a port the kernel picked, listening when `backlog` > 0;
// `*address` is where. Returns the descriptor (the caller closes it).
inline int BindLoopback(SocketAddress* address, int backlog) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  if (backlog > 0) {
    EXPECT_EQ(::listen(fd, backlog), 0);
  }
  socklen_t len = sizeof(sin);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  *address = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&sin));
  return fd;
}

// An address where nothing listens: a connection to it is refused.
inline SocketAddress ClosedLoopbackPort() {
  SocketAddress address;
  ::close(BindLoopback(&address, 0));
  return address;
}

}  // namespace sluice

#endif  // SLUICE_TESTS_PROXY_SOCKET_TEST_UTIL_H_
