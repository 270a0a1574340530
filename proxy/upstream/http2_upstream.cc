#include "proxy/upstream/http2_upstream.h"

#include <cstring>

#include "common/log.h"
#include "common/strings.h"
#include "proxy/http/http2_fields.h"
#include "proxy/http/http_codec.h"
#include "proxy/upstream/upstream_endpoint.h"

namespace sluice {
namespace {

// The opaque data of sluice's PINGs: a window probe, and a warm connection's keep-alive.
constexpr uint8_t kProbePing[8] = {'s', 'l', 'u', 'i', 'c', 'e', 'B', 'D'};
constexpr uint8_t kKeepAlivePing[8] = {'s', 'l', 'u', 'i', 'c', 'e', 'K', 'A'};
// A connection that served this long was no flap: the next one is opened without back-off.
constexpr int64_t kLivedWellNs = 10'000'000'000;
// A connection whose server sends no SETTINGS within this is given up.
constexpr absl::Duration kPrefaceTimeout = absl::Seconds(10);

// Fields that describe one HTTP/1.1 connection and must not appear in HTTP/2 (RFC 9113
// section 8.2.2); "te" may stay only as "trailers".
bool ConnectionSpecific(std::string_view lower_name, std::string_view value) {
  if (lower_name == "te") return !EqualsIgnoreCase(StripWhitespace(value), "trailers");
  return lower_name == "connection" || lower_name == "keep-alive" ||
         lower_name == "proxy-connection" || lower_name == "transfer-encoding" ||
         lower_name == "upgrade" || lower_name == "host";
}

}  // namespace

// --- nghttp2 callbacks ---------------------------------------------------------------------

struct Http2UpstreamStream::Callbacks {
  static Http2UpstreamStream* StreamOf(nghttp2_session* session, int32_t id) {
    return static_cast<Http2UpstreamStream*>(nghttp2_session_get_stream_user_data(session, id));
  }

  static int OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void*) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Http2UpstreamStream* stream = StreamOf(session, frame->hd.stream_id);
    if (stream && !stream->head_delivered_) {
      stream->response_ = MakeResponseHead();
      stream->response_->version = HttpVersion::kHttp2;
      stream->response_->status = 0;
    }
    return 0;
  }

  static int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void*) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Http2UpstreamStream* stream = StreamOf(session, frame->hd.stream_id);
    if (!stream) return 0;
    std::string_view n = Http2Bytes(name, namelen);
    std::string_view v = Http2Bytes(value, valuelen);
    if (stream->head_delivered_) {
      stream->trailers_.Add(n, v);
      return 0;
    }
    if (!stream->response_) return 0;
    if (n == ":status") {
      uint64_t status = 0;
      if (ParseInteger(v, &status) && status >= 100 && status <= 999) {
        stream->response_->status = static_cast<int>(status);
      }
      return 0;
    }
    stream->response_->headers.Add(n, v);
    return 0;
  }

  static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto* owner = static_cast<Http2UpstreamSession*>(user);
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
      owner->OnPingAck(frame->ping.opaque_data);
      return 0;
    }
    if (frame->hd.type == NGHTTP2_SETTINGS && !(frame->hd.flags & NGHTTP2_FLAG_ACK)) {
      if (!owner->ready_) owner->OnPreface();
      return 0;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      owner->draining_ = true;  // streams past its last id are refused and closed by nghttp2
      return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    Http2UpstreamStream* stream = StreamOf(session, frame->hd.stream_id);
    if (!stream || stream->ended_) return 0;
    const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS && !stream->head_delivered_ && stream->response_) {
      ResponseHead& head = *stream->response_;
      if (head.status >= 100 && head.status < 200) {
        stream->response_.reset();  // interim (100 Continue): the final head follows
        return 0;
      }
      if (head.status == 0) {
        stream->Fail(UpstreamError::kBadResponse, "HTTP/2 response without :status");
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_PROTOCOL_ERROR);
        return 0;
      }
      uint64_t length = 0;
      if (std::optional<std::string_view> cl = head.headers.GetKind(HeaderKind::kContentLength);
          cl && ParseInteger(*cl, &length)) {
        head.framing = BodyFraming::kContentLength;
        head.content_length = length;
      } else {
        head.framing = end_stream ? BodyFraming::kNone : BodyFraming::kChunked;
      }
      stream->head_delivered_ = true;
      if (stream->handler_) stream->handler_->OnUpstreamHead(std::move(stream->response_));
    } else if (frame->hd.type == NGHTTP2_HEADERS && stream->head_delivered_ && end_stream &&
               stream->handler_ && !stream->trailers_.empty()) {
      stream->handler_->OnUpstreamTrailers(stream->trailers_);
    }
    if (end_stream && stream->head_delivered_ && !stream->ended_) {
      stream->ended_ = true;
      if (stream->handler_) stream->handler_->OnUpstreamEnd();
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                         size_t len, void* user) {
    auto* owner = static_cast<Http2UpstreamSession*>(user);
    if (owner->sizer_.OnData(len, owner->context_->clock().MonotonicNanos())) {
      owner->SendPing(/*probe=*/true);
    }
    Http2UpstreamStream* stream = StreamOf(session, id);
    if (!stream || !stream->handler_ || stream->ended_) {
      nghttp2_session_consume(session, id, len);
      return 0;
    }
    if (stream->paused_) {
      stream->unconsumed_ += len;
    } else {
      nghttp2_session_consume(session, id, len);
    }
    stream->handler_->OnUpstreamBody(Http2Bytes(data, len));
    return 0;
  }

  static int OnStreamClose(nghttp2_session* session, int32_t id, uint32_t error_code, void*) {
    Http2UpstreamStream* stream = StreamOf(session, id);
    if (!stream) return 0;
    nghttp2_session_set_stream_user_data(session, id, nullptr);
    stream->closed_ = true;
    if (!stream->ended_ && stream->handler_) {
      const char* reason = error_code == NGHTTP2_REFUSED_STREAM
                               ? "stream refused (GOAWAY)"
                               : nghttp2_http2_strerror(error_code);
      stream->Fail(stream->head_delivered_ ? UpstreamError::kClosedDuringResponse
                                           : UpstreamError::kClosedBeforeResponse,
                   reason);
    }
    stream->session_->StreamDone(stream);
    return 0;
  }
};

