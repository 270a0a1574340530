// The parser sluice used before its own one-pass parser (proxy/http/http1_parser.h), kept as
// the oracle of the differential tests: llhttp 8.1.0 (strict mode, no lenient flags) plus the raw
// HeadScanner plus the checks llhttp leaves to its user. It produces complete, validated heads,
// body bytes and message ends; it never buffers a body.
//
// The same interface as Http1Parser, so a test can feed both the same bytes and compare what
// their handlers see.
#ifndef SLUICE_TESTS_PROXY_HTTP_REFERENCE_LLHTTP_PARSER_H_
#define SLUICE_TESTS_PROXY_HTTP_REFERENCE_LLHTTP_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/http_message.h"
#include "llhttp.h"
#include "proxy/http/http1_parser.h"
#include "tests/proxy/http/reference/head_scanner.h"

namespace sluice::reference {

class LlhttpParser {
 public:
  // The same interface types as the parser it is checked against.
  using Mode = Http1Parser::Mode;
  using Handler = Http1Parser::Handler;
  using Outcome = Http1Parser::Outcome;
  using Result = Http1Parser::Result;

  LlhttpParser(Mode mode, const Http1Limits& limits, Handler* handler);
  LlhttpParser(const LlhttpParser&) = delete;
  LlhttpParser& operator=(const LlhttpParser&) = delete;

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
  friend struct LlhttpParserCallbacks;
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

}  // namespace sluice::reference

#endif  // SLUICE_TESTS_PROXY_HTTP_REFERENCE_LLHTTP_PARSER_H_
