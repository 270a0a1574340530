// One HTTP/1.1 connection from a worker to an origin endpoint: connects, writes a request
// (framing its body), parses the response strictly (Http1Parser), and between requests rests
// in its endpoint's idle pool, still reading so that an origin's close is noticed at once.
//
// Ownership: while busy it belongs to one forwarder (its Handler); while idle, to its
// endpoint's pool. It frees itself in its close callback; Close() and Release() end the
// holder's use of it. Loop thread only.
#ifndef SLUICE_PROXY_UPSTREAM_UPSTREAM_CONNECTION_H_
#define SLUICE_PROXY_UPSTREAM_UPSTREAM_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "proxy/event/intrusive_list.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/timeout_queue.h"
#include "proxy/http/http1_parser.h"
#include "proxy/net/tcp_stream.h"

namespace sluice {

class UpstreamEndpoint;

enum class UpstreamError : uint8_t {
  kConnectFailed,         // the TCP connect failed
  kClosedBeforeResponse,  // reset or closed before any response byte
  kClosedDuringResponse,  // reset or closed after part of the response
  kBadResponse,           // the origin broke HTTP/1.1 framing or syntax
  // The endpoint turned out to speak only HTTP/1.1 (ALPN); nothing was sent: send the
  // request again, it goes over HTTP/1.1 now.
  kHttp2Refused,
};

const char* UpstreamErrorText(UpstreamError error);

// What a forwarder holds for one exchange with an origin: an HTTP/1.1 connection of its own
// (UpstreamConnection) or a stream on a shared HTTP/2 connection (proxy/upstream/http2_upstream.h).
class UpstreamStream {
 public:
  class Handler {
   public:
    // Ready for the request (connected, or a stream slot on an open HTTP/2 connection).
    virtual void OnUpstreamConnected() = 0;
    virtual void OnUpstreamHead(ResponseHeadPtr head) = 0;
    // Response body bytes, de-framed (raw bytes once tunneling). Valid only during the call.
    virtual void OnUpstreamBody(std::string_view data) = 0;
    // Trailer fields (HTTP/2 origins), right before OnUpstreamEnd.
    virtual void OnUpstreamTrailers(const HeaderMap& trailers) = 0;
    // The response ended (tunneling: the origin half-closed).
    virtual void OnUpstreamEnd() = 0;
    // The exchange failed and the stream is closing; the handler must drop its pointer.
    // `detail` is a libuv error code or 0, `reason` a short text for the log.
    virtual void OnUpstreamError(UpstreamError error, int detail, const char* reason) = 0;
    // Queued request bytes were all handed to the kernel.
    virtual void OnUpstreamDrained() = 0;

   protected:
    virtual ~Handler() = default;
  };

  // The holder is done; the exchange ended cleanly if `Release`, was abandoned if `Close`.
  // No callbacks follow either.
  virtual void Release() = 0;
  virtual void Close() = 0;
  // Writes a request head (serialized as HTTP/1.1 by the caller) and arms the response side.
  virtual void SendRequestHead(std::string_view head, HttpMethod method, BodyFraming framing,
                               bool upgrade) = 0;
  // Request body bytes (framed here as the head announced), and its end.
  virtual void SendBody(std::string_view data) = 0;
  virtual void EndRequest() = 0;
  // After a 101: bytes pass through unframed both ways (HTTP/1.1 only).
  virtual void StartTunnel() = 0;
  virtual void ShutdownWrite() = 0;
  // Flow control of the response.
  virtual void PauseReading() = 0;
  virtual void ResumeReading() = 0;
  virtual size_t queued_bytes() const = 0;
  // The connection served an exchange before this one (a failure may be a stale connection).
  virtual bool reused() const = 0;

 protected:
  virtual ~UpstreamStream() = default;
};

class UpstreamConnection final : public UpstreamStream,
                                 private TcpStream::Handler,
                                 private Http1Parser::Handler,
                                 private TimeoutTarget {
 public:
  using Handler = UpstreamStream::Handler;

  // Starts a connection to the endpoint for `handler`. Returns nullptr (and no callback will
  // come) if the socket could not even be created; `error` then holds the libuv code.
  static UpstreamConnection* Connect(LoopContext* context,
                                     std::shared_ptr<UpstreamEndpoint> endpoint, Handler* handler,
                                     int* error);

  // A pooled connection, just taken out of its pool with UpstreamEndpoint::TakeIdle, for a new
  // holder.
  void Attach(Handler* handler);
  // The holder is done. The connection returns to its pool when the exchange ended cleanly
  // and both sides allow keep-alive, and closes otherwise. No callbacks follow.
  void Release() override;
  // The holder abandons the connection: it closes, no callbacks follow.
  void Close() override;

  void SendRequestHead(std::string_view head, HttpMethod method, BodyFraming framing,
                       bool upgrade) override;
  void SendBody(std::string_view data) override;
  void EndRequest() override;
  void StartTunnel() override;
  void ShutdownWrite() override;
  void PauseReading() override;
  void ResumeReading() override;
  size_t queued_bytes() const override { return stream_.queued_bytes(); }
  bool reused() const override { return requests_ > 1; }
  bool response_started() const { return response_started_; }
  UpstreamEndpoint* endpoint() const { return endpoint_.get(); }

 private:
  friend class UpstreamEndpoint;
  enum class State : uint8_t { kConnecting, kBusy, kIdle, kTunnel, kClosed };

  UpstreamConnection(LoopContext* context, std::shared_ptr<UpstreamEndpoint> endpoint,
                     Handler* handler);
  ~UpstreamConnection() override;

  // TcpStream::Handler
  void OnStreamRead(const char* data, size_t len) override;
  void OnStreamEof() override;
  void OnStreamError(int error) override;
  void OnStreamDrained() override;
  void OnStreamConnected() override;
  void OnStreamClosed() override;
  // Http1Parser::Handler
  void OnHead() override;
  void OnBody(std::string_view data) override;
  void OnMessageComplete() override;
  // TimeoutTarget: idle in the pool too long.
  void OnTimeout(Timeout* which) override;

  Http1Parser& parser();
  void ReleaseParser();
  void Fail(UpstreamError error, int detail, const char* reason);
  void CloseNow();

  LoopContext* context_;
  std::shared_ptr<UpstreamEndpoint> endpoint_;
  Handler* handler_;
  TcpStream stream_;
  // Only while a request is under way: an idle pooled connection gives it back to the
  // thread's pool (proxy/http/http1_parser_pool.h).
  std::unique_ptr<Http1Parser> parser_;
  Timeout idle_timeout_;
  ListNode pool_node_;  // linked while idle in the endpoint's pool
  uint32_t requests_ = 0;
  State state_ = State::kConnecting;
  BodyFraming request_framing_ = BodyFraming::kNone;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool keep_alive_ = false;
  bool parsing_ = false;  // inside parser_->Execute (whose callbacks may release us)
};

}  // namespace sluice

#endif  // SLUICE_PROXY_UPSTREAM_UPSTREAM_CONNECTION_H_