// --- The stream ------------------------------------------------------------------------------

Http2UpstreamStream::Http2UpstreamStream(Http2UpstreamSession* session, Handler* handler)
    : session_(session), handler_(handler), out_(session->context_) {}

Http2UpstreamStream::~Http2UpstreamStream() = default;

void Http2UpstreamStream::Fail(UpstreamError error, const char* reason) {
  ended_ = true;
  Handler* handler = handler_;
  Detach();
  if (handler) handler->OnUpstreamError(error, 0, reason);
}

void Http2UpstreamStream::Detach() {
  if (!handler_) return;
  handler_ = nullptr;
  --session_->active_;
  session_->MaybeIdle();
}

void Http2UpstreamStream::Release() {
  Detach();
  if (closed_ || id_ < 0) {
    session_->StreamDone(this);
  } else if (!ended_) {
    // The forwarder is done before the origin: stop the stream.
    nghttp2_submit_rst_stream(session_->session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
    session_->ScheduleSend();
  }
}

void Http2UpstreamStream::Close() {
  ended_ = true;
  Release();
  if (!closed_ && id_ >= 0) {
    nghttp2_submit_rst_stream(session_->session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_CANCEL);
    session_->ScheduleSend();
  }
}

void Http2UpstreamStream::SendRequestHead(std::string_view head, HttpMethod, BodyFraming framing,
                                          bool upgrade) {
  if (!handler_ || id_ >= 0) return;
  if (upgrade) {
    Fail(UpstreamError::kBadResponse, "protocol upgrades do not pass over HTTP/2 to origins");
    session_->StreamDone(this);
    return;
  }
  // The head as SerializeUpstreamRequest wrote it: request line, fields, blank line.
  std::string& names = session_->context_->scratch();
  names.clear();
  names.reserve(head.size());  // lower-cased names; never reallocated below
  std::vector<nghttp2_nv> nva;
  nva.reserve(32);
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = line.rfind(' ');
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view authority;
  std::vector<nghttp2_nv> fields;
  fields.reserve(32);
  for (size_t pos = eol + 2; pos < head.size();) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos || end == pos) break;
    std::string_view field = head.substr(pos, end - pos);
    pos = end + 2;
    size_t colon = field.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = field.substr(0, colon);
    std::string_view value = StripWhitespace(field.substr(colon + 1));
    size_t start = names.size();
    for (char c : name) names.push_back(AsciiToLower(c));
    std::string_view lower(names.data() + start, name.size());
    if (lower == "host") authority = value;
    if (ConnectionSpecific(lower, value)) continue;
    fields.push_back(Http2Field(lower, value));
  }
  nva.push_back(Http2Field(":method", method));
  nva.push_back(Http2Field(":scheme", session_->endpoint_->tls() ? "https" : "http"));
  nva.push_back(Http2Field(":authority", authority));
  nva.push_back(Http2Field(":path", target));
  nva.insert(nva.end(), fields.begin(), fields.end());

  nghttp2_data_provider provider;
  provider.source.ptr = this;
  provider.read_callback = &Http2UpstreamStream::ReadBody;
  const bool body = framing != BodyFraming::kNone;
  if (!body) out_.End();
  int32_t id = nghttp2_submit_request(session_->session_, nullptr, nva.data(), nva.size(),
                                      body ? &provider : nullptr, this);
  if (id < 0) {
    Fail(UpstreamError::kClosedBeforeResponse, nghttp2_strerror(id));
    session_->StreamDone(this);
    return;
  }
  id_ = id;
  reused_ = session_->submitted_ > 0;
  ++session_->submitted_;
  const uint32_t max_requests = session_->endpoint_->pool().max_requests;
  if (max_requests != 0 && session_->submitted_ >= max_requests) session_->draining_ = true;
  session_->ScheduleSend();
}

