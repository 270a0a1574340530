// A client connection's life: accepted by a worker's listener, optionally a PROXY protocol
// header, optionally a TLS handshake (ALPN picks the protocol), then a codec whose streams are
// served by forwarders: HTTP/2 when ALPN said h2 or a cleartext client opened with the h2c
// preface, HTTP/1.1 otherwise. Timeouts for idle keep-alive (close), slow heads (408) and slow
// handshakes; a graceful close that flushes, half-closes and lingers so the client reads the
// last response; a drain on shutdown.
//
// Owns its socket and codec; frees itself in the socket's close callback. Loop thread only.
#ifndef SLUICE_PROXY_WORKER_DOWNSTREAM_CONNECTION_H_
#define SLUICE_PROXY_WORKER_DOWNSTREAM_CONNECTION_H_

#include <memory>
#include <string>

#include "proxy/event/intrusive_list.h"
#include "proxy/event/timeout_queue.h"
#include "proxy/forward/worker_snapshot.h"
#include "proxy/http/http1_server_codec.h"
#include "proxy/net/tcp_stream.h"
#include "proxy/worker/listener.h"

namespace sluice {

class Http2ServerCodec;
class Worker;

class DownstreamConnection final : private TcpStream::Handler,
                                   private CodecTransport,
                                   private StreamFactory,
                                   private CodecObserver,
                                   private TimeoutTarget {
 public:
  // Takes an accepted socket (`peer` is the client's address). On failure the connection is
  // dropped.
  static void Accept(Worker* worker, int fd, const sockaddr* peer, const ListenerOptions& options);

  // Shutdown: finish the exchange in progress, then close. Idle connections close at once.
  void Drain();
  // Closes now, whatever is in progress.
  void Abort() override;

  ListNode worker_node_;  // in the worker's list of open connections

 private:
  enum class Phase : uint8_t {
    kProxyHeader,  // waiting for the PROXY protocol header
    kHandshake,    // TLS handshake in progress
    kSniff,        // cleartext: HTTP/1.1, or the HTTP/2 preface (h2c with prior knowledge)?
    kHttp,
    kLingering,
    kClosed,
  };

  DownstreamConnection(Worker* worker, const ListenerOptions& options);
  ~DownstreamConnection() override;
  void Start();

  // TcpStream::Handler
  void OnStreamRead(const char* data, size_t len) override;
  void OnStreamEof() override;
  void OnStreamError(int error) override;
  void OnStreamDrained() override;
  void OnStreamClosed() override;
  void OnTlsEstablished() override;
  // CodecTransport
  void Write(std::string_view a, std::string_view b, std::string_view c) override;
  size_t QueuedBytes() const override { return stream_.queued_bytes(); }
  void PauseReading() override;
  void ResumeReading() override;
  void ShutdownWrite() override { stream_.ShutdownWrite(); }
  void CloseAfterWrites() override;
  // StreamFactory
  std::unique_ptr<ServerStreamHandler> NewStream(ServerStream* stream) override;
  // CodecObserver
  void OnCodecStateChanged() override;
  // TimeoutTarget
  void OnTimeout(Timeout* which) override;

  void OnProxyHeaderBytes(const char* data, size_t len);
  // After the PROXY header (if any): the TLS handshake, or the protocol sniff.
  void StartSession(const char* data, size_t len);
  void OnSniffBytes(const char* data, size_t len);
  void StartHttp(bool http2, const char* data, size_t len);
  // Draining a connection that has not sent its first request yet: a client that just
  // connected sends it at once, and is answered rather than dropped unanswered (a binary
  // upgrade drains the old process while clients keep connecting). A short grace, then close.
  void BeginDrainGrace();
  void ArmDrainGrace();  // the timer, for what is left of the grace
  // A request began on a connection in its drain grace: drain it now (close after it).
  void DrainIfRequestBegan();
  // The connection's codec: an HTTP/1 connection's is parked (destroyed) while it is idle and
  // made again here when it is needed.
  ServerCodec& codec();
  Http2ServerCodec* http2_codec() const;  // codec_, when it is HTTP/2
  void ParkIfIdle();

  LoopContext* context() const;  // the worker's
  Worker* worker_;
  TcpStream stream_;
  std::unique_ptr<ServerCodec> codec_;
  std::unique_ptr<std::string> proxy_header_;  // a PROXY header (or h2c preface) not complete yet
  DownstreamInfo info_;
  Timeout timeout_;
  Phase phase_ = Phase::kHttp;
  bool tls_ = false;
  bool http2_ = true;        // the listener speaks HTTP/2
  bool head_timer_ = false;  // timeout_ is the head timeout (not the idle one)
  bool read_paused_ = false;
  bool peer_eof_ = false;         // the client half-closed
  bool counted_ = false;          // in the worker's connection count
  bool client_admitted_ = false;  // counted under info_.client's key (max_connections_per_client)
  bool had_request_ = false;      // a request head began on this connection
  bool drain_pending_ = false;    // draining, waiting for the first request (BeginDrainGrace)
  bool codec_h2_ = false;         // codec_ is an Http2ServerCodec
  uint32_t requests_ = 0;         // served by the HTTP/1 codecs parked so far
  // When the drain grace ends: the low 32 bits of the loop's monotonic clock in milliseconds
  // (a grace is seconds, so the difference is right across a wrap): 4 bytes in every
  // connection instead of 8.
  uint32_t drain_deadline_ms_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_WORKER_DOWNSTREAM_CONNECTION_H_
