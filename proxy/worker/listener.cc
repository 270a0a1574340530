#include "proxy/worker/listener.h"

#include <unistd.h>

#include "common/clock.h"
#include "proxy/worker/downstream_connection.h"
#include "proxy/worker/worker.h"

namespace sluice {

Listener::Listener(Worker* worker, const ListenerSocket& socket)
    : worker_(worker),
      key_(socket.key),
      fd_(socket.fd),
      backlog_(socket.backlog),
      options_(socket.options) {}

int Listener::Start() {
  acceptor_ = new SocketAcceptor(worker_->context(), this, key_);
  int fd = fd_;
  fd_ = -1;  // the acceptor's now
  return acceptor_->Start(fd, backlog_);
}

bool Listener::MayAccept() {
  LoopContext* context = worker_->context();
  if (options_.tls && context->handshake_budget_enabled() && !context->HandshakeBudgetLeft()) {
    context->WaitForHandshakeBudget(this);  // not accepted: ResumeHandshake goes on
    return false;
  }
  return true;
}

void Listener::OnAccepted(int fd, const sockaddr* peer) {
  LoopContext* context = worker_->context();
  if (!options_.tls || !context->handshake_budget_enabled()) {
    DownstreamConnection::Accept(worker_, fd, peer, options_);
    return;
  }
  int64_t start = SystemClock().MonotonicNanos();
  DownstreamConnection::Accept(worker_, fd, peer, options_);
  context->ChargeHandshake(SystemClock().MonotonicNanos() - start);
}

void Listener::OnAcceptPaused(int /*error*/) { worker_->mutable_metrics().accept_pauses.Add(); }

void Listener::ResumeHandshake() {
  if (acceptor_) acceptor_->Resume();
}

void Listener::CloseAndDelete() {
  StopWaitingForBudget();
  if (acceptor_) {
    acceptor_->CloseAndDelete();
  } else if (fd_ >= 0) {
    ::close(fd_);
  }
  delete this;
}

}  // namespace sluice
