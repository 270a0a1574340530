#include "proxy/http/http1_parser.h"

#include <algorithm>
#include <cstring>

#include "common/strings.h"

namespace sluice {

using http1::LineError;

namespace {

constexpr size_t kMaxReasonBytes = 512;

// Names a message may list in Connection; a longer list is refused rather than half applied.
constexpr int kMaxConnectionNames = 16;

// Marks the fields a Connection field names as hop-by-hop. Framing, Host and credentials are
// never dropped this way: a client must not be able to make the proxy strip them. False when
// the list is longer than is ever honoured.
bool MarkConnectionListed(HeaderMap& headers) {
  std::string_view listed[kMaxConnectionNames];
  int listed_count = 0;
  bool overflow = false;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (headers.kind(i) != HeaderKind::kConnection) continue;
    ForEachListElement(headers.value(i), [&](std::string_view token) {
      if (EqualsIgnoreCase(token, "close") || EqualsIgnoreCase(token, "keep-alive") ||
          EqualsIgnoreCase(token, "upgrade")) {
        return;
      }
      if (listed_count < kMaxConnectionNames) {
        listed[listed_count++] = token;
      } else {
        overflow = true;
      }
    });
  }
  if (overflow) return false;
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
        continue;
    }
    for (int j = 0; j < listed_count; ++j) {
      if (EqualsIgnoreCase(headers.name(i), listed[j])) {
        headers.set_kind(i, HeaderKind::kConnectionListed);
        break;
      }
    }
  }
  return true;
}

// A Content-Length value: 1*DIGIT that fits in 63 bits.
bool ParseContentLength(std::string_view value, uint64_t* out) {
  if (value.empty() || value.size() > 18) {
    // 18 digits is 10^18 - 1 bytes; a longer value is either junk or beyond any body.
    if (value.size() <= 18) return false;
    for (char c : value) {
      if (c != '0') return false;  // only leading zeros may make it longer
      value.remove_prefix(1);
      if (value.size() <= 18) break;
    }
    if (value.empty()) return false;
  }
  uint64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

}  // namespace

Http1Parser::Http1Parser(Mode mode, const Http1Limits& limits, Handler* handler)
    : limits_(limits), handler_(handler), mode_(mode) {}

void Http1Parser::Reinit(const Http1Limits& limits, Handler* handler) {
  limits_ = limits;
  handler_ = handler;
  request_.reset();
  response_.reset();
  headers_ = nullptr;
  // A pooled parser keeps a small carry buffer, not the largest line it ever saw.
  if (carry_.capacity() > 4096) {
    std::string().swap(carry_);
  } else {
    carry_.clear();
  }
  body_bytes_ = 0;
  error_status_ = 0;
  error_reason_ = "";
  response_to_ = HttpMethod::kGet;
  upgrade_requested_ = false;
  informational_ = false;
  stopped_ = false;
  closing_ = false;
  StartHead();
}

void Http1Parser::ExpectResponse(HttpMethod request_method, bool upgrade_requested) {
  response_to_ = request_method;
  upgrade_requested_ = upgrade_requested;
}

void Http1Parser::StartHead() {
  phase_ = Phase::kHead;
  carry_.clear();
  block_bytes_ = 0;
  lines_ = 0;
  started_ = false;
  upgrade_ = false;
}

void Http1Parser::ResumeAfterMessage() {
  if (phase_ != Phase::kDone) return;
  StartHead();
}

void Http1Parser::ResumeAfterRefusedUpgrade() {
  if (phase_ != Phase::kUpgraded) return;
  StartHead();
}

Http1Parser::Result Http1Parser::Error(size_t consumed) {
  Result r;
  r.consumed = consumed;
  r.outcome = Outcome::kError;
  r.status = error_status_;
  r.reason = error_reason_;
  return r;
}

void Http1Parser::FailWith(int status, const char* reason) {
  if (error_status_ == 0) {
    error_status_ = status;
    error_reason_ = reason;
  }
  phase_ = Phase::kFailed;
}

