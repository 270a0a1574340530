// The HTTP/1.1 codec of a downstream connection: parses requests (Http1Parser), runs one
// stream at a time, frames responses (Content-Length, chunked, or close-delimited for HTTP/1.0
// clients), answers protocol errors itself (400, 408, 413, 414, 417, 431, 501, 505), and after
// a 101 turns the connection into a byte tunnel.
//
// Pipelining: after a request ends, bytes that follow wait in a buffer until the response is
// complete; then parsing resumes (from a deferred task, so a long pipeline never recurses).
//
// Owned by the downstream connection; loop thread only.
#ifndef SLUICE_PROXY_HTTP_HTTP1_SERVER_CODEC_H_
#define SLUICE_PROXY_HTTP_HTTP1_SERVER_CODEC_H_

#include <memory>
#include <string>

#include "proxy/event/loop_context.h"
#include "proxy/http/http1_parser.h"
#include "proxy/http/http_codec.h"

namespace sluice {

class Http1ServerCodec final : public ServerCodec,
                               public ServerStream,
                               private Http1Parser::Handler,
                               private DeferredTask {
 public:
  struct Options {
    Http1Limits limits;
    uint32_t max_requests = 0;     // per connection; 0: unlimited
    uint32_t requests_served = 0;  // by this connection's earlier (parked) codecs
  };
  using State = CodecState;
  using Observer = CodecObserver;

  // `info` must outlive the codec (it belongs to the connection).
  Http1ServerCodec(LoopContext* context, CodecTransport* transport, StreamFactory* factory,
                   Observer* observer, const Options& options, const DownstreamInfo* info);
  ~Http1ServerCodec() override;

  // From the connection.
  void OnData(const char* data, size_t len) override;
  void OnEof() override;
  void OnTransportError() override;
  void OnTransportDrained() override;
  void OnHeadTimeout() override;  // answers 408 and closes
  void OnIdleTimeout() override;  // closes
  void Drain() override;          // finish the current exchange, then close
  State state() const override;

  // ServerStream.
  void SendContinue() override;
  void SendResponseHead(ResponseHead& head, bool end_stream) override;
  void SendResponseBody(std::string_view data, bool end_stream) override;
  void SendResponseTrailers(const HeaderMap& trailers) override;
  void Reset() override;
  void CloseAfterResponse() override;
  void PauseRequestBody() override;
  void ResumeRequestBody() override;
  bool OutputFull() const override;
  bool response_started() const override { return response_started_; }

  // Idle with nothing held or pending (no request, parser, buffered input or deferred work):
  // the connection may destroy this codec while it waits for the next request and make a new
  // one (with requests() as Options::requests_served) when bytes come. That keeps an idle
  // keep-alive connection small.
  bool parkable() const;
  uint32_t requests() const { return requests_; }

  // Codecs are made and destroyed per wake-up of a keep-alive connection: their memory is
  // recycled per thread (proxy/event/recycler.h), so this costs no malloc.
  static void* operator new(size_t size);
  static void operator delete(void* p, size_t size);
  const DownstreamInfo& downstream() const override { return *info_; }

 private:
  enum class Framing : uint8_t { kNone, kLength, kChunked, kClose, kTunnel };

  // Http1Parser::Handler
  void OnHead() override;
  void OnBody(std::string_view data) override;
  void OnMessageComplete() override;
  // DeferredTask: resume parsing after an exchange, or feed a fresh tunnel.
  void RunDeferred() override;

  void Consume(const char* data, size_t len);
  Http1Parser& parser();
  void ReleaseParserIfIdle();
  void BufferInput(const char* data, size_t len);
  void MaybeFinishStream();
  void FinishStream();
  void ResetStreamFromClient(StreamResetReason reason);
  void RespondWithError(int status, const char* reason);
  void Close(bool graceful);
  void Notify();

  LoopContext* context_;
  CodecTransport* transport_;
  StreamFactory* factory_;
  Observer* observer_;
  const DownstreamInfo* info_;
  Http1Limits limits_;
  // Exists only while a request is being parsed or waits for its turn: an idle keep-alive
  // connection holds no parser (they are pooled per thread).
  std::unique_ptr<Http1Parser> parser_;
  std::unique_ptr<ServerStreamHandler> handler_;
  std::string pending_input_;  // bytes after the current message, not parsed yet
  uint64_t body_remaining_ = 0;
  uint32_t requests_ = 0;
  uint32_t max_requests_;

  // The current stream.
  HttpVersion request_version_ = HttpVersion::kHttp11;
  Framing framing_ = Framing::kNone;
  bool stream_open_ = false;
  bool head_request_ = false;
  bool expect_continue_ = false;
  bool upgrade_requested_ = false;
  bool request_has_body_ = false;
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool continue_sent_ = false;
  bool tunnel_request_ended_ = false;
  bool close_after_response_ = false;

  // The connection.
  bool parser_paused_ = false;  // stopped after a message; resumes when the exchange ends
  bool upgrade_refused_ = false;
  bool reading_paused_for_input_ = false;
  bool eof_seen_ = false;
  bool draining_ = false;
  bool closed_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_HTTP1_SERVER_CODEC_H_
