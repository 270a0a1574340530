#include "tests/proxy/http/reference/llhttp_parser.h"
#include "common/strings.h"

namespace sluice::reference {

// llhttp calls these C functions; each casts `data` and calls one member (STYLE.md, rule 2).
struct LlhttpParserCallbacks {
  static LlhttpParser* Self(llhttp_t* p) { return static_cast<LlhttpParser*>(p->data); }
  static int MessageBegin(llhttp_t* p) { return Self(p)->OnMessageBegin(); }
  static int Url(llhttp_t* p, const char* at, size_t n) { return Self(p)->OnUrl(at, n); }
  static int Status(llhttp_t* p, const char* at, size_t n) { return Self(p)->OnStatus(at, n); }
  static int HeaderField(llhttp_t* p, const char* at, size_t n) {
    return Self(p)->OnHeaderField(at, n);
  }
  static int HeaderFieldComplete(llhttp_t* p) { return Self(p)->OnHeaderFieldComplete(); }
  static int HeaderValue(llhttp_t* p, const char* at, size_t n) {
    return Self(p)->OnHeaderValue(at, n);
  }
  static int HeaderValueComplete(llhttp_t* p) { return Self(p)->OnHeaderValueComplete(); }
  static int HeadersComplete(llhttp_t* p) { return Self(p)->OnHeadersComplete(); }
  static int Body(llhttp_t* p, const char* at, size_t n) { return Self(p)->OnBody(at, n); }
  static int ChunkHeader(llhttp_t* p) { return Self(p)->OnChunkHeader(); }
  static int MessageComplete(llhttp_t* p) { return Self(p)->OnMessageComplete(); }

