#include "proxy/upstream/upstream_connection.h"

#include "common/log.h"
#include "proxy/http/http1_parser_pool.h"
#include "proxy/http/http1_serializer.h"
#include "proxy/http/http_codec.h"
#include "proxy/upstream/upstream_endpoint.h"

namespace sluice {

const char* UpstreamErrorText(UpstreamError error) {
  switch (error) {
    case UpstreamError::kConnectFailed:
      return "connect failed";
    case UpstreamError::kClosedBeforeResponse:
      return "connection closed before the response";
    case UpstreamError::kClosedDuringResponse:
      return "connection closed during the response";
    case UpstreamError::kBadResponse:
      return "invalid response";
    case UpstreamError::kHttp2Refused:
      return "HTTP/2 refused";
  }
  return "?";
}

UpstreamConnection* UpstreamConnection::Connect(LoopContext* context,
                                                std::shared_ptr<UpstreamEndpoint> endpoint,
                                                Handler* handler, int* error) {
  auto* conn = new UpstreamConnection(context, std::move(endpoint), handler);
  int rc = conn->stream_.Init();
  if (rc != 0) {
    *error = rc;
    delete conn;  // nothing was handed to libuv
    return nullptr;
  }
  if (conn->endpoint_->tls()) {
    SSL* ssl = conn->endpoint_->NewTlsSession(/*offer_h2=*/false);
    if (!ssl) {
      *error = UV_ENOMEM;
      conn->handler_ = nullptr;
      conn->CloseNow();
      return nullptr;
    }
    conn->stream_.StartTls(ssl);  // OnStreamConnected once the handshake is done
  }
  rc = conn->stream_.Connect(conn->endpoint_->address().sockaddr_ptr());
  if (rc != 0) {
    *error = rc;
    conn->handler_ = nullptr;
    conn->CloseNow();
    return nullptr;
  }
  return conn;
}

UpstreamConnection::UpstreamConnection(LoopContext* context,
                                       std::shared_ptr<UpstreamEndpoint> endpoint, Handler* handler)
    : context_(context),
      endpoint_(std::move(endpoint)),
      handler_(handler),
      stream_(context, this),
      idle_timeout_(this) {
  ++endpoint_->connections_;
}

UpstreamConnection::~UpstreamConnection() {
  ReleaseParser();
  --endpoint_->connections_;
}

Http1Parser& UpstreamConnection::parser() {
  if (!parser_) {
    parser_ = TakeHttp1Parser(Http1Parser::Mode::kResponse, endpoint_->response_limits(), this);
  }
  return *parser_;
}

void UpstreamConnection::ReleaseParser() {
  if (parser_) GiveHttp1Parser(Http1Parser::Mode::kResponse, std::move(parser_));
}

void UpstreamConnection::OnStreamConnected() {
  if (state_ != State::kConnecting) return;
  state_ = State::kBusy;
  stream_.TuneSocket(static_cast<int>(kOutputHighWater));
  stream_.StartReading();
  if (handler_) handler_->OnUpstreamConnected();
}

void UpstreamConnection::Attach(Handler* handler) {
  idle_timeout_.Disarm();  // TakeIdle took it out of the pool already
  handler_ = handler;
  state_ = State::kBusy;
}

void UpstreamConnection::SendRequestHead(std::string_view head, HttpMethod method,
                                         BodyFraming framing, bool upgrade) {
  ++requests_;
  request_framing_ = framing;
  request_complete_ = false;
  response_started_ = false;
  response_complete_ = false;
  keep_alive_ = false;
  parser().ResumeAfterMessage();
  parser_->ExpectResponse(method, upgrade);
  stream_.Write(head);
}

void UpstreamConnection::SendBody(std::string_view data) {
  if (data.empty() || state_ == State::kClosed) return;
  if (request_framing_ == BodyFraming::kChunked && state_ != State::kTunnel) {
    char header[24];
    size_t n = FormatChunkHeader(header, data.size());
    stream_.Write({header, n}, data, kCrlf);
  } else {
    stream_.Write(data);
  }
}

void UpstreamConnection::EndRequest() {
  if (state_ == State::kClosed) return;
  request_complete_ = true;
  if (request_framing_ == BodyFraming::kChunked) stream_.Write(kLastChunk);
}

void UpstreamConnection::StartTunnel() { state_ = State::kTunnel; }

void UpstreamConnection::ShutdownWrite() { stream_.ShutdownWrite(); }

void UpstreamConnection::PauseReading() { stream_.StopReading(); }

void UpstreamConnection::ResumeReading() {
  if (state_ != State::kClosed) stream_.StartReading();
}

void UpstreamConnection::OnStreamRead(const char* data, size_t len) {
  switch (state_) {
    case State::kTunnel:
      if (handler_) handler_->OnUpstreamBody({data, len});
      return;
    case State::kIdle:
      // An idle origin has nothing to say; anything it sends makes the connection unusable.
      LOG_DEBUG("upstream %s: %zu unexpected bytes on an idle connection", endpoint_->name(), len);
      CloseNow();
      return;
    case State::kConnecting:
    case State::kClosed:
      return;
    case State::kBusy:
      break;
  }
  response_started_ = true;
  parsing_ = true;
  Http1Parser::Result r = parser().Execute(data, len);
  parsing_ = false;
  if (state_ == State::kIdle) ReleaseParser();  // released back to the pool meanwhile
  switch (r.outcome) {
    case Http1Parser::Outcome::kNeedMore:
    case Http1Parser::Outcome::kStopped:
      return;
    case Http1Parser::Outcome::kMessageComplete:
      if (r.consumed < len && state_ != State::kClosed) {
        // Bytes after a complete response: the origin is out of step with us.
        LOG_DEBUG("upstream %s: %zu bytes after the response", endpoint_->name(), len - r.consumed);
        keep_alive_ = false;
        if (state_ == State::kIdle) CloseNow();
      }
      return;
    case Http1Parser::Outcome::kUpgrade:
      // 101: what follows is the tunnel's first bytes.
      state_ = State::kTunnel;
      if (r.consumed < len && handler_)
        handler_->OnUpstreamBody({data + r.consumed, len - r.consumed});
      return;
    case Http1Parser::Outcome::kError:
      Fail(UpstreamError::kBadResponse, 0, r.reason);
      return;
  }
}

void UpstreamConnection::OnHead() {
  ResponseHeadPtr head = parser_->TakeResponse();
  keep_alive_ = head->keep_alive;
  if (head->status == 101) state_ = State::kTunnel;
  if (handler_) handler_->OnUpstreamHead(std::move(head));
}

void UpstreamConnection::OnBody(std::string_view data) {
  if (handler_) handler_->OnUpstreamBody(data);
}

void UpstreamConnection::OnMessageComplete() {
  if (state_ == State::kTunnel) return;  // the 101 head; the tunnel starts now
  response_complete_ = true;
  if (handler_) handler_->OnUpstreamEnd();
}

void UpstreamConnection::OnStreamEof() {
  switch (state_) {
    case State::kTunnel:
      if (handler_) handler_->OnUpstreamEnd();
      return;
    case State::kIdle:
    case State::kConnecting:
      CloseNow();
      return;
    case State::kClosed:
      return;
    case State::kBusy:
      break;
  }
  if (response_complete_) {
    keep_alive_ = false;
    return;
  }
  if (response_started_) {
    // A response delimited by the close ends here; anything else was cut short.
    Http1Parser::Result r = parser().Finish();
    if (r.outcome == Http1Parser::Outcome::kMessageComplete) return;
    Fail(UpstreamError::kClosedDuringResponse, UV_EOF, r.reason);
    return;
  }
  Fail(UpstreamError::kClosedBeforeResponse, UV_EOF, "closed by the origin");
}

void UpstreamConnection::OnStreamError(int error) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kIdle) {
    CloseNow();
    return;
  }
  UpstreamError kind = state_ == State::kConnecting ? UpstreamError::kConnectFailed
                       : response_started_          ? UpstreamError::kClosedDuringResponse
                                                    : UpstreamError::kClosedBeforeResponse;
  const std::string& tls_error = stream_.tls_error();
  Fail(kind, error, tls_error.empty() ? uv_strerror(error) : tls_error.c_str());
}