void Http2UpstreamStream::SendBody(std::string_view data) {
  if (!handler_ || out_.ended() || data.empty()) return;
  out_.Append(data);
  if (queued_bytes() >= kOutputHighWater) want_drain_ = true;
  out_.Resume(session_->session_, id_);
  session_->ScheduleSend();
}

void Http2UpstreamStream::EndRequest() {
  if (!handler_ || out_.ended()) return;
  out_.End();
  out_.Resume(session_->session_, id_);
  session_->ScheduleSend();
}

ssize_t Http2UpstreamStream::ReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                      uint32_t* flags, nghttp2_data_source* source, void*) {
  return static_cast<Http2UpstreamStream*>(source->ptr)->out_.Read(buf, length, flags);
}

void Http2UpstreamStream::PauseReading() { paused_ = true; }

void Http2UpstreamStream::ResumeReading() {
  if (!paused_) return;
  paused_ = false;
  if (unconsumed_ > 0 && !closed_ && id_ >= 0) {
    nghttp2_session_consume(session_->session_, id_, unconsumed_);
    session_->ScheduleSend();
  }
  unconsumed_ = 0;
}

size_t Http2UpstreamStream::queued_bytes() const {
  return out_.size() + session_->stream_.queued_bytes();
}

// --- The session -----------------------------------------------------------------------------

Http2UpstreamSession* Http2UpstreamSession::Connect(LoopContext* context,
                                                    std::shared_ptr<UpstreamEndpoint> endpoint,
                                                    int* error) {
  auto* session = new Http2UpstreamSession(context, std::move(endpoint));
  int rc = session->stream_.Init();
  if (rc != 0) {
    *error = rc;
    delete session;
    return nullptr;
  }
  if (session->endpoint_->tls()) {
    SSL* ssl = session->endpoint_->NewTlsSession(/*offer_h2=*/true);
    if (!ssl) {
      *error = UV_ENOMEM;
      session->CloseNow();
      return nullptr;
    }
    session->stream_.StartTls(ssl);
  }
  rc = session->stream_.Connect(session->endpoint_->address().sockaddr_ptr());
  if (rc != 0) {
    *error = rc;
    session->CloseNow();
    return nullptr;
  }
  session->endpoint_->AddSession(session);
  // Connected, through TLS and the server's SETTINGS within this, or given up: a peer that
  // never answers a SYN must not hold a warm connection (or a draining worker) for minutes.
  session->idle_timeout_.Arm(context->Timeouts(kPrefaceTimeout));
  return session;
}

