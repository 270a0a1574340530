// Strict HTTP/1.x message parser: llhttp 8.1.0 (strict mode, no lenient flags) plus the raw
// HeadScanner plus the checks llhttp leaves to its user. It produces complete, validated heads,
// body bytes and message ends; it never buffers a body.
//
// Used for requests by the downstream codec and for responses by the upstream codec. One per
// connection direction, on one worker thread. The handler is called synchronously from
// Execute(); a handler may call Stop() to end the current Execute() early.
//
// Messages are delivered one at a time: after a message completes, Execute() returns
// kMessageComplete and parses nothing more until ResumeAfterMessage(). This is how pipelined
// requests wait for the response of the one before them.
#ifndef SLUICE_PROXY_HTTP_HTTP1_PARSER_H_
#define SLUICE_PROXY_HTTP_HTTP1_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/http_message.h"
#include "llhttp.h"
#include "proxy/http/head_scanner.h"

namespace sluice {

struct Http1Limits {
  uint32_t max_head_bytes = 64 * 1024;
  uint32_t max_headers = 100;
  uint32_t max_target_bytes = 8 * 1024;
  uint64_t max_body_bytes = 0;  // 0: no limit (requests only)
};

class Http1Parser {
 public:
  enum class Mode : uint8_t { kRequest, kResponse };

  class Handler {
   public:
    virtual ~Handler() = default;
    // A complete head passed validation. Requests: take it with TakeRequest(). Responses:
    // TakeResponse(); 1xx responses other than 101 are consumed by the parser and not reported.
    virtual void OnHead() = 0;
    // Body bytes in wire order, already de-chunked. The view is valid only during the call.
    virtual void OnBody(std::string_view data) = 0;
    // The message ended (after its last body byte or trailer section).
    virtual void OnMessageComplete() = 0;
  };

  enum class Outcome : uint8_t {
    kNeedMore,         // every byte consumed; the message (or the next one) continues
    kMessageComplete,  // a message ended at `consumed`; call ResumeAfterMessage() for more
    kUpgrade,          // an upgrade head ended at `consumed`; what follows is not HTTP/1.1
    kStopped,          // the handler called Stop()
    kError,            // see status and reason; the connection must close
  };

  struct Result {
    size_t consumed = 0;
    Outcome outcome = Outcome::kNeedMore;
    int status =
        0;  // kError: the status to answer with (400, 413, 414, 431, 501, 505; 502 for responses)
    const char* reason = "";  // kError: why, for the log line and the error body
  };

  Http1Parser(Mode mode, const Http1Limits& limits, Handler* handler);
  Http1Parser(const Http1Parser&) = delete;
  Http1Parser& operator=(const Http1Parser&) = delete;

  // Makes this parser as good as new, for another message stream (parsers are pooled).
  void Reinit(const Http1Limits& limits, Handler* handler);

  Result Execute(const char* data, size_t len);
  // The peer closed its side. Completes a response read until close; any other unfinished
  // message is an error.
  Result Finish();

  void ResumeAfterMessage();
  // After kUpgrade, when the peer refused the upgrade: parse the bytes that follow as HTTP.
  void ResumeAfterRefusedUpgrade();
  void Stop() { stopped_ = true; }

  // Response mode: facts about the request this response answers.
  void ExpectResponse(HttpMethod request_method, bool upgrade_requested);

  RequestHeadPtr TakeRequest() { return std::move(request_); }
  ResponseHeadPtr TakeResponse() { return std::move(response_); }

  // True between the first byte of a message and the end of its head.
  bool in_head() const { return phase_ == Phase::kHead && scanner_.started(); }
  // True when no byte of a message is pending (between messages).
  bool idle() const { return phase_ == Phase::kHead && !scanner_.started(); }
  uint64_t body_bytes() const { return body_bytes_; }
  void set_limits(const Http1Limits& limits);
  const Http1Limits& limits() const { return limits_; }

 private:
  friend struct Http1ParserCallbacks;
  enum class Phase : uint8_t { kHead, kBody, kTrailers, kDone, kUpgraded, kFailed };

  int OnMessageBegin();
  int OnUrl(const char* at, size_t n);
  int OnStatus(const char* at, size_t n);
  int OnHeaderField(const char* at, size_t n);
  int OnHeaderFieldComplete();
  int OnHeaderValue(const char* at, size_t n);
  int OnHeaderValueComplete();
  int OnHeadersComplete();
  int OnBody(const char* at, size_t n);
  int OnChunkHeader();
  int OnMessageComplete();

  int ValidateRequestHead();
  int ValidateResponseHead();
  int FailWith(int status, const char* reason);
  Result Error(size_t consumed);

  llhttp_t llhttp_;
  HeadScanner scanner_;
  Http1Limits limits_;
  Handler* handler_;
  RequestHeadPtr request_;
  ResponseHeadPtr response_;
  uint64_t body_bytes_ = 0;
  int error_status_ = 0;
  const char* error_reason_ = "";
  Mode mode_;
  Phase phase_ = Phase::kHead;
  HttpMethod response_to_ = HttpMethod::kGet;
  bool upgrade_requested_ = false;
  bool in_field_ = false;
  size_t field_name_bytes_ = 0;  // of the field being read
  bool informational_ = false;
  bool stopped_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_HTTP1_PARSER_H_