  static constexpr llhttp_settings_t kSettings = {
      .on_message_begin = MessageBegin,
      .on_url = Url,
      .on_status = Status,
      .on_method = nullptr,
      .on_version = nullptr,
      .on_header_field = HeaderField,
      .on_header_value = HeaderValue,
      .on_chunk_extension_name = nullptr,
      .on_chunk_extension_value = nullptr,
      .on_headers_complete = HeadersComplete,
      .on_body = Body,
      .on_message_complete = MessageComplete,
      .on_url_complete = nullptr,
      .on_status_complete = nullptr,
      .on_method_complete = nullptr,
      .on_version_complete = nullptr,
      .on_header_field_complete = HeaderFieldComplete,
      .on_header_value_complete = HeaderValueComplete,
      .on_chunk_extension_name_complete = nullptr,
      .on_chunk_extension_value_complete = nullptr,
      .on_chunk_header = ChunkHeader,
      .on_chunk_complete = nullptr,
      .on_reset = nullptr,
  };
};

namespace {

constexpr size_t kMaxReasonBytes = 512;

// Return values of on_headers_complete understood by llhttp.
constexpr int kProceed = 0;
constexpr int kSkipBody = 1;

}  // namespace

LlhttpParser::LlhttpParser(Mode mode, const Http1Limits& limits, Handler* handler)
    : scanner_(limits.max_head_bytes, limits.max_headers),
      limits_(limits),
      handler_(handler),
      mode_(mode) {
  llhttp_init(&llhttp_, mode == Mode::kRequest ? HTTP_REQUEST : HTTP_RESPONSE,
              &LlhttpParserCallbacks::kSettings);
  llhttp_.data = this;
  scanner_.Reset(mode == Mode::kRequest ? HeadScanner::Kind::kRequest
                                        : HeadScanner::Kind::kResponse);
}

void LlhttpParser::Reinit(const Http1Limits& limits, Handler* handler) {
  llhttp_init(&llhttp_, mode_ == Mode::kRequest ? HTTP_REQUEST : HTTP_RESPONSE,
              &LlhttpParserCallbacks::kSettings);
  llhttp_.data = this;
  set_limits(limits);
  handler_ = handler;
  request_.reset();
  response_.reset();
  body_bytes_ = 0;
  error_status_ = 0;
  error_reason_ = "";
  phase_ = Phase::kHead;
  response_to_ = HttpMethod::kGet;
  upgrade_requested_ = false;
  in_field_ = false;
  informational_ = false;
  stopped_ = false;
  scanner_.Reset(mode_ == Mode::kRequest ? HeadScanner::Kind::kRequest
                                         : HeadScanner::Kind::kResponse);
}

void LlhttpParser::set_limits(const Http1Limits& limits) {
  limits_ = limits;
  scanner_.SetLimits(limits.max_head_bytes, limits.max_headers);
}

void LlhttpParser::ExpectResponse(HttpMethod request_method, bool upgrade_requested) {
  response_to_ = request_method;
  upgrade_requested_ = upgrade_requested;
}

void LlhttpParser::ResumeAfterMessage() {
  if (phase_ != Phase::kDone) return;
  phase_ = Phase::kHead;
  scanner_.Reset(mode_ == Mode::kRequest ? HeadScanner::Kind::kRequest
                                         : HeadScanner::Kind::kResponse);
}

void LlhttpParser::ResumeAfterRefusedUpgrade() {
  if (phase_ != Phase::kUpgraded) return;
  // llhttp stays in its upgrade state until re-initialized; settings and data survive.
  llhttp_reset(&llhttp_);
  phase_ = Phase::kDone;
  ResumeAfterMessage();
}

LlhttpParser::Result LlhttpParser::Error(size_t consumed) {
  Result r;
  r.consumed = consumed;
  r.outcome = Outcome::kError;
  r.status = error_status_;
  r.reason = error_reason_;
  return r;
}

int LlhttpParser::FailWith(int status, const char* reason) {
  if (error_status_ == 0) {
    error_status_ = status;
    error_reason_ = reason;
  }
  phase_ = Phase::kFailed;
  return HPE_USER;
}

LlhttpParser::Result LlhttpParser::Execute(const char* data, size_t len) {
  stopped_ = false;
  size_t pos = 0;
  const bool request = mode_ == Mode::kRequest;
  while (true) {
    switch (phase_) {
      case Phase::kFailed:
        return Error(pos);
      case Phase::kDone:
        return {pos, Outcome::kMessageComplete};
      case Phase::kUpgraded:
        return {pos, Outcome::kUpgrade};
      default:
        break;
    }
    if (pos == len) return {pos, Outcome::kNeedMore};

    const Phase scanning = phase_;
    const bool in_block = phase_ == Phase::kHead || phase_ == Phase::kTrailers;
    size_t chunk = len - pos;
    if (in_block) {
      size_t n = scanner_.Scan(data + pos, chunk);
      if (scanner_.error() != HeadScanner::Error::kNone) {
        // llhttp never sees a block the scanner refused.
        int status = request ? (scanner_.error_is_size() ? 431 : 400) : 502;
        FailWith(status, HeadScanner::ErrorText(scanner_.error()));
        return Error(pos + n);
      }
      chunk = n;
    }

    const char* start = data + pos;
    llhttp_errno_t err = llhttp_execute(&llhttp_, start, chunk);
    size_t used = chunk;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
      used = static_cast<size_t>(llhttp_get_error_pos(&llhttp_) - start);
    } else if (err != HPE_OK) {
      if (error_status_ == 0) {
        int status = 400;
        if (!request) {
          status = 502;
        } else if (err == HPE_INVALID_METHOD) {
          status = 501;
        }
        FailWith(status, llhttp_get_error_reason(&llhttp_) ? llhttp_get_error_reason(&llhttp_)
                                                           : llhttp_errno_name(err));
      }
      phase_ = Phase::kFailed;
      const char* at = llhttp_get_error_pos(&llhttp_);
      return Error(at ? pos + static_cast<size_t>(at - start) : pos);
    }
    pos += used;
    if (err == HPE_PAUSED) llhttp_resume(&llhttp_);
    if (stopped_) return {pos, Outcome::kStopped};

    if (in_block) {
      // The scanner and llhttp must agree on where the block ends: both at the same byte.
      bool llhttp_left_block = phase_ != scanning;
      if (scanner_.done() != llhttp_left_block || used != chunk) {
        FailWith(request ? 400 : 502, "ambiguous message framing");
        return Error(pos);
      }
    }
    if (phase_ == Phase::kDone && informational_) {
      // A 1xx response other than 101: the final response follows on the same connection.
      informational_ = false;
      ResumeAfterMessage();
    }
  }
}

