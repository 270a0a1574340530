// The HTTP/2 codec of a downstream connection (nghttp2): many streams at once, each served by
// its own handler (a forwarder) through the same ServerStream interface as HTTP/1.1.
//
// Flow control is wired to backpressure: request DATA is acknowledged (WINDOW_UPDATE) only as
// the handler takes it, so a paused stream stops its client after one window; response bytes
// wait in the stream until the client's window and the socket take them, and OutputFull()
// tells the handler to stop reading its origin meanwhile.
//
// Abuse limits: SETTINGS_MAX_CONCURRENT_STREAMS, a header list limit (431), nghttp2's reset
// rate limit and CONTINUATION cap, plus two counts of our own per connection and 10-second
// window: streams the client reset before their response began ("rapid reset",
// CVE-2023-44487), and PING/SETTINGS/PRIORITY frames. Past either, GOAWAY with
// ENHANCE_YOUR_CALM and the connection closes; other connections are untouched.
//
// Owned by the downstream connection; loop thread only.
#ifndef SLUICE_PROXY_HTTP_HTTP2_SERVER_CODEC_H_
#define SLUICE_PROXY_HTTP_HTTP2_SERVER_CODEC_H_

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "proxy/event/loop_context.h"
#include "proxy/http/http1_parser.h"
#include "proxy/http/http2_settings.h"
#include "proxy/http/http_codec.h"

namespace sluice {

// Response bytes one connection holds for all of its streams before each stream is told to
// stop producing (OutputFull). With kOutputHighWater per stream this bounds what a client that
// never opens its receive window can pin: the budget, plus one read per stream in flight.
inline constexpr size_t kHttp2ConnectionOutputBudget = 512 * 1024;

// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": what an h2c client with prior knowledge sends first.
inline constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

class Http2ServerCodec final : public ServerCodec, private DeferredTask {
 public:
  struct Options {
    Http2Settings http2;
    Http1Limits limits;  // head size, field count, target length, body size
  };
  struct Counters {  // for tests and logs
    uint64_t streams = 0;
    uint64_t early_resets = 0;
    uint64_t control_frames = 0;
  };

  // `info` must outlive the codec (it belongs to the connection).
  Http2ServerCodec(LoopContext* context, CodecTransport* transport, StreamFactory* factory,
                   CodecObserver* observer, const Options& options, const DownstreamInfo* info);
  ~Http2ServerCodec() override;

  // ServerCodec
  void OnData(const char* data, size_t len) override;
  void OnEof() override;
  void OnTransportError() override;
  void OnTransportDrained() override;
  void OnHeadTimeout() override;
  void OnIdleTimeout() override;
  void Drain() override;
  CodecState state() const override;

  const Counters& counters() const { return counters_; }
  // Why the connection was closed by the codec ("" while open or when closed cleanly).
  const std::string& close_reason() const { return close_reason_; }

 private:
  class Stream;
  friend class Stream;
  struct Callbacks;
  friend struct Callbacks;

  void RunDeferred() override;  // send what nghttp2 has queued
  // A request head is complete: answer an error, or hand it to a new handler.
  void DeliverHead(Stream* stream, bool end_stream);
  // Answers a stream from the codec (the handler, if any, was detached first).
  void RespondError(Stream* stream, int status, const char* reason);
  // Tells the stream's handler the exchange is over for it and lets it go.
  void DetachHandler(Stream* stream, StreamResetReason reason);
  void ScheduleSend() { context_->ScheduleLate(this); }
  // The client misbehaved: GOAWAY with `error`, flush, close.
  void Shed(uint32_t error, const char* why);
  void Close(bool graceful);
  void CloseStream(Stream* stream, uint32_t error_code);
  void CountControlFrame();
  void CountEarlyReset();
  bool WindowExpired(int64_t now);
  void Notify();
  // `n` pending response bytes were framed or freed.
  void TookPending(size_t n);
  // Streams told to stop producing (OutputFull) hear they may go on.
  void WakeWaitingStreams();

  LoopContext* context_;
  CodecTransport* transport_;
  StreamFactory* factory_;
  CodecObserver* observer_;
  const DownstreamInfo* info_;
  Options options_;
  nghttp2_session* session_ = nullptr;
  absl::flat_hash_set<Stream*> streams_;  // open streams (owned; freed via DeleteLater)
  std::vector<Stream*> drained_;
  std::vector<nghttp2_nv> nva_;  // reused to submit response heads ...
  std::string names_;  // ... and their lower-cased field names  // streams whose output fell
                       // below the mark during a send
  Counters counters_;
  std::string close_reason_;
  int64_t window_start_ns_ = 0;  // the 10-second window of the abuse counts
  uint32_t window_resets_ = 0;
  uint32_t window_control_ = 0;
  uint32_t open_streams_ = 0;
  uint32_t heads_pending_ = 0;  // streams whose header block has not ended
  size_t pending_bytes_ = 0;    // response bytes of every stream not yet framed
  bool budget_freed_ = false;   // pending_bytes_ fell below the budget since the last send
  bool draining_ = false;
  bool closed_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_HTTP2_SERVER_CODEC_H_
