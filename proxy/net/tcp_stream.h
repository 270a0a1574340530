// A TCP socket on a worker loop with an output queue: the one place where sluice reads, writes
// and closes sockets, for downstream and upstream connections alike.
//
// Writes are coalesced: Write() appends to the queue and the queue is flushed once, when the
// libuv callback that produced the writes returns (LoopContext deferred task), with a single
// write(2) when the kernel takes it all. That turns "response head, body, end" into one system
// call without holding a response back behind other connections' events. What the kernel
// does not take is handed to uv_write and reported drained when done.
//
// Reads use the loop's shared read buffer: nothing is allocated per idle connection.
//
// TLS (StartTls): the same stream carries an OpenSSL session whose network side is a custom
// BIO: ciphertext goes straight into the output queue and is read straight from the loop's read
// buffer, so TLS adds no copy of its own. Plaintext written in one callback is encrypted at
// flush time, so a response head and its body travel in one record. The handler sees only
// plaintext; a client stream reports OnStreamConnected once the handshake is done, a server
// stream OnTlsEstablished.
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

  // uv_tcp_init; must succeed before anything else. Returns a libuv error code.
  int Init();
  uv_tcp_t* handle() { return &handle_; }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&handle_); }

  // Non-blocking connect; OnStreamConnected or OnStreamError follows.
  int Connect(const sockaddr* address);

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
  struct InFlight;
  struct Tls;
  friend struct TlsBio;

  void RunDeferred() override;  // flush
  void ResumeHandshake();       // the loop's handshake budget has room (Tls, a HandshakeWaiter)
  void PrepareOut();
  void ReleaseOut();
  void ScheduleFlush();
  void Flush();
  void StartUvWrite();
  void MaybeShutdown();
  void OnRead(ssize_t nread, const uv_buf_t* buf);
  void OnWriteDone(int status);
  void ReportError(int error);
  void OnTlsRead(const char* data, size_t len);
  bool AdvanceHandshake();
  void EncryptPending();
  void FailTls(int ret, const char* what);
  bool HasOutput() const;

  uv_tcp_t handle_;
  LoopContext* context_;
  Handler* handler_;
  std::string out_;                      // bytes not yet given to the kernel or to uv_write
  std::unique_ptr<InFlight> in_flight_;  // one uv_write at a time, allocated on first need
  std::unique_ptr<Tls> tls_;             // only on TLS connections
  bool initialized_ = false;
  bool reading_ = false;
  bool writing_ = false;  // a uv_write is in flight
  bool shutdown_requested_ = false;
  bool shutdown_started_ = false;
  bool closing_ = false;
  bool failed_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_NET_TCP_STREAM_H_
