#include "proxy/net/listen_socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"

namespace sluice {

namespace {

absl::StatusOr<int> BoundSocket(const SocketAddress& address, PortSharing sharing) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrFormat("socket(): %s", std::strerror(errno)));
  }
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      (sharing == PortSharing::kWorkers &&
       setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrFormat("setsockopt(SO_REUSEPORT): %s", std::strerror(err)));
  }
  if (address.family() == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd, address.sockaddr_ptr(), address.sockaddr_len()) != 0) {
    int err = errno;
    ::close(fd);
    std::string why = std::strerror(err);
    if (err == EADDRINUSE) why += " (another process listens there: a second sluice?)";
    return absl::UnavailableError(
        absl::StrFormat("cannot listen on %s: %s", address.ToString(), why));
  }
  return fd;
}

}  // namespace

absl::Status CheckPortFree(const SocketAddress& address) {
  if (address.port() == 0) return absl::OkStatus();  // the kernel picks a free one
  absl::StatusOr<int> fd = BoundSocket(address, PortSharing::kExclusive);
  if (!fd.ok()) return fd.status();
  ::close(*fd);
  return absl::OkStatus();
}

absl::StatusOr<int> BindListenSocket(const SocketAddress& address, int backlog,
                                     PortSharing sharing) {
  absl::StatusOr<int> bound = BoundSocket(address, sharing);
  if (!bound.ok()) return bound.status();
  int fd = *bound;
  if (::listen(fd, backlog) != 0) {
    int err = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrFormat("listen() on %s: %s", address.ToString(), std::strerror(err)));
  }
  return fd;
}

}  // namespace sluice