LlhttpParser::Result LlhttpParser::Finish() {
  switch (phase_) {
    case Phase::kHead:
      if (!scanner_.started()) return {0, Outcome::kNeedMore};
      break;
    case Phase::kBody:
      if (mode_ == Mode::kResponse && llhttp_message_needs_eof(&llhttp_)) {
        phase_ = Phase::kDone;
        handler_->OnMessageComplete();
        return {0, Outcome::kMessageComplete};
      }
      break;
    case Phase::kDone:
      return {0, Outcome::kMessageComplete};
    case Phase::kUpgraded:
      return {0, Outcome::kUpgrade};
    case Phase::kFailed:
      return Error(0);
    case Phase::kTrailers:
      break;
  }
  FailWith(mode_ == Mode::kRequest ? 400 : 502, "connection closed in the middle of a message");
  return Error(0);
}

int LlhttpParser::OnMessageBegin() {
  if (mode_ == Mode::kRequest) {
    if (request_) {
      request_->Clear();
    } else {
      request_ = MakeRequestHead();
    }
  } else {
    if (!response_) response_ = MakeResponseHead();
    response_->Clear();
  }
  body_bytes_ = 0;
  in_field_ = false;
  return 0;
}

int LlhttpParser::OnUrl(const char* at, size_t n) {
  if (request_->target.size() + n > limits_.max_target_bytes) {
    return FailWith(414, "request target too long");
  }
  request_->target.append(at, n);
  return 0;
}

int LlhttpParser::OnStatus(const char* at, size_t n) {
  if (response_->reason.size() + n > kMaxReasonBytes) {
    return FailWith(502, "reason phrase too long");
  }
  response_->reason.append(at, n);
  return 0;
}

int LlhttpParser::OnHeaderField(const char* at, size_t n) {
  if (phase_ != Phase::kHead) return 0;  // trailer fields are validated, then dropped
  HeaderMap& headers = mode_ == Mode::kRequest ? request_->headers : response_->headers;
  if (!in_field_) {
    headers.BeginField();
    in_field_ = true;
    field_name_bytes_ = 0;
  }
  headers.AppendName({at, n});
  field_name_bytes_ += n;
  return 0;
}

int LlhttpParser::OnHeaderFieldComplete() { return 0; }

int LlhttpParser::OnHeaderValue(const char* at, size_t n) {
  if (phase_ != Phase::kHead) return 0;
  // A value with no name before it (": b"): RFC 9110 section 5.1 requires a token.
  if (!in_field_ || field_name_bytes_ == 0) {
    return FailWith(mode_ == Mode::kRequest ? 400 : 502, "empty header field name");
  }
  HeaderMap& headers = mode_ == Mode::kRequest ? request_->headers : response_->headers;
  headers.AppendValue({at, n});
  return 0;
}

int LlhttpParser::OnHeaderValueComplete() {
  if (phase_ != Phase::kHead) return 0;
  if (!in_field_ || field_name_bytes_ == 0) {  // ":" alone: no name, no value
    return FailWith(mode_ == Mode::kRequest ? 400 : 502, "empty header field name");
  }
  HeaderMap& headers = mode_ == Mode::kRequest ? request_->headers : response_->headers;
  headers.FinishField();
  in_field_ = false;
  return 0;
}

int LlhttpParser::OnHeadersComplete() {
  if (in_field_) {
    HeaderMap& headers = mode_ == Mode::kRequest ? request_->headers : response_->headers;
    headers.FinishField();
    in_field_ = false;
  }
  phase_ = Phase::kBody;
  int verdict = mode_ == Mode::kRequest ? ValidateRequestHead() : ValidateResponseHead();
  if (verdict != kProceed && verdict != kSkipBody) return verdict;
  if (!informational_) {
    handler_->OnHead();
    if (stopped_) return HPE_PAUSED;
  }
  return verdict;
}

