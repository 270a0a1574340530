#include "proxy/worker/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "proxy/worker/downstream_connection.h"
#include "proxy/worker/worker.h"

namespace sluice {

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
  LoopContext* context = worker_->context();
  if (options_.tls && context->handshake_budget_enabled() && !context->HandshakeBudgetLeft()) {
    context->WaitForHandshakeBudget(this);  // not accepted: libuv waits for ResumeHandshake
    return;
  }
  AcceptOne();
}

void Listener::AcceptOne() {
  LoopContext* context = worker_->context();
  if (!options_.tls || !context->handshake_budget_enabled()) {
    DownstreamConnection::Accept(worker_, reinterpret_cast<uv_stream_t*>(&handle_), options_);
    return;
  }
  int64_t start = SystemClock().MonotonicNanos();
  DownstreamConnection::Accept(worker_, reinterpret_cast<uv_stream_t*>(&handle_), options_);
  context->ChargeHandshake(SystemClock().MonotonicNanos() - start);
}

void Listener::ResumeHandshake() {
  if (closing_) return;
  AcceptOne();
}

void Listener::CloseAndDelete() {
  closing_ = true;
  StopWaitingForBudget();
  if (!opened_) {
    if (fd_ >= 0) ::close(fd_);
    delete this;
    return;
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_),
           [](uv_handle_t* h) { delete static_cast<Listener*>(h->data); });
}

}  // namespace sluice