void Http1Parser::FailLine(LineError e) {
  int status = BadStatus();
  if (mode_ == Mode::kRequest) {
    if (e == LineError::kUnknownMethod) status = 501;
    if (e == LineError::kVersionUnsupported) status = 505;
  }
  FailWith(status, http1::LineErrorText(e));
}

Http1Parser::Result Http1Parser::Execute(const char* data, size_t len) {
  stopped_ = false;
  size_t pos = 0;
  while (true) {
    if (phase_ == Phase::kFailed) return Error(pos);
    // A handler's Stop() ends this call, even from the end of a message.
    if (stopped_) return {pos, Outcome::kStopped};
    switch (phase_) {
      case Phase::kDone:
        return {pos, Outcome::kMessageComplete};
      case Phase::kUpgraded:
        return {pos, Outcome::kUpgrade};
      default:
        break;
    }
    if (phase_ == Phase::kBody && body_remaining_ == 0 &&
        body_framing_ != BodyFraming::kUntilClose) {
      // A head whose handler stopped the parse, with nothing (left) to read.
      CompleteMessage();
      continue;
    }
    if (pos == len) return {pos, Outcome::kNeedMore};
    switch (phase_) {
      case Phase::kHead:
      case Phase::kTrailers:
      case Phase::kChunkSize:
        pos += ConsumeLines(data + pos, len - pos);
        break;
      case Phase::kBody:
      case Phase::kChunkData:
        pos += ConsumeBody(data + pos, len - pos);
        break;
      case Phase::kChunkDataEnd:
        pos += ConsumeChunkDataEnd(data + pos, len - pos);
        break;
      default:
        break;
    }
  }
}

size_t Http1Parser::ConsumeLines(const char* data, size_t len) {
  size_t pos = 0;
  const Phase phase = phase_;
  while (pos < len && phase_ == phase && !stopped_) {
    // Bytes past the limit of a head or trailer section are never looked at; a chunk-size
    // line is held to the same bound.
    const uint32_t limit = limits_.max_head_bytes;
    const size_t budget = block_bytes_ < limit ? limit - block_bytes_ : 0;
    const size_t window = std::min(len - pos, budget);
    const char* start = data + pos;
    if (phase_ == Phase::kHead && lines_ > 0 && carry_.empty() && window > 0 && *start != '\r') {
      // A field line, parsed where it lies: its value's scan finds its end, so it is read
      // once. A line the window cuts goes the slow way below, and is carried.
      http1::FieldLine field;
      size_t cr = 0;
      const LineError e = http1::ScanFieldLine(start, window, false, &field, &cr);
      if (e != LineError::kNone || cr != 0) {
        if (lines_ + 1 > limits_.max_headers + 1) {
          FailWith(mode_ == Mode::kRequest ? 431 : 502, "too many header fields");
          return pos;
        }
        if (e != LineError::kNone) {
          FailLine(e);
          return pos;
        }
        ++lines_;
        block_bytes_ += static_cast<uint32_t>(cr + 2);
        pos += cr + 2;
        AddField(field.name, field.value);
        continue;
      }
    }
    const void* lf = window == 0 ? nullptr : std::memchr(start, '\n', window);
    if (lf == nullptr) {
      if (window < len - pos) {
        if (phase_ == Phase::kChunkSize) {
          FailWith(BadStatus(), "chunk size line too long");
        } else {
          FailWith(mode_ == Mode::kRequest ? 431 : 502, "head too large");
        }
        return pos + window;
      }
      carry_.append(start, window);
      block_bytes_ += static_cast<uint32_t>(window);
      if (carry_.size() > 1 || carry_[0] != '\r') started_ = true;
      return len;
    }
    const size_t used = static_cast<size_t>(static_cast<const char*>(lf) - start) + 1;
    block_bytes_ += static_cast<uint32_t>(used);
    pos += used;
    if (carry_.empty()) {
      OnLine(std::string_view(start, used - 1));
    } else {
      carry_.append(start, used - 1);
      OnLine(carry_);
      carry_.clear();
    }
  }
  return pos;
}