namespace {

// Facts gathered in one pass over the fields of a head.
struct FramingFacts {
  int content_length_fields = 0;
  int transfer_encoding_fields = 0;
  int codings = 0;
  bool last_coding_chunked = false;
  bool connection_close = false;
  bool connection_overflow = false;  // more names in Connection than are ever honoured
};

// Names a message may list in Connection; a longer list is refused rather than half applied.
constexpr int kMaxConnectionNames = 16;

void ScanFraming(HeaderMap& headers, FramingFacts& facts) {
  // Names listed in Connection become hop-by-hop. Framing and Host are never dropped this way:
  // a client must not be able to make the proxy strip them.
  std::string_view listed[kMaxConnectionNames];
  int listed_count = 0;
  for (size_t i = 0; i < headers.size(); ++i) {
    switch (headers.kind(i)) {
      case HeaderKind::kContentLength:
        ++facts.content_length_fields;
        break;
      case HeaderKind::kTransferEncoding:
        ++facts.transfer_encoding_fields;
        ForEachListElement(headers.value(i), [&](std::string_view coding) {
          ++facts.codings;
          facts.last_coding_chunked = EqualsIgnoreCase(coding, "chunked");
        });
        break;
      case HeaderKind::kConnection:
        ForEachListElement(headers.value(i), [&](std::string_view token) {
          if (EqualsIgnoreCase(token, "close")) {
            facts.connection_close = true;
          } else if (!EqualsIgnoreCase(token, "keep-alive") &&
                     !EqualsIgnoreCase(token, "upgrade")) {
            if (listed_count < kMaxConnectionNames) {
              listed[listed_count++] = token;
            } else {
              facts.connection_overflow = true;
            }
          }
        });
        break;
      default:
        break;
    }
  }
  if (listed_count == 0) return;
  for (size_t i = 0; i < headers.size(); ++i) {
    switch (headers.kind(i)) {
      case HeaderKind::kOther:
      case HeaderKind::kSluiceInternal:
      case HeaderKind::kXForwardedFor:
      case HeaderKind::kXForwardedProto:
      case HeaderKind::kXForwardedHost:
      case HeaderKind::kXForwardedPort:
      case HeaderKind::kForwarded:
      case HeaderKind::kXRealIp:
      case HeaderKind::kVia:
        break;
      default:
        continue;  // framing, Host and credentials are never dropped this way
    }
    for (int j = 0; j < listed_count; ++j) {
      if (EqualsIgnoreCase(headers.name(i), listed[j])) {
        headers.set_kind(i, HeaderKind::kConnectionListed);
        break;
      }
    }
  }
}

}  // namespace