void UpstreamConnection::OnStreamDrained() {
  if (handler_ && state_ != State::kClosed) handler_->OnUpstreamDrained();
}

void UpstreamConnection::Fail(UpstreamError error, int detail, const char* reason) {
  Handler* handler = handler_;
  handler_ = nullptr;
  CloseNow();
  if (handler) handler->OnUpstreamError(error, detail, reason);
}

void UpstreamConnection::Release() {
  handler_ = nullptr;
  if (state_ == State::kClosed) return;
  bool reusable = state_ == State::kBusy && request_complete_ && response_complete_ &&
                  keep_alive_ && stream_.queued_bytes() == 0 && !stream_.write_shut();
  const PoolConfig& pool = endpoint_->pool();
  if (pool.max_requests != 0 && requests_ >= pool.max_requests) reusable = false;
  if (!reusable || !endpoint_->AddIdle(this)) {
    CloseNow();
    return;
  }
  state_ = State::kIdle;
  if (!parsing_) ReleaseParser();  // else once Execute returns
  stream_.StartReading();
  idle_timeout_.Arm(endpoint_->idle_timeouts());
}

void UpstreamConnection::Close() {
  handler_ = nullptr;
  CloseNow();
}

void UpstreamConnection::OnTimeout(Timeout*) {
  if (state_ == State::kIdle) CloseNow();
}

void UpstreamConnection::CloseNow() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  idle_timeout_.Disarm();
  // The endpoint unlinks it and counts it out of the pool; unlinking it here first would
  // leave the endpoint counting a closed connection as idle.
  endpoint_->RemoveIdle(this);
  stream_.Close();
}

void UpstreamConnection::OnStreamClosed() { delete this; }

}  // namespace sluice