void Http1Parser::OnLine(std::string_view line) {
  switch (phase_) {
    case Phase::kHead:
      OnHeadLine(line);
      return;
    case Phase::kTrailers:
      OnTrailerLine(line);
      return;
    case Phase::kChunkSize:
      OnChunkSizeLine(line);
      return;
    default:
      return;
  }
}

void Http1Parser::OnHeadLine(std::string_view line) {
  const bool empty = line.size() == 1 && line[0] == '\r';
  if (lines_ == 0) {
    if (empty) {
      // An empty line before a request line is skipped (RFC 9112 section 2.2); a response
      // must start with its status line.
      if (mode_ == Mode::kResponse) FailLine(LineError::kStartLine);
      return;
    }
    started_ = true;
    // Nothing follows a message that closed the connection (llhttp's rule too).
    if (closing_) return FailWith(BadStatus(), "data after the connection was closed");
    ++lines_;
    body_bytes_ = 0;
    framing_ = Framing{};
    if (mode_ == Mode::kRequest) {
      if (!request_) request_ = MakeRequestHead();
      RequestHead& head = *request_;
      head.Clear();
      http1::RequestLine parsed;
      LineError e = http1::ParseRequestLine(line, &parsed);
      if (e != LineError::kNone) return FailLine(e);
      if (parsed.target.size() > limits_.max_target_bytes) {
        return FailWith(414, "request target too long");
      }
      head.method_text.assign(parsed.method);
      head.method = ClassifyMethod(parsed.method);
      if (head.method == HttpMethod::kConnect) {
        return FailWith(405, "CONNECT is not supported by a reverse proxy");
      }
      head.target.assign(parsed.target);
      head.version = parsed.minor == 0 ? HttpVersion::kHttp10 : HttpVersion::kHttp11;
      headers_ = &head.headers;
    } else {
      if (!response_) response_ = MakeResponseHead();
      ResponseHead& head = *response_;
      head.Clear();
      http1::StatusLine parsed;
      LineError e = http1::ParseStatusLine(line, &parsed);
      if (e == LineError::kVersionUnsupported) {
        return FailWith(502, "upstream answered with an unsupported HTTP version");
      }
      if (e != LineError::kNone) return FailLine(e);
      if (parsed.status < 100 || parsed.status > 599) {
        return FailWith(502, "upstream status code out of range");
      }
      if (parsed.reason.size() > kMaxReasonBytes) return FailWith(502, "reason phrase too long");
      head.version = parsed.minor == 0 ? HttpVersion::kHttp10 : HttpVersion::kHttp11;
      head.status = parsed.status;
      head.reason.assign(parsed.reason);
      headers_ = &head.headers;
    }
    return;
  }
  if (empty) return OnHeadEnd();
  if (++lines_ > limits_.max_headers + 1) {
    return FailWith(mode_ == Mode::kRequest ? 431 : 502, "too many header fields");
  }
  http1::FieldLine field;
  LineError e = http1::ParseFieldLine(line, &field);
  if (e != LineError::kNone) return FailLine(e);
  AddField(field.name, field.value);
}

