// The stream interface between a downstream codec and the code that serves each request.
//
// A downstream connection runs one codec (HTTP/1.1 or HTTP/2). The codec turns bytes
// into streams: one ServerStream per request/response exchange. HTTP/1.1 runs one stream at a
// time (pipelined requests wait their turn); HTTP/2 runs many at once on one connection. Either
// way, each stream gets its own ServerStreamHandler (the forwarder) from the StreamFactory,
// and nothing above this header knows which protocol is underneath.
//
// Threading: everything here runs on the worker loop that owns the connection.
#ifndef SLUICE_PROXY_HTTP_HTTP_CODEC_H_
#define SLUICE_PROXY_HTTP_HTTP_CODEC_H_

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "common/http_message.h"
#include "common/socket_address.h"
#include "proxy/event/loop_context.h"

namespace sluice {

enum class StreamResetReason : uint8_t {
  kDownstreamClosed,  // the client went away before the exchange ended
  kProtocolError,     // the client broke the protocol (bad chunk, oversized body, ...)
  kTimeout,           // the connection timed out
};

const char* StreamResetReasonText(StreamResetReason reason);

// Facts about the downstream connection a stream arrived on.
struct DownstreamInfo {
  SocketAddress client;  // the real client: the socket peer, or the PROXY protocol source
  bool proxied = false;  // `client` came from a PROXY protocol header
  bool https = false;    // the client came by TLS

 private:
  // Here, in the address's padding, so that an idle connection carries no hole (issue 24).
  mutable uint8_t ip_len_ = 0;
  mutable char ip_[INET6_ADDRSTRLEN] = {};

 public:
  uint64_t connection_id = 0;

  const char* scheme() const { return https ? "https" : "http"; }

  // The client's address as text ("192.0.2.1", "2001:db8::1"), formatted once per
  // connection rather than once per request. Call InvalidateClientIp() after changing client.
  std::string_view ClientIp() const {
    if (ip_len_ == 0) ip_len_ = static_cast<uint8_t>(client.FormatIp(ip_, sizeof(ip_)));
    return std::string_view(ip_, ip_len_);
  }
  void InvalidateClientIp() { ip_len_ = 0; }
};
static_assert(sizeof(DownstreamInfo) <= 88, "DownstreamInfo is in every idle connection");

// Events of one stream, delivered by the codec. Implemented by the forwarder. The codec owns
// the handler and destroys it (via LoopContext::DeleteLater) once the exchange is over: after
// both the request and the response ended, or after a reset in either direction.
class ServerStreamHandler : public Deletable {
 public:
  // The request head, validated by the codec. Called once, right after the handler was
  // created; the handler may answer at once (from inside this call).
  virtual void OnRequestHead(RequestHeadPtr head) = 0;
  // Request body bytes in order, already de-framed (or raw bytes after a protocol upgrade).
  // Valid only during the call. May still arrive after PauseRequestBody() (at most what the
  // codec had already read).
  virtual void OnRequestBody(std::string_view data) = 0;
  // The request ended (after an upgrade: the client half-closed).
  virtual void OnRequestEnd() = 0;
  // Output toward the client drained below the high-water mark: resume producing.
  virtual void OnDownstreamDrained() = 0;
  // The exchange is over from the client side; the handler must stop using the stream and
  // release what it holds upstream. Not called after the handler itself called Reset().
  virtual void OnStreamReset(StreamResetReason reason) = 0;
};

// The codec side of one stream: how the handler answers. Every method is a no-op once the
// stream was reset.
class ServerStream {
 public:
  // Sends "100 Continue" if the client asked for it and nothing was answered yet.
  virtual void SendContinue() = 0;
  // The response head. The codec frames it for its protocol (Content-Length, chunked, close)
  // from head.framing/content_length and removes nothing: hop-by-hop fields must already be
  // gone. `end_stream`: there is no body.
  virtual void SendResponseHead(ResponseHead& head, bool end_stream) = 0;
  virtual void SendResponseBody(std::string_view data, bool end_stream) = 0;
  // Ends the response with trailer fields (gRPC's status, say): HTTP/2 sends them; HTTP/1.1
  // sends them in a chunked response and drops them otherwise.
  virtual void SendResponseTrailers(const HeaderMap& trailers) = 0;
  // Abandons the response: the client must not see a complete message (HTTP/1.1 closes the
  // connection; HTTP/2 resets the stream).
  virtual void Reset() = 0;
  // Asks to close the client connection after this response (a client error: nothing the
  // client sends next can be trusted). Must come before SendResponseHead. HTTP/2 ignores it.
  virtual void CloseAfterResponse() = 0;

  // Flow control of the request body.
  virtual void PauseRequestBody() = 0;
  virtual void ResumeRequestBody() = 0;
  // True while output toward the client is above the high-water mark: stop producing until
  // OnDownstreamDrained().
  virtual bool OutputFull() const = 0;
  virtual bool response_started() const = 0;
  virtual const DownstreamInfo& downstream() const = 0;

 protected:
  virtual ~ServerStream() = default;
};

// Creates the handler of each new stream. Implemented by the downstream connection. The codec
// stores the handler before it delivers the head, so the handler may finish the stream from
// inside OnRequestHead.
class StreamFactory {
 public:
  virtual std::unique_ptr<ServerStreamHandler> NewStream(ServerStream* stream) = 0;

 protected:
  virtual ~StreamFactory() = default;
};

// A connection's codec as the connection drives it: bytes in, transport events, timers.
enum class CodecState : uint8_t {
  kIdle,         // no exchange in progress: the idle timeout applies
  kReadingHead,  // a request head is arriving: the head timeout applies
  kActive,       // exchanges in progress: their own timeouts apply
  kClosed,
};

// Told when the codec's CodecState may have changed (for the connection's timers).
class CodecObserver {
 public:
  virtual void OnCodecStateChanged() = 0;

 protected:
  virtual ~CodecObserver() = default;
};

// Deletable: a parked codec is destroyed after the callbacks that parked it unwind.
class ServerCodec : public Deletable {
 public:
  ~ServerCodec() override = default;
  virtual void OnData(const char* data, size_t len) = 0;
  virtual void OnEof() = 0;               // the client half-closed
  virtual void OnTransportError() = 0;    // the socket failed: reset every stream
  virtual void OnTransportDrained() = 0;  // output queue below the high-water mark
  virtual void OnHeadTimeout() = 0;       // a head took too long
  virtual void OnIdleTimeout() = 0;       // idle too long: close
  virtual void Drain() = 0;               // finish what is in progress, then close
  virtual CodecState state() const = 0;
};

// What a codec needs from the connection beneath it.
class CodecTransport {
 public:
  virtual void Write(std::string_view a, std::string_view b = {}, std::string_view c = {}) = 0;
  virtual size_t QueuedBytes() const = 0;
  virtual void PauseReading() = 0;
  virtual void ResumeReading() = 0;
  // Half-close: FIN after the queued output (the end of an upgraded tunnel's response side).
  virtual void ShutdownWrite() = 0;
  // Graceful close: flush, FIN, discard what the client still sends for a moment, close.
  virtual void CloseAfterWrites() = 0;
  // Immediate close; queued output is dropped.
  virtual void Abort() = 0;

 protected:
  virtual ~CodecTransport() = default;
};

// Above this many queued output bytes a stream reports OutputFull().
inline constexpr size_t kOutputHighWater = 128 * 1024;

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_HTTP_CODEC_H_
