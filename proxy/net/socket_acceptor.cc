#include "proxy/net/socket_acceptor.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_format.h"

namespace sluice {

SocketAcceptor::SocketAcceptor(LoopContext* context, Handler* handler, std::string name)
    : context_(context), handler_(handler), name_(std::move(name)), pause_(this) {
  poll_.data = this;
}

int SocketAcceptor::Start(int fd, int backlog) {
  fd_ = fd;
  // The socket listens already (BindListenSocket, or an inherited one); listen(2) again sets
  // this configuration's backlog.
  if (::listen(fd_, backlog) != 0) return -errno;
  int rc = uv_poll_init_socket(context_->loop(), &poll_, fd_);
  if (rc != 0) return rc;
  poll_.data = this;
  polling_ = true;
  Watch();
  return 0;
}

void SocketAcceptor::Watch() {
  if (watching_ || closing_ || !polling_ || pause_.armed()) return;
  int rc = uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* handle, int status, int) {
    auto* self = static_cast<SocketAcceptor*>(handle->data);
    if (status < 0) {
      // libuv stopped watching (POLLERR on a listening socket: not expected). Try again after
      // a pause rather than never.
      self->watching_ = false;
      LOG_WARN("listener %s: poll failed: %s; accepting again in %s", self->name_,
               uv_strerror(status), absl::FormatDuration(kOutOfFilesPause));
      self->pause_.Arm(self->context_->Timeouts(kOutOfFilesPause));
      return;
    }
    self->AcceptSome();
    self->context_->RunAfterCallback();
  });
  if (rc != 0) {
    LOG_WARN("listener %s: cannot watch the socket: %s", name_, uv_strerror(rc));
    return;
  }
  watching_ = true;
}

void SocketAcceptor::StopWatching() {
  if (!watching_) return;
  uv_poll_stop(&poll_);
  watching_ = false;
}

void SocketAcceptor::Resume() {
  if (closing_ || pause_.armed()) return;
  // What waited goes first; refused again (the budget ran out meanwhile), the handler calls
  // Resume() once more and the socket stays unwatched until then.
  if (AcceptSome() && !closing_) Watch();
}

bool SocketAcceptor::AcceptSome() {
  for (int i = 0; i < kAcceptsPerEvent && !closing_; ++i) {
    if (!handler_->MayAccept()) {
      StopWatching();  // the handler calls Resume()
      return false;
    }
    sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    int fd = accept_(fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      handler_->OnAccepted(fd, reinterpret_cast<const sockaddr*>(&peer));
      continue;
    }
    const int error = errno;
    if (error == EAGAIN || error == EWOULDBLOCK) return true;
    // Gone before we took it, or interrupted: the next one.
    if (error == ECONNABORTED || error == EINTR || error == EPROTO) continue;
    // Out of descriptors (EMFILE, ENFILE) or memory, or anything else: the connections wait
    // in the kernel's queue for a while, rather than the loop spinning on a readable socket.
    if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
      ++out_of_files_;
    }
    StopWatching();
    pause_.Arm(context_->Timeouts(kOutOfFilesPause));
    handler_->OnAcceptPaused(error);
    uint64_t held_back = 0;
    if (warnings_.Allow(context_->clock().MonotonicNanos(), &held_back)) {
      LOG_WARN("listener %s: accept failed: %s; accepting again in %s%s", name_, strerror(error),
               absl::FormatDuration(kOutOfFilesPause),
               held_back == 0 ? "" : absl::StrFormat(" (%d warnings held back)", held_back));
    }
    return false;  // the pause's end resumes
  }
  return true;
}

void SocketAcceptor::OnTimeout(Timeout*) {
  if (!closing_) Resume();
}

void SocketAcceptor::CloseAndDelete() {
  closing_ = true;
  pause_.Disarm();
  if (!polling_) {
    if (fd_ >= 0) ::close(fd_);
    delete this;
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_),
           [](uv_handle_t* h) { delete static_cast<SocketAcceptor*>(h->data); });
  ::close(fd_);  // out of epoll already (uv_close stops the handle at once)
}

}  // namespace sluice