void Http1Parser::AddField(std::string_view name, std::string_view value) {
  const HeaderKind kind = ClassifyHeaderName(name);
  headers_->AddFromLine(name, value, kind);
  switch (kind) {
    case HeaderKind::kContentLength:
      if (framing_.content_length_fields < 255) ++framing_.content_length_fields;
      if (!ParseContentLength(value, &framing_.content_length)) {
        framing_.content_length_valid = false;
      }
      return;
    case HeaderKind::kTransferEncoding:
      if (framing_.transfer_encoding_fields < 255) ++framing_.transfer_encoding_fields;
      ForEachListElement(value, [&](std::string_view coding) {
        if (framing_.codings < 255) ++framing_.codings;
        // chunked is applied once, last (RFC 9112 section 6.1), in this field or an earlier one.
        if (framing_.chunked_seen) framing_.chunked_not_last = true;
        if (EqualsIgnoreCase(coding, "chunked")) framing_.chunked_seen = true;
      });
      {
        // The coding after the last comma, empty ones included: "chunked," does not end in
        // chunked (a request smuggler's favourite; llhttp refuses it too).
        std::string_view last = value.substr(value.rfind(',') + 1);
        while (!last.empty() && (last.front() == ' ' || last.front() == '\t')) {
          last.remove_prefix(1);
        }
        framing_.last_coding_chunked = EqualsIgnoreCase(last, "chunked");
      }
      return;
    case HeaderKind::kConnection:
    case HeaderKind::kProxyConnection:  // llhttp and its ancestors honour it too
      ForEachListElement(value, [&](std::string_view token) {
        if (EqualsIgnoreCase(token, "close")) {
          framing_.connection_close = true;
        } else if (EqualsIgnoreCase(token, "keep-alive")) {
          framing_.connection_keep_alive = true;
        } else if (EqualsIgnoreCase(token, "upgrade")) {
          framing_.connection_upgrade = true;
        } else if (kind == HeaderKind::kConnection) {
          framing_.connection_lists_names = true;
        }
      });
      return;
    case HeaderKind::kUpgrade:
      if (framing_.upgrade_fields < 255) ++framing_.upgrade_fields;
      return;
    default:
      return;
  }
}

void Http1Parser::OnHeadEnd() {
  if (framing_.connection_lists_names && !MarkConnectionListed(*headers_)) {
    return FailWith(BadStatus(), mode_ == Mode::kRequest
                                     ? "too many names in Connection"
                                     : "upstream listed too many names in Connection");
  }
  bool skip_body = false;
  if (mode_ == Mode::kRequest) {
    if (!ValidateRequestHead()) return;
    const RequestHead& head = *request_;
    StartBody(head.framing, head.content_length);
  } else {
    if (!ValidateResponseHead(&skip_body)) return;
    const ResponseHead& head = *response_;
    StartBody(skip_body ? BodyFraming::kNone : head.framing, head.content_length);
  }
  if (!informational_) handler_->OnHead();
  // The body follows in Execute(), which also completes a message without one.
}

bool Http1Parser::ValidateRequestHead() {
  RequestHead& head = *request_;
  const Framing& f = framing_;
  if (f.transfer_encoding_fields > 0) {
    if (head.version == HttpVersion::kHttp10) {
      FailWith(400, "Transfer-Encoding in an HTTP/1.0 request");
      return false;
    }
    if (f.content_length_fields > 0) {
      FailWith(400, "both Content-Length and Transfer-Encoding");
      return false;
    }
    if (!f.last_coding_chunked || f.chunked_not_last) {
      FailWith(400, "Transfer-Encoding does not end in chunked");
      return false;
    }
    if (f.codings != 1) {
      FailWith(501, "transfer codings other than chunked are not supported");
      return false;
    }
  }
  if (f.content_length_fields > 1) {
    FailWith(400, "duplicate Content-Length");
    return false;
  }
  if (f.content_length_fields == 1 && !f.content_length_valid) {
    FailWith(400, "invalid Content-Length");
    return false;
  }

  head.content_length = 0;
  if (f.transfer_encoding_fields > 0) {
    head.framing = BodyFraming::kChunked;
  } else if (f.content_length_fields == 1) {
    head.content_length = f.content_length;
    head.framing = BodyFraming::kContentLength;  // even of 0 bytes: it is forwarded as sent
    if (limits_.max_body_bytes != 0 && head.content_length > limits_.max_body_bytes) {
      FailWith(413, "request body larger than the limit");
      return false;
    }
  } else {
    head.framing = BodyFraming::kNone;
  }
  // close wins over keep-alive (RFC 9112 section 9.3), in HTTP/1.0 too.
  head.keep_alive =
      !f.connection_close && (head.version == HttpVersion::kHttp11 || f.connection_keep_alive);
  keep_alive_ = head.keep_alive;

  if (auto expect = head.headers.GetKind(HeaderKind::kExpect);
      expect && head.version == HttpVersion::kHttp11) {
    if (!EqualsIgnoreCase(*expect, "100-continue")) {
      FailWith(417, "unsupported Expect value");
      return false;
    }
    // A chunked body's length is unknown: it may still come, so the client gets its 100.
    head.expect_continue =
        head.framing == BodyFraming::kChunked ||
        (head.framing == BodyFraming::kContentLength && head.content_length != 0);
  }

  head.upgrade = false;
  if (f.upgrade_fields > 0 && f.connection_upgrade) {
    // Served as an ordinary request unless it can be tunneled; the Upgrade field is then
    // dropped as hop-by-hop.
    bool acceptable =
        head.version == HttpVersion::kHttp11 && !head.has_body() && f.upgrade_fields == 1;
    // h2c is HTTP/2 to sluice itself, not something to pass to an origin.
    if (acceptable)
      acceptable = !ContainsIgnoreCase(*head.headers.GetKind(HeaderKind::kUpgrade), "h2c");
    head.upgrade = acceptable;
  }
  upgrade_ = head.upgrade;
  return true;
}

