// A listening socket on a loop: watched with a uv_poll_t and accepted with accept4(2), so that
// each new connection arrives as a bare descriptor (non-blocking, close-on-exec) with its peer's
// address, ready for TcpStream::Adopt. libuv's own listener would accept into a uv_tcp_t, the
// 248-byte handle TcpStream no longer uses.
//
// At most kAcceptsPerEvent connections are taken per readable event; the socket stays readable
// and the next loop iteration takes more, so a burst of connects does not hold the loop from
// the connections it already has. The handler may refuse to take more for now (MayAccept:
// the TLS handshake budget): the acceptor stops watching, the rest wait in the kernel's accept
// queue, and Resume() goes on. When accept4 fails (the process is out of descriptors: EMFILE,
// ENFILE; or memory; or anything else but a connection that went away) it stops watching for
// kOutOfFilesPause, as nginx does, and the connections wait in the queue instead of spinning
// the loop.
//
// Heap-allocated: CloseAndDelete() stops accepting, closes the socket and frees the acceptor
// from the handle's close callback; the handler hears nothing after it. Loop thread only.
#ifndef SLUICE_PROXY_NET_SOCKET_ACCEPTOR_H_
#define SLUICE_PROXY_NET_SOCKET_ACCEPTOR_H_

#include <sys/socket.h>
#include <uv.h>

#include <string>

#include "absl/time/time.h"
#include "common/log.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/timeout_queue.h"

namespace sluice {

class SocketAcceptor final : private TimeoutTarget {
 public:
  static constexpr int kAcceptsPerEvent = 64;
  static constexpr absl::Duration kOutOfFilesPause = absl::Milliseconds(100);

  class Handler {
   public:
    // May one more connection be accepted now? False: the acceptor stops watching until
    // Resume() (the handler arranges to call it).
    virtual bool MayAccept() { return true; }
    // A new connection; `fd` is the handler's from now on. `peer` is its address.
    virtual void OnAccepted(int fd, const sockaddr* peer) = 0;
    // accept4 failed with `error` (an errno): the acceptor pauses for kOutOfFilesPause.
    virtual void OnAcceptPaused(int error) { (void)error; }

   protected:
    virtual ~Handler() = default;
  };

  // `name` (the address) names the listener in warnings.
  SocketAcceptor(LoopContext* context, Handler* handler, std::string name);
  SocketAcceptor(const SocketAcceptor&) = delete;
  SocketAcceptor& operator=(const SocketAcceptor&) = delete;

  // Adopts the bound socket `fd` (closed by CloseAndDelete, also after a failed Start), sets
  // its backlog and starts accepting. Returns a libuv error code.
  int Start(int fd, int backlog);
  // Watches again after the handler refused (MayAccept) and accepts what waits.
  void Resume();
  // Stops accepting and closes the socket; the acceptor frees itself.
  void CloseAndDelete();

  int fd() const { return fd_; }
  // Tests make accept4 fail on purpose (EMFILE) without starving the process of descriptors.
  using AcceptFunction = int (*)(int fd, sockaddr* peer, socklen_t* len, int flags);
  void set_accept_for_testing(AcceptFunction accept) { accept_ = accept; }
  // Times the acceptor paused for want of descriptors.
  uint64_t out_of_files() const { return out_of_files_; }

 private:
  ~SocketAcceptor() override = default;
  void Watch();
  void StopWatching();
  // Accepts up to a batch; false if it stopped watching (a refusal, or out of descriptors).
  bool AcceptSome();
  void OnTimeout(Timeout* which) override;  // the out-of-files pause is over

  uv_poll_t poll_;
  AcceptFunction accept_ = &::accept4;
  LoopContext* context_;
  Handler* handler_;
  std::string name_;
  Timeout pause_;
  LogRateLimit warnings_{1};
  uint64_t out_of_files_ = 0;
  int fd_ = -1;
  bool polling_ = false;   // poll_ is initialized (closed by CloseAndDelete)
  bool watching_ = false;  // poll_ is started
  bool closing_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_NET_SOCKET_ACCEPTOR_H_