Http2UpstreamSession::Http2UpstreamSession(LoopContext* context,
                                           std::shared_ptr<UpstreamEndpoint> endpoint)
    : context_(context),
      endpoint_(std::move(endpoint)),
      stream_(context, this),
      idle_timeout_(this),
      sizer_(endpoint_->pool().http2_window, endpoint_->pool().http2_max_window) {
  ++endpoint_->connections_;
}

Http2UpstreamSession::~Http2UpstreamSession() {
  CancelDeferred();
  if (session_) nghttp2_session_del(session_);
  WindowBudget::Upstream().Release(window_reserved_);
  --endpoint_->connections_;
}

Http2UpstreamStream* Http2UpstreamSession::OpenStream(UpstreamStream::Handler* handler,
                                                      bool* ready) {
  auto* stream = new Http2UpstreamStream(this, handler);
  streams_.push_back(stream);
  ++active_;
  if (ready_) idle_timeout_.Disarm();
  *ready = ready_;
  return stream;
}

void Http2UpstreamSession::OnStreamConnected() {
  if (closing_) return;
  if (stream_.ssl() && stream_.alpn() != "h2") {
    endpoint_->RefuseHttp2();
    LOG_INFO("upstream %s: no h2 by ALPN; HTTP/1.1 from now on", endpoint_->name());
    FailAll(UpstreamError::kHttp2Refused, "the endpoint did not agree to h2 (ALPN)");
    return;
  }
  stream_.TuneSocket(static_cast<int>(kOutputHighWater));
  if (stream_.StartReading() != 0) {
    FailAll(UpstreamError::kConnectFailed, "cannot read from the socket");
    return;
  }
  StartSession();
}

void Http2UpstreamSession::StartSession() {
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  using C = Http2UpstreamStream::Callbacks;
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &C::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &C::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &C::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &C::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &C::OnStreamClose);
  nghttp2_option* option;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_session_client_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, sizer_.stream_window()},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(sizer_.connection_window()));
  // Ready once the server's preface (its SETTINGS) arrives: a server that is not speaking
  // HTTP/2 is found out before any request is given to it.
  idle_timeout_.Arm(context_->Timeouts(kPrefaceTimeout));
  ScheduleSend();
}

void Http2UpstreamSession::OnPreface() {
  ready_ = true;
  ready_at_ns_ = context_->clock().MonotonicNanos();
  idle_timeout_.Disarm();
  // The streams that waited for the connection send their requests now.
  std::vector<Http2UpstreamStream*> waiting = streams_;
  for (Http2UpstreamStream* stream : waiting) {
    if (closing_) break;
    if (stream->handler_ && stream->id_ < 0) stream->handler_->OnUpstreamConnected();
  }
  MaybeIdle();
  ScheduleSend();
}

void Http2UpstreamSession::SendPing(bool probe) {
  if (closing_ || !session_) return;
  const int64_t now = context_->clock().MonotonicNanos();
  if (nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, probe ? kProbePing : kKeepAlivePing) != 0) {
    return;
  }
  if (probe) {
    sizer_.ProbeSent(now);
  } else {
    ping_outstanding_ = true;
    ping_sent_ns_ = now;
  }
  ScheduleSend();
}

void Http2UpstreamSession::OnPingAck(const uint8_t* opaque) {
  const int64_t now = context_->clock().MonotonicNanos();
  if (std::memcmp(opaque, kKeepAlivePing, sizeof(kKeepAlivePing)) == 0) {
    missed_pings_ = 0;
    if (ping_outstanding_) {
      sizer_.OnRoundTrip(now - ping_sent_ns_);
      LOG_DEBUG("upstream %s: keep-alive PING answered in %.2f ms", endpoint_->name(),
                static_cast<double>(now - ping_sent_ns_) / 1e6);
    }
    ping_outstanding_ = false;
    return;
  }
  if (std::memcmp(opaque, kProbePing, sizeof(kProbePing)) != 0) return;
  WindowSizer::Growth growth = sizer_.OnProbeAck(now, &WindowBudget::Upstream());
  window_reserved_ += growth.reserved;
  if (!growth.grew || closing_ || !session_) return;
  // The peer may send this much more: on every stream (its SETTINGS) and on the connection.
  nghttp2_settings_entry window = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, growth.stream_window};
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, &window, 1) != 0 ||
      nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                            static_cast<int32_t>(growth.connection_window)) != 0) {
    // Out of memory in nghttp2: the connection is not usable.
    FailAll(UpstreamError::kClosedBeforeResponse, "cannot grow the HTTP/2 windows");
    return;
  }
  LOG_DEBUG("upstream %s: HTTP/2 windows now %u per stream, %u per connection (rtt %.1f ms)",
            endpoint_->name(), growth.stream_window, growth.connection_window,
            static_cast<double>(sizer_.last_rtt_ns()) / 1e6);
  ScheduleSend();
}