bool Http1Parser::ValidateResponseHead(bool* skip_body) {
  ResponseHead& head = *response_;
  const Framing& f = framing_;
  if (f.transfer_encoding_fields > 0) {
    if (f.content_length_fields > 0) {
      FailWith(502, "upstream sent both Content-Length and Transfer-Encoding");
      return false;
    }
    if (!f.last_coding_chunked || f.chunked_not_last || f.codings != 1) {
      FailWith(502, "upstream used a transfer coding other than chunked");
      return false;
    }
  }
  if (f.content_length_fields > 1) {
    FailWith(502, "upstream sent duplicate Content-Length");
    return false;
  }
  if (f.content_length_fields == 1 && !f.content_length_valid) {
    FailWith(502, "upstream sent an invalid Content-Length");
    return false;
  }

  informational_ = false;
  upgrade_ = false;
  if (head.status < 200) {
    if (head.status == 101) {
      if (!upgrade_requested_ || f.upgrade_fields == 0 || !f.connection_upgrade) {
        FailWith(502, "upstream switched protocols without an upgrade request");
        return false;
      }
      upgrade_ = true;
    } else {
      informational_ = true;  // 100, 102, 103: consumed here, never forwarded
    }
  }

  // close wins over keep-alive (RFC 9112 section 9.3), in HTTP/1.0 too; an HTTP/1.0 response
  // with Transfer-Encoding has faulty framing and ends the connection (section 6.1).
  const bool close =
      f.connection_close || (head.version == HttpVersion::kHttp10 &&
                             (!f.connection_keep_alive || f.transfer_encoding_fields > 0));
  head.keep_alive = !close;
  keep_alive_ = !close;  // what may follow on the wire, whatever the client is told below
  head.content_length = 0;
  const bool no_body = response_to_ == HttpMethod::kHead || head.status < 200 ||
                       head.status == 204 || head.status == 304;
  if (no_body) {
    head.framing = BodyFraming::kNone;
    // Content-Length of a HEAD response describes the GET body; keep it for the client.
    if (f.content_length_fields == 1) head.content_length = f.content_length;
    if (response_to_ == HttpMethod::kHead) {
      head.keep_alive = !f.connection_close && head.version == HttpVersion::kHttp11;
      *skip_body = true;
    }
  } else if (f.transfer_encoding_fields > 0) {
    head.framing = BodyFraming::kChunked;
  } else if (f.content_length_fields == 1) {
    head.framing = BodyFraming::kContentLength;
    head.content_length = f.content_length;
  } else {
    head.framing = BodyFraming::kUntilClose;
    head.keep_alive = false;
    keep_alive_ = false;
  }
  return true;
}

void Http1Parser::StartBody(BodyFraming framing, uint64_t length) {
  body_framing_ = framing;
  body_remaining_ = 0;
  switch (framing) {
    case BodyFraming::kNone:
      phase_ = Phase::kBody;
      return;
    case BodyFraming::kContentLength:
      phase_ = Phase::kBody;
      body_remaining_ = length;
      return;
    case BodyFraming::kUntilClose:
      phase_ = Phase::kBody;
      return;
    case BodyFraming::kChunked:
      phase_ = Phase::kChunkSize;
      block_bytes_ = 0;
      return;
  }
}

