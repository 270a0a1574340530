// A listening socket on one worker. With N workers, every configured address is bound N times
// with SO_REUSEPORT (proxy/net/listen_socket.h) and the kernel spreads new connections across
// the workers' sockets (the control thread creates and binds the socket, the worker accepts
// from it with a SocketAcceptor).
#ifndef SLUICE_PROXY_WORKER_LISTENER_H_
#define SLUICE_PROXY_WORKER_LISTENER_H_

#include <uv.h>

#include <string>

#include "absl/status/statusor.h"
#include "common/socket_address.h"
#include "proxy/event/loop_context.h"
#include "proxy/net/socket_acceptor.h"
#include "proxy/tls/server_tls.h"

namespace sluice {

class Worker;

// How a listener's connections start; a reload may change it for new connections.
struct ListenerOptions {
  bool proxy_protocol = false;
  bool http2 = true;                            // h2 by ALPN, or h2c with prior knowledge
  std::shared_ptr<const ServerTlsContext> tls;  // null: cleartext
};

// What the control thread hands a worker for one configured listener.
struct ListenerSocket {
  std::string key;  // the address, "127.0.0.1:8080"
  int fd = -1;      // adopted by the worker (closed with its handle)
  int backlog = 4096;
  ListenerOptions options;
};

// A TLS listener accepts within the loop's handshake budget (LoopContext::SetHandshakeBudget):
// once an iteration's budget is spent, the next connection stays in the kernel's accept queue
// (the acceptor stops watching the socket) and is accepted, first, at the next iteration. A
// storm then waits in the queue instead of in the loop.
class Listener final : private HandshakeWaiter, private SocketAcceptor::Handler {
 public:
  Listener(Worker* worker, const ListenerSocket& socket);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Adopts the descriptor and starts accepting. Returns a libuv error code.
  int Start();
  void set_options(ListenerOptions options) { options_ = std::move(options); }
  // Stops accepting, closes the socket and deletes the listener.
  void CloseAndDelete();

 private:
  ~Listener() override = default;
  // SocketAcceptor::Handler
  bool MayAccept() override;
  void OnAccepted(int fd, const sockaddr* peer) override;
  void OnAcceptPaused(int error) override;  // sluice_accept_pauses_total
  void ResumeHandshake() override;          // the budget has room: accept what waited

  Worker* worker_;
  std::string key_;
  int fd_;
  int backlog_;
  ListenerOptions options_;
  SocketAcceptor* acceptor_ = nullptr;  // frees itself (CloseAndDelete)
};

}  // namespace sluice

#endif  // SLUICE_PROXY_WORKER_LISTENER_H_