void Http2UpstreamSession::OnStreamRead(const char* data, size_t len) {
  if (closing_ || !session_) return;
  if (first_read_) {
    first_read_ = false;
    // A cleartext HTTP/1.1 server answers the preface with an HTTP/1.1 error.
    if (!stream_.ssl() && len >= 7 && std::memcmp(data, "HTTP/1.", 7) == 0 && submitted_ <= 100) {
      endpoint_->RefuseHttp2();
      LOG_INFO("upstream %s: answered the HTTP/2 preface with HTTP/1.1; HTTP/1.1 from now on",
               endpoint_->name());
      FailAll(UpstreamError::kHttp2Refused, "the endpoint speaks HTTP/1.1 only");
      return;
    }
  }
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len);
  if (closing_) return;
  if (rv < 0) {
    LOG_INFO("upstream %s: http2: %s", endpoint_->name(), nghttp2_strerror(static_cast<int>(rv)));
    FailAll(UpstreamError::kBadResponse, nghttp2_strerror(static_cast<int>(rv)));
    return;
  }
  ScheduleSend();
}

void Http2UpstreamSession::RunDeferred() {
  if (closing_ || !session_) return;
  while (stream_.queued_bytes() < kOutputHighWater) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      FailAll(UpstreamError::kClosedBeforeResponse, nghttp2_strerror(static_cast<int>(n)));
      return;
    }
    if (n == 0) break;
    stream_.Write(std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
  }
  // Request bodies that may flow again.
  std::vector<Http2UpstreamStream*> streams = streams_;
  for (Http2UpstreamStream* stream : streams) {
    if (stream->want_drain_ && stream->handler_ && stream->queued_bytes() < kOutputHighWater) {
      stream->want_drain_ = false;
      stream->handler_->OnUpstreamDrained();
    }
  }
  if (closing_) return;
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
    FailAll(UpstreamError::kClosedBeforeResponse, "the connection was shut down (GOAWAY)");
    return;
  }
  MaybeIdle();
}

void Http2UpstreamSession::OnStreamDrained() {
  if (closing_) return;
  ScheduleSend();
}

void Http2UpstreamSession::OnStreamEof() {
  FailAll(UpstreamError::kClosedBeforeResponse, "the connection was closed");
}

void Http2UpstreamSession::OnStreamError(int error) {
  const std::string& tls = stream_.tls_error();
  const bool connecting = !ready_;
  FailAll(connecting ? UpstreamError::kConnectFailed : UpstreamError::kClosedBeforeResponse,
          tls.empty() ? uv_strerror(error) : tls.c_str());
}

void Http2UpstreamSession::FailAll(UpstreamError error, const char* reason) {
  if (closing_) {
    CloseNow();  // after our GOAWAY: the peer closed or failed; nothing is left to fail
    return;
  }
  closing_ = true;
  draining_ = true;
  std::vector<Http2UpstreamStream*> streams;
  streams.swap(streams_);
  for (Http2UpstreamStream* stream : streams) {
    stream->closed_ = true;
    if (stream->handler_ && !stream->ended_) {
      UpstreamError kind = error;
      if (kind == UpstreamError::kClosedBeforeResponse && stream->head_delivered_) {
        kind = UpstreamError::kClosedDuringResponse;
      }
      stream->Fail(kind, reason);
    } else {
      stream->Detach();
    }
    context_->DeleteLater(std::unique_ptr<Deletable>(stream));
  }
  CloseNow();
}