int LlhttpParser::ValidateRequestHead() {
  RequestHead& head = *request_;
  if (llhttp_.http_major != 1 || llhttp_.http_minor > 1) {
    return FailWith(505, "only HTTP/1.0 and HTTP/1.1 are supported");
  }
  head.version = llhttp_.http_minor == 0 ? HttpVersion::kHttp10 : HttpVersion::kHttp11;
  head.method_text = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_.method));
  head.method = ClassifyMethod(head.method_text);
  if (head.method == HttpMethod::kConnect) {
    return FailWith(405, "CONNECT is not supported by a reverse proxy");
  }

  FramingFacts facts;
  ScanFraming(head.headers, facts);
  if (facts.connection_overflow) return FailWith(400, "too many names in Connection");
  if (facts.transfer_encoding_fields > 0) {
    if (head.version == HttpVersion::kHttp10) {
      return FailWith(400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    if (facts.content_length_fields > 0) {
      return FailWith(400, "both Content-Length and Transfer-Encoding");
    }
    if (!facts.last_coding_chunked) {
      return FailWith(400, "Transfer-Encoding does not end in chunked");
    }
    if (facts.codings != 1) {
      return FailWith(501, "transfer codings other than chunked are not supported");
    }
  }
  if (facts.content_length_fields > 1) return FailWith(400, "duplicate Content-Length");

  if (llhttp_.flags & F_CHUNKED) {
    head.framing = BodyFraming::kChunked;
  } else if (llhttp_.flags & F_CONTENT_LENGTH) {
    head.framing = BodyFraming::kContentLength;
    head.content_length = llhttp_.content_length;
    if (limits_.max_body_bytes != 0 && head.content_length > limits_.max_body_bytes) {
      return FailWith(413, "request body larger than the limit");
    }
  } else {
    head.framing = BodyFraming::kNone;
  }
  head.keep_alive = llhttp_should_keep_alive(&llhttp_) != 0;

  if (auto expect = head.headers.GetKind(HeaderKind::kExpect);
      expect && head.version == HttpVersion::kHttp11) {
    if (!EqualsIgnoreCase(*expect, "100-continue")) {
      return FailWith(417, "unsupported Expect value");
    }
    head.expect_continue = head.has_body() && head.content_length != 0;
  }

  if (llhttp_.upgrade) {
    bool acceptable = head.version == HttpVersion::kHttp11 && !head.has_body() &&
                      head.headers.CountKind(HeaderKind::kUpgrade) == 1;
    if (acceptable) {
      std::string_view protocol = *head.headers.GetKind(HeaderKind::kUpgrade);
      // h2c is HTTP/2 to sluice itself, not something to pass to an origin.
      acceptable = !ContainsIgnoreCase(protocol, "h2c");
    }
    if (acceptable) {
      head.upgrade = true;
    } else {
      // Served as an ordinary request; the Upgrade field is dropped as hop-by-hop.
      llhttp_.upgrade = 0;
    }
  }
  return kProceed;
}

int LlhttpParser::ValidateResponseHead() {
  ResponseHead& head = *response_;
  if (llhttp_.http_major != 1 || llhttp_.http_minor > 1) {
    return FailWith(502, "upstream answered with an unsupported HTTP version");
  }
  head.version = llhttp_.http_minor == 0 ? HttpVersion::kHttp10 : HttpVersion::kHttp11;
  head.status = llhttp_.status_code;
  if (head.status < 100 || head.status > 599) {
    return FailWith(502, "upstream status code out of range");
  }

  FramingFacts facts;
  ScanFraming(head.headers, facts);
  if (facts.connection_overflow)
    return FailWith(502, "upstream listed too many names in Connection");
  if (facts.transfer_encoding_fields > 0) {
    if (facts.content_length_fields > 0) {
      return FailWith(502, "upstream sent both Content-Length and Transfer-Encoding");
    }
    if (!facts.last_coding_chunked || facts.codings != 1) {
      return FailWith(502, "upstream used a transfer coding other than chunked");
    }
  }
  if (facts.content_length_fields > 1)
    return FailWith(502, "upstream sent duplicate Content-Length");

  informational_ = false;
  if (head.status < 200) {
    if (head.status == 101) {
      if (!upgrade_requested_ || !llhttp_.upgrade) {
        return FailWith(502, "upstream switched protocols without an upgrade request");
      }
    } else {
      informational_ = true;  // 100, 102, 103: consumed here, never forwarded
    }
  }

  head.keep_alive = llhttp_should_keep_alive(&llhttp_) != 0;
  bool no_body = response_to_ == HttpMethod::kHead || head.status < 200 || head.status == 204 ||
                 head.status == 304;
  if (no_body) {
    head.framing = BodyFraming::kNone;
    // Content-Length of a HEAD response describes the GET body; keep it for the client.
    if (llhttp_.flags & F_CONTENT_LENGTH) head.content_length = llhttp_.content_length;
    if (response_to_ == HttpMethod::kHead) {
      // llhttp would otherwise wait for a body that never comes.
      head.keep_alive =
          !(llhttp_.flags & F_CONNECTION_CLOSE) && head.version == HttpVersion::kHttp11;
      return kSkipBody;
    }
  } else if (llhttp_.flags & F_CHUNKED) {
    head.framing = BodyFraming::kChunked;
  } else if (llhttp_.flags & F_CONTENT_LENGTH) {
    head.framing = BodyFraming::kContentLength;
    head.content_length = llhttp_.content_length;
  } else {
    head.framing = BodyFraming::kUntilClose;
    head.keep_alive = false;
  }
  return kProceed;
}

int LlhttpParser::OnBody(const char* at, size_t n) {
  body_bytes_ += n;
  handler_->OnBody({at, n});
  return stopped_ ? HPE_PAUSED : 0;
}

int LlhttpParser::OnChunkHeader() {
  uint64_t size = llhttp_.content_length;
  if (size == 0) {
    // The last chunk: a trailer section follows. Pause so the scanner checks it first.
    phase_ = Phase::kTrailers;
    scanner_.Reset(HeadScanner::Kind::kTrailers);
    return HPE_PAUSED;
  }
  if (mode_ == Mode::kRequest && limits_.max_body_bytes != 0 &&
      body_bytes_ + size > limits_.max_body_bytes) {
    return FailWith(413, "request body larger than the limit");
  }
  return 0;
}

int LlhttpParser::OnMessageComplete() {
  phase_ = llhttp_.upgrade ? Phase::kUpgraded : Phase::kDone;
  if (!informational_) handler_->OnMessageComplete();
  return HPE_PAUSED;
}

}  // namespace sluice::reference
