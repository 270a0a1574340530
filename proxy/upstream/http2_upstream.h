// HTTP/2 toward an endpoint (nghttp2 client): a few long-lived connections per endpoint and
// worker, each carrying many requests at once. This is how regions tunnel to each other (one
// TLS handshake, then multiplexed streams instead of a connection per request), and how
// clusters marked `http2: true` reach their origins, with trailers end to end (gRPC).
//
// A forwarder gets an Http2UpstreamStream from its endpoint (UpstreamEndpoint::
// OpenHttp2Stream) and drives it through the UpstreamStream interface, exactly as it drives
// an HTTP/1.1 connection. The request head arrives serialized as HTTP/1.1 (with the hop
// marker already in it) and becomes HTTP/2 fields here.
//
// Falling back: over TLS the connection offers h2 and http/1.1 by ALPN; an endpoint that
// picks http/1.1 (or, in cleartext, answers the preface with HTTP/1.1) is marked as such and
// the streams waiting for it fail with kHttp2Refused, which the forwarder answers by sending
// the request again over HTTP/1.1. Nothing reached the origin, so this is safe for any method.
//
// Flow control: response DATA is acknowledged only as the forwarder takes it (a paused
// stream stops its origin after one window); request bodies wait in the stream for the
// peer's window, and queued_bytes() tells the forwarder to stop reading its client. The
// receive windows start at pool.http2_window and grow with the path's bandwidth-delay product
// up to pool.http2_max_window (PING probes, proxy/upstream/window_sizer.h), within the node's
// limits.upstream_window_memory.
//
// Warm connections: the first pool.http2_warm connections of an endpoint stay open while idle
// and send a PING every pool.http2_ping_interval; one left unanswered for an interval closes
// the connection, and the endpoint opens another (UpstreamEndpoint::KeepWarm).
//
// Loop thread only. Sessions free themselves when closed; streams when both the forwarder
// and nghttp2 are done with them.
#ifndef SLUICE_PROXY_UPSTREAM_HTTP2_UPSTREAM_H_
#define SLUICE_PROXY_UPSTREAM_HTTP2_UPSTREAM_H_

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/event/loop_context.h"
#include "proxy/event/timeout_queue.h"
#include "proxy/http/http2_fields.h"
#include "proxy/net/tcp_stream.h"
#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/window_sizer.h"

namespace sluice {

class UpstreamEndpoint;
class Http2UpstreamSession;

class Http2UpstreamStream final : public UpstreamStream, public Deletable {
 public:
  Http2UpstreamStream(Http2UpstreamSession* session, Handler* handler);
  ~Http2UpstreamStream() override;

  // UpstreamStream
  void Release() override;
  void Close() override;
  void SendRequestHead(std::string_view head, HttpMethod method, BodyFraming framing,
                       bool upgrade) override;
  void SendBody(std::string_view data) override;
  void EndRequest() override;
  void StartTunnel() override {}
  void ShutdownWrite() override {}
  void PauseReading() override;
  void ResumeReading() override;
  size_t queued_bytes() const override;
  bool reused() const override { return reused_; }

 private:
  friend class Http2UpstreamSession;
  struct Callbacks;

  void Fail(UpstreamError error, const char* reason);
  void Detach();
  static ssize_t ReadBody(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void* user);

  Http2UpstreamSession* session_;
  Handler* handler_;
  int32_t id_ = -1;  // assigned when the request is submitted
  ResponseHeadPtr response_;
  HeaderMap trailers_;
  PendingBody out_;        // request body bytes waiting for the peer's window
  size_t unconsumed_ = 0;  // response DATA taken while paused: acknowledged on resume
  bool reused_ = false;
  bool paused_ = false;
  bool head_delivered_ = false;
  bool ended_ = false;       // the response ended (or the stream failed)
  bool want_drain_ = false;  // the forwarder waits for OnUpstreamDrained
  bool closed_ = false;      // nghttp2 closed the stream (or it was never opened)
};

class Http2UpstreamSession final : private TcpStream::Handler,
                                   private DeferredTask,
                                   private TimeoutTarget {
 public:
  // Starts a connection; null (with a libuv error) when the socket could not be created.
  static Http2UpstreamSession* Connect(LoopContext* context,
                                       std::shared_ptr<UpstreamEndpoint> endpoint, int* error);

  // A new stream for `handler`. `*ready`: the connection is up, send the request now;
  // otherwise OnUpstreamConnected (or OnUpstreamError) follows.
  Http2UpstreamStream* OpenStream(UpstreamStream::Handler* handler, bool* ready);
  // Streams in use, and whether the session takes new ones.
  size_t active_streams() const { return active_; }
  bool accepting() const { return !draining_ && !closing_; }
  bool ready() const { return ready_; }
  // The endpoint left the configuration: no new streams; close when idle.
  void Retire();
  // The windows as they are now, and the path's round trip as PINGs measured it (0: not yet).
  uint32_t stream_window() const { return sizer_.stream_window(); }
  uint32_t connection_window() const { return sizer_.connection_window(); }
  int64_t rtt_ns() const { return sizer_.min_rtt_ns(); }

 private:
  friend class Http2UpstreamStream;
  friend struct Http2UpstreamStream::Callbacks;

  Http2UpstreamSession(LoopContext* context, std::shared_ptr<UpstreamEndpoint> endpoint);
  ~Http2UpstreamSession() override;

  // TcpStream::Handler
  void OnStreamRead(const char* data, size_t len) override;
  void OnStreamEof() override;
  void OnStreamError(int error) override;
  void OnStreamDrained() override;
  void OnStreamConnected() override;
  void OnStreamClosed() override;
  // DeferredTask: send what nghttp2 has queued.
  void RunDeferred() override;
  // TimeoutTarget: idle too long.
  void OnTimeout(Timeout* which) override;

  void StartSession();
  void OnPreface();  // the server's first SETTINGS: streams may go
  // PINGs: a window probe (WindowSizer) or an idle warm connection's keep-alive.
  void SendPing(bool probe);
  void OnPingAck(const uint8_t* opaque);
  // Ready for a while before it closed: its endpoint replaces it without back-off.
  bool LivedWell() const;
  void ScheduleSend() { context_->ScheduleLate(this); }
  // The connection is gone or unusable: every stream fails with `error`, then it closes.
  void FailAll(UpstreamError error, const char* reason);
  void StreamDone(Http2UpstreamStream* stream);
  void MaybeIdle();
  void CloseNow();

  LoopContext* context_;
  std::shared_ptr<UpstreamEndpoint> endpoint_;
  TcpStream stream_;
  Timeout idle_timeout_;  // also: the keep-alive PING's period on a warm connection
  WindowSizer sizer_;
  uint64_t window_reserved_ = 0;  // from WindowBudget::Upstream(), given back when closed
  int64_t ping_sent_ns_ = 0;
  int64_t ready_at_ns_ = 0;
  uint32_t missed_pings_ = 0;      // intervals that ended with the keep-alive unanswered
  bool ping_outstanding_ = false;  // a keep-alive PING waits for its ACK
  nghttp2_session* session_ = nullptr;
  std::vector<Http2UpstreamStream*> streams_;  // attached or still open in nghttp2
  size_t active_ = 0;                          // streams a forwarder holds
  uint64_t submitted_ = 0;
  bool ready_ = false;
  bool draining_ = false;  // GOAWAY, max requests or retired: no new streams
  bool closing_ = false;
  bool first_read_ = true;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_UPSTREAM_HTTP2_UPSTREAM_H_
