#include "proxy/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "proxy/downstream_connection.h"
#include "proxy/worker.h"

namespace sluice {

absl::StatusOr<int> BindListenSocket(const SocketAddress& address, int backlog) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrFormat("socket(): %s", std::strerror(errno)));
  }
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
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
    return absl::UnavailableError(
        absl::StrFormat("cannot listen on %s: %s", address.ToString(), std::strerror(err)));
  }
  if (::listen(fd, backlog) != 0) {
    int err = errno;
    ::close(fd);
    return absl::UnavailableError(
        absl::StrFormat("listen() on %s: %s", address.ToString(), std::strerror(err)));
  }
  return fd;
}

Listener::Listener(Worker* worker, const ListenerSocket& socket)
    : worker_(worker),
      key_(socket.key),
      fd_(socket.fd),
      backlog_(socket.backlog),
      options_(socket.options) {
  handle_.data = this;
}

int Listener::Start() {
  int rc = uv_tcp_init(worker_->context()->loop(), &handle_);
  if (rc != 0) return rc;
  handle_.data = this;
  opened_ = true;
  rc = uv_tcp_open(&handle_, fd_);
  if (rc != 0) {
    ::close(fd_);  // not adopted by the handle
    fd_ = -1;
    return rc;
  }
  return uv_listen(reinterpret_cast<uv_stream_t*>(&handle_), backlog_,
                   [](uv_stream_t* server, int status) {
                     static_cast<Listener*>(server->data)->OnConnection(status);
                   });
}

void Listener::OnConnection(int status) {
  if (status < 0) {
    // EMFILE and friends: the connection waits in the backlog; try again on the next event.
    LOG_WARN("listener %s: accept failed: %s", key_, uv_strerror(status));
    return;
  }
  DownstreamConnection::Accept(worker_, reinterpret_cast<uv_stream_t*>(&handle_), options_);
}

void Listener::CloseAndDelete() {
  if (!opened_) {
    if (fd_ >= 0) ::close(fd_);
    delete this;
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_),
           [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
}

}  // namespace sluice