size_t Http1Parser::ConsumeBody(const char* data, size_t len) {
  size_t n = len;
  if (body_framing_ != BodyFraming::kUntilClose) {
    n = static_cast<size_t>(std::min<uint64_t>(len, body_remaining_));
    body_remaining_ -= n;
  }
  body_bytes_ += n;
  handler_->OnBody({data, n});
  if (body_remaining_ == 0 && phase_ == Phase::kChunkData) {
    phase_ = Phase::kChunkDataEnd;
    chunk_crlf_seen_ = 0;
  }
  // A Content-Length body that just ended completes in Execute() (unless Stop() came first).
  return n;
}

size_t Http1Parser::ConsumeChunkDataEnd(const char* data, size_t len) {
  size_t i = 0;
  while (i < len && chunk_crlf_seen_ < 2) {
    const char want = chunk_crlf_seen_ == 0 ? '\r' : '\n';
    if (data[i] != want) {
      FailWith(BadStatus(), "chunk data not followed by CRLF");
      return i;
    }
    ++chunk_crlf_seen_;
    ++i;
  }
  if (chunk_crlf_seen_ == 2) {
    phase_ = Phase::kChunkSize;
    block_bytes_ = 0;
  }
  return i;
}

void Http1Parser::OnChunkSizeLine(std::string_view line) {
  uint64_t size = 0;
  LineError e = http1::ParseChunkSizeLine(line, &size);
  if (e != LineError::kNone) return FailLine(e);
  if (size == 0) {
    // The last chunk: a trailer section follows.
    phase_ = Phase::kTrailers;
    block_bytes_ = 0;
    lines_ = 0;
    return;
  }
  // body_bytes_ never exceeds the limit here, so the difference cannot wrap (a sum could:
  // a chunk size may be up to 2^64 - 1).
  if (mode_ == Mode::kRequest && limits_.max_body_bytes != 0 &&
      size > limits_.max_body_bytes - body_bytes_) {
    return FailWith(413, "request body larger than the limit");
  }
  phase_ = Phase::kChunkData;
  body_remaining_ = size;
}

void Http1Parser::OnTrailerLine(std::string_view line) {
  if (line.size() == 1 && line[0] == '\r') return CompleteMessage();
  if (++lines_ > limits_.max_headers) {
    return FailWith(mode_ == Mode::kRequest ? 431 : 502, "too many header fields");
  }
  // Trailer fields are validated, then dropped.
  http1::FieldLine field;
  LineError e = http1::ParseFieldLine(line, &field);
  if (e != LineError::kNone) return FailLine(e);
}

void Http1Parser::CompleteMessage() {
  phase_ = upgrade_ ? Phase::kUpgraded : Phase::kDone;
  if (informational_) {
    // A 1xx response other than 101: the final response follows on the same connection
    // (unless the 1xx closed it, which makes whatever follows an error).
    informational_ = false;
    StartHead();
    closing_ = !keep_alive_;
    return;
  }
  closing_ = !keep_alive_ && !upgrade_;
  handler_->OnMessageComplete();
}

Http1Parser::Result Http1Parser::Finish() {
  switch (phase_) {
    case Phase::kHead:
      if (!started_) return {0, Outcome::kNeedMore};
      break;
    case Phase::kBody:
      if (body_framing_ == BodyFraming::kUntilClose) {
        phase_ = Phase::kDone;
        handler_->OnMessageComplete();
        return {0, Outcome::kMessageComplete};
      }
      if (body_remaining_ == 0) {
        // Every byte arrived; a handler's Stop() kept Execute() from ending the message.
        CompleteMessage();
        return {0, phase_ == Phase::kUpgraded ? Outcome::kUpgrade : Outcome::kMessageComplete};
      }
      break;
    case Phase::kDone:
      return {0, Outcome::kMessageComplete};
    case Phase::kUpgraded:
      return {0, Outcome::kUpgrade};
    case Phase::kFailed:
      return Error(0);
    default:
      break;
  }
  FailWith(BadStatus(), "connection closed in the middle of a message");
  return Error(0);
}

}  // namespace sluice
