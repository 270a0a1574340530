// Strict HTTP/1.x message parser: one pass over each head, line by line (http1_lines.h), and
// the message's framing (Content-Length, chunked, until close) with the checks RFC 9112 asks
// of a proxy. It produces complete, validated heads, body bytes and message ends; it never
// buffers a body. A head line cut between two reads is the only thing it copies.
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
#include <string>
#include <string_view>

#include "common/http_message.h"
#include "proxy/http/http1_lines.h"

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
  bool in_head() const { return phase_ == Phase::kHead && started_; }
  // True when no byte of a message is pending (between messages); a CR of a leading empty line
  // waiting for its LF is pending.
  bool idle() const { return phase_ == Phase::kHead && !started_ && carry_.empty(); }
  uint64_t body_bytes() const { return body_bytes_; }
  void set_limits(const Http1Limits& limits) { limits_ = limits; }
  const Http1Limits& limits() const { return limits_; }

 private:
  enum class Phase : uint8_t {
    kHead,          // the start line and fields
    kBody,          // Content-Length or until close: body_remaining_ bytes
    kChunkSize,     // a chunk-size line
    kChunkData,     // body_remaining_ bytes of a chunk
    kChunkDataEnd,  // the CRLF after a chunk's data
    kTrailers,      // the trailer section after the last chunk
    kDone,
    kUpgraded,
    kFailed,
  };

  // What the fields of a head say about its framing, gathered as they are added.
  struct Framing {
    uint64_t content_length = 0;
    uint8_t content_length_fields = 0;
    uint8_t transfer_encoding_fields = 0;
    uint8_t codings = 0;
    uint8_t upgrade_fields = 0;
    bool content_length_valid = true;
    bool last_coding_chunked = false;
    bool chunked_seen = false;
    bool chunked_not_last = false;  // a coding after chunked
    bool connection_close = false;
    bool connection_keep_alive = false;
    bool connection_upgrade = false;
    bool connection_lists_names = false;  // a Connection token other than the three above
  };

  // Head, trailer and chunk-size lines from [data, data + len): returns the bytes used.
  size_t ConsumeLines(const char* data, size_t len);
  void OnLine(std::string_view line);
  void OnHeadLine(std::string_view line);
  void OnTrailerLine(std::string_view line);
  void OnChunkSizeLine(std::string_view line);
  void AddField(std::string_view name, std::string_view value);
  void OnHeadEnd();
  // Both return false after failing the message.
  bool ValidateRequestHead();
  bool ValidateResponseHead(bool* skip_body);
  void StartBody(BodyFraming framing, uint64_t length);
  size_t ConsumeBody(const char* data, size_t len);
  size_t ConsumeChunkDataEnd(const char* data, size_t len);
  void CompleteMessage();
  void StartHead();
  int BadStatus() const { return mode_ == Mode::kRequest ? 400 : 502; }
  void FailLine(http1::LineError e);
  void FailWith(int status, const char* reason);
  Result Error(size_t consumed);

  Http1Limits limits_;
  Handler* handler_;
  RequestHeadPtr request_;
  ResponseHeadPtr response_;
  HeaderMap* headers_ = nullptr;  // of the head being read
  std::string carry_;             // the start of a line cut by the end of a read
  Framing framing_;
  uint64_t body_remaining_ = 0;
  uint64_t body_bytes_ = 0;
  uint32_t block_bytes_ = 0;  // of the head or trailer section so far
  uint32_t lines_ = 0;        // lines of the head or trailer section so far
  int error_status_ = 0;
  const char* error_reason_ = "";
  Mode mode_;
  Phase phase_ = Phase::kHead;
  BodyFraming body_framing_ = BodyFraming::kNone;
  HttpMethod response_to_ = HttpMethod::kGet;
  uint8_t chunk_crlf_seen_ = 0;  // bytes of the CRLF after a chunk's data
  bool upgrade_requested_ = false;
  bool upgrade_ = false;    // the message ends in a protocol switch
  bool keep_alive_ = true;  // the message allows another after it
  bool closing_ = false;    // the last message ended the connection: only CR and LF may follow
  bool started_ = false;
  bool informational_ = false;
  bool stopped_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_HTTP1_PARSER_H_
