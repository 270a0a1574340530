// A TCP socket on a worker loop with an output queue: the one place where sluice reads, writes
// and closes sockets, for downstream and upstream connections alike.
//
// The socket is watched with a uv_poll_t and read, written, connected and shut down here with
// the system calls themselves: a poll handle is 160 bytes where libuv's uv_tcp_t is 248, and
// every idle connection carries one (issue 24: idle memory). The loop is still libuv's.
//
// Writes are coalesced: Write() appends to the queue and the queue is flushed once, when the
// libuv callback that produced the writes returns (LoopContext deferred task), with a single
// send(2) when the kernel takes it all. That turns "response head, body, end" into one system
// call without holding a response back behind other connections' events. What the kernel
// does not take waits for the socket to be writable and is reported drained when it is out.
//
// Reads use the loop's shared read buffer, and the output queue is a pooled buffer taken for
// the first byte that waits and given back once the queue is empty: nothing is allocated per
// idle connection.
//
// TLS (StartTls): the same stream carries an OpenSSL session whose network side is a custom
// BIO: ciphertext goes straight into the output queue and is read straight from the loop's read
// buffer, so TLS adds no copy of its own. Plaintext written in one callback is encrypted at
// flush time, so a response head and its body travel in one record. The handler sees only
// plaintext; a client stream reports OnStreamConnected once the handshake is done, a server
// stream OnTlsEstablished.
//
// Errors are libuv error codes (on Linux the negated errno) so that owners and logs read the
// same as before the poll handle.
//
// Lifetime: embedded in its owner (a connection), whose OnStreamClosed() runs from the libuv
// close callback; that is where the owner frees itself (STYLE.md rule 8). Loop thread only.
#ifndef SLUICE_PROXY_NET_TCP_STREAM_H_
#define SLUICE_PROXY_NET_TCP_STREAM_H_

#include <openssl/ssl.h>
#include <uv.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/event/loop_context.h"

namespace sluice {

class TcpStream final : private DeferredTask {
 public:
  class Handler {
   public:
    // Bytes arrived; valid only during the call.
    virtual void OnStreamRead(const char* data, size_t len) = 0;
    // The peer half-closed (FIN). Reading has stopped.
    virtual void OnStreamEof() = 0;
    // A read, write or connect failed (libuv error code). The owner should Close().
    virtual void OnStreamError(int error) = 0;
    // Every queued byte was handed to the kernel.
    virtual void OnStreamDrained() = 0;
    // Connect() finished successfully (with TLS: the handshake too).
    virtual void OnStreamConnected() {}
    // A server-side TLS handshake finished (ALPN and SNI are known now).
    virtual void OnTlsEstablished() {}
    // The handle is closed: the owner may free itself (and this stream) now.
    virtual void OnStreamClosed() = 0;

   protected:
    virtual ~Handler() = default;
  };

  TcpStream(LoopContext* context, Handler* handler);
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;
  ~TcpStream() override;

  // Readies the stream; call before anything else. From here on Close() always ends in
  // OnStreamClosed, whether or not a socket was ever adopted or connected. Returns 0 (a libuv
  // error code, kept so that owners treat every stream alike).
  int Init();

  // Takes an accepted, non-blocking socket (the stream closes it, on failure too). Returns a
  // libuv error code.
  int Adopt(int fd);
  // Non-blocking connect on a new socket; OnStreamConnected or OnStreamError follows.
  int Connect(const sockaddr* address);
  // The socket, or -1 before Adopt/Connect and once closing.
  int fd() const;

  // Socket options for a connected socket: TCP_NODELAY, and TCP_NOTSENT_LOWAT so the kernel
  // keeps at most this much unsent data. Without the latter a slow reader can sit behind
  // megabytes of autotuned send buffer, and progress is invisible to the body idle timeout.
  void TuneSocket(int not_sent_low_water);

  int StartReading();
  void StopReading();
  bool reading() const { return reading_; }