void Http2UpstreamSession::StreamDone(Http2UpstreamStream* stream) {
  // Freed once neither the forwarder nor nghttp2 needs it.
  if (stream->handler_ || !(stream->closed_ || stream->id_ < 0)) return;
  for (size_t i = 0; i < streams_.size(); ++i) {
    if (streams_[i] == stream) {
      streams_[i] = streams_.back();
      streams_.pop_back();
      context_->DeleteLater(std::unique_ptr<Deletable>(stream));
      break;
    }
  }
  MaybeIdle();
}

void Http2UpstreamSession::MaybeIdle() {
  if (closing_ || active_ > 0 || !ready_) return;
  if (draining_ && streams_.empty()) {
    if (session_) {
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, nullptr, 0);
      const uint8_t* data = nullptr;
      for (ssize_t n; (n = nghttp2_session_mem_send(session_, &data)) > 0;) {
        stream_.Write(
            std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
      }
    }
    closing_ = true;
    stream_.ShutdownWrite();
    idle_timeout_.Arm(context_->Timeouts(absl::Seconds(1)));  // then close whatever happens
    return;
  }
  if (idle_timeout_.armed()) return;
  // A warm connection PINGs every interval (without PINGs it looks again after the idle
  // timeout whether it is still one of the warm ones); the others close after the timeout.
  const absl::Duration ping = endpoint_->pool().http2_ping_interval;
  const bool pings = endpoint_->KeepsWarm(this) && ping > absl::ZeroDuration();
  idle_timeout_.Arm(context_->Timeouts(pings ? ping : endpoint_->pool().idle_timeout));
}

void Http2UpstreamSession::OnTimeout(Timeout*) {
  if (!ready_ && !closing_) {
    FailAll(UpstreamError::kConnectFailed, "no HTTP/2 preface from the endpoint in time");
    return;
  }
  if (closing_) {
    CloseNow();
    return;
  }
  if (active_ > 0) return;
  const absl::Duration ping = endpoint_->pool().http2_ping_interval;
  if (ping_outstanding_ && ++missed_pings_ >= 2) {
    // Two intervals without an answer (one could be this loop's own stall, with the ACK
    // waiting in the socket): the path or the peer is gone. The endpoint opens another
    // connection in its place.
    LOG_INFO("upstream %s: no answer to a keep-alive PING; closing the connection",
             endpoint_->name());
    FailAll(UpstreamError::kClosedBeforeResponse, "no answer to a keep-alive PING");
    return;
  }
  if (endpoint_->KeepsWarm(this)) {
    if (ping > absl::ZeroDuration()) {
      if (!ping_outstanding_) SendPing(/*probe=*/false);
      idle_timeout_.Arm(context_->Timeouts(ping));
    } else {
      idle_timeout_.Arm(context_->Timeouts(endpoint_->pool().idle_timeout));
    }
    return;
  }
  draining_ = true;
  MaybeIdle();  // GOAWAY, then close
}

void Http2UpstreamSession::Retire() {
  draining_ = true;
  if (!ready_ && active_ == 0 && !closing_) {
    // Still connecting, for nobody: give up now rather than after the preface timeout.
    FailAll(UpstreamError::kConnectFailed, "the endpoint was retired");
    return;
  }
  MaybeIdle();
}

bool Http2UpstreamSession::LivedWell() const {
  return ready_ && context_->clock().MonotonicNanos() - ready_at_ns_ >= kLivedWellNs;
}

void Http2UpstreamSession::CloseNow() {
  if (stream_.closing()) return;
  closing_ = true;
  idle_timeout_.Disarm();
  CancelDeferred();
  endpoint_->RemoveSession(this, LivedWell());
  stream_.Close();  // OnStreamClosed frees the session
}

void Http2UpstreamSession::OnStreamClosed() {
  closing_ = true;
  endpoint_->RemoveSession(this, LivedWell());
  std::vector<Http2UpstreamStream*> streams;
  streams.swap(streams_);
  for (Http2UpstreamStream* stream : streams) {
    stream->closed_ = true;
    if (stream->handler_ && !stream->ended_) {
      stream->Fail(UpstreamError::kClosedBeforeResponse, "the connection closed");
    } else {
      stream->Detach();
    }
    context_->DeleteLater(std::unique_ptr<Deletable>(stream));
  }
  delete this;
}

}  // namespace sluice