  // Queues bytes (copied). Ignored once closing or after a write error.
  void Write(std::string_view data);
  void Write(std::string_view a, std::string_view b);
  void Write(std::string_view a, std::string_view b, std::string_view c);
  // Bytes accepted by Write() and not yet taken by the kernel.
  size_t queued_bytes() const;
  // Sends FIN once the queue is empty; reading may go on (half-close).
  void ShutdownWrite();
  bool write_shut() const { return shutdown_requested_; }

  // Runs TLS over this stream from now on; takes ownership of `ssl`, which the caller set up
  // for its role (SSL_set_accept_state or SSL_set_connect_state, SNI, verification). Call
  // before Connect() (client) or before the first read (server).
  void StartTls(SSL* ssl);
  SSL* ssl() const;
  // The server handshake waited for the loop's handshake budget (LoopContext).
  bool handshake_waited() const;
  // Why the TLS session failed (after OnStreamError), or empty.
  const std::string& tls_error() const;
  // The protocol the peers agreed on by ALPN ("h2", "http/1.1"), or empty.
  std::string_view alpn() const;

  // Closes now; queued output is dropped. OnStreamClosed follows from the close callback
  // (only if Init() succeeded: otherwise there is nothing to close and no callback).
  void Close();
  bool closing() const { return closing_; }

 private:
  struct Tls;
  friend struct TlsBio;

  void RunDeferred() override;  // flush (or, closed without a socket, OnStreamClosed)
  void ResumeHandshake();       // the loop's handshake budget has room (Tls, a HandshakeWaiter)
  LoopContext* context() const { return LoopContext::From(poll_.loop); }
  void PrepareOut();
  void ReleaseOut();
  size_t out_size() const { return out_ ? out_->size() - out_sent_ : 0; }
  void ScheduleFlush();
  void Flush();
  bool Send();  // as much of the queue as the kernel takes; false after an error
  void MaybeShutdown();
  int WatchSocket(int fd);  // the poll handle on `fd` (closed on failure)
  void UpdatePoll();        // watches for what the stream waits for now
  void OnPoll(int status, int events);
  void OnReadable(bool to_the_end = false);
  void ReadSocket(bool to_the_end);  // up to kReadsPerEvent reads, each to the handler
  // A server TLS stream on a loop with a handshake budget, younger than the loop's young age.
  bool young_server() const;
  void OnWritable();
  void OnConnectDone(int error);
  int SocketError() const;  // SO_ERROR as a libuv error code (0: none)
  void ReportError(int error);
  void OnTlsRead(const char* data, size_t len);
  bool AdvanceHandshake();
  void EncryptPending();
  void FailTls(int ret, const char* what);
  bool HasOutput() const;

  // The loop is found through the handle (poll_.loop, set before the handle is initialized):
  // a connection does not carry the context twice.
  uv_poll_t poll_;
  Handler* handler_;
  std::unique_ptr<std::string> out_;  // pooled (LoopContext); bytes not yet taken by the kernel
  std::unique_ptr<Tls> tls_;          // only on TLS connections
  uint32_t out_sent_ = 0;             // bytes at the front of *out_ the kernel has taken
  uint8_t events_ = 0;                // what poll_ watches (UV_READABLE | UV_WRITABLE)
  bool initialized_ : 1 = false;
  bool polling_ : 1 = false;  // poll_ holds the socket (uv_poll_init succeeded)
  bool reading_ : 1 = false;
  bool writing_ : 1 = false;     // the kernel did not take the queue: waiting for writable
  bool connecting_ : 1 = false;  // a connect is in progress
  bool refused_ : 1 = false;     // connect(2) refused at once: reported from the deferred task
  bool shutdown_requested_ : 1 = false;
  bool shutdown_started_ : 1 = false;
  bool closing_ : 1 = false;
  bool failed_ : 1 = false;
  bool budget_paused_ : 1 = false;  // a young stream's read waits for the handshake budget
};

}  // namespace sluice

#endif  // SLUICE_PROXY_NET_TCP_STREAM_H_
