#include "proxy/http/http1_server_codec.h"

#include <vector>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/strings.h"
#include "proxy/event/recycler.h"
#include "proxy/http/http1_parser_pool.h"
#include "proxy/http/http1_serializer.h"

namespace sluice {

const char* StreamResetReasonText(StreamResetReason reason) {
  switch (reason) {
    case StreamResetReason::kDownstreamClosed:
      return "client closed the connection";
    case StreamResetReason::kProtocolError:
      return "client protocol error";
    case StreamResetReason::kTimeout:
      return "client connection timed out";
  }
  return "?";
}

Http1ServerCodec::Http1ServerCodec(LoopContext* context, CodecTransport* transport,
                                   StreamFactory* factory, Observer* observer,
                                   const Options& options, const DownstreamInfo* info)
    : context_(context),
      transport_(transport),
      factory_(factory),
      observer_(observer),
      info_(info),
      limits_(options.limits),
      requests_(options.requests_served),
      max_requests_(options.max_requests) {}

namespace {
// Free codec blocks kept per thread: enough for the connections that wake at once.
using CodecAllocation = RecycledAllocation<Http1ServerCodec, 256>;
}  // namespace

void* Http1ServerCodec::operator new(size_t size) { return CodecAllocation::New(size); }

void Http1ServerCodec::operator delete(void* p, size_t size) { CodecAllocation::Delete(p, size); }

bool Http1ServerCodec::parkable() const {
  return !closed_ && !draining_ && !eof_seen_ && !stream_open_ && !parser_paused_ && !parser_ &&
         !handler_ && pending_input_.empty() && framing_ == Framing::kNone && !scheduled() &&
         !upgrade_refused_ && !reading_paused_for_input_ && !close_after_response_;
}

Http1ServerCodec::~Http1ServerCodec() {
  if (handler_) {
    handler_->OnStreamReset(StreamResetReason::kDownstreamClosed);
    handler_.reset();
  }
  if (parser_) GiveHttp1Parser(Http1Parser::Mode::kRequest, std::move(parser_));
}

Http1Parser& Http1ServerCodec::parser() {
  if (!parser_) parser_ = TakeHttp1Parser(Http1Parser::Mode::kRequest, limits_, this);
  return *parser_;
}

void Http1ServerCodec::ReleaseParserIfIdle() {
  if (parser_ && !parser_paused_ && parser_->idle()) {
    GiveHttp1Parser(Http1Parser::Mode::kRequest, std::move(parser_));
  }
}

Http1ServerCodec::State Http1ServerCodec::state() const {
  if (closed_) return State::kClosed;
  if (stream_open_ || parser_paused_) return State::kActive;
  if (parser_ && parser_->in_head()) return State::kReadingHead;
  return State::kIdle;
}

void Http1ServerCodec::Notify() {
  if (observer_) observer_->OnCodecStateChanged();
}

// --- Input -------------------------------------------------------------------------------

void Http1ServerCodec::OnData(const char* data, size_t len) {
  if (closed_) return;
  if (framing_ == Framing::kTunnel) {
    if (!pending_input_.empty()) {
      BufferInput(data, len);  // older bytes go first; the deferred task delivers both
      return;
    }
    if (handler_) handler_->OnRequestBody({data, len});
    return;
  }
  if (parser_paused_ || !pending_input_.empty()) {
    BufferInput(data, len);
    return;
  }
  State before = state();
  Consume(data, len);
  if (state() != before) Notify();
}

void Http1ServerCodec::BufferInput(const char* data, size_t len) {
  pending_input_.append(data, len);
  // A client may pipeline, but not without bound: stop reading until it is our turn.
  if (pending_input_.size() > limits_.max_head_bytes && !reading_paused_for_input_) {
    reading_paused_for_input_ = true;
    transport_->PauseReading();
  }
}

void Http1ServerCodec::Consume(const char* data, size_t len) {
  Http1Parser::Result r = parser().Execute(data, len);
  switch (r.outcome) {
    case Http1Parser::Outcome::kNeedMore:
      ReleaseParserIfIdle();
      return;
    case Http1Parser::Outcome::kStopped:
      return;
    case Http1Parser::Outcome::kMessageComplete:
    case Http1Parser::Outcome::kUpgrade:
      if (closed_) return;
      if (r.consumed < len) BufferInput(data + r.consumed, len - r.consumed);
      if (framing_ == Framing::kTunnel) {
        // The 101 went out from inside the parse: what follows is already tunnel data.
        if (!pending_input_.empty()) context_->Schedule(this);
        return;
      }
      parser_paused_ = true;
      return;
    case Http1Parser::Outcome::kError:
      if (stream_open_) {
        ResetStreamFromClient(StreamResetReason::kProtocolError);
        if (response_started_) {
          Close(false);
          return;
        }
      }
      LOG_INFO("downstream %s: %d %s", info_->client.ToString(), r.status, r.reason);
      RespondWithError(r.status, r.reason);
      return;
  }
}

void Http1ServerCodec::OnHead() {
  RequestHeadPtr head = parser_->TakeRequest();
  stream_open_ = true;
  request_complete_ = false;
  response_started_ = false;
  response_complete_ = false;
  continue_sent_ = false;
  tunnel_request_ended_ = false;
  upgrade_refused_ = false;
  framing_ = Framing::kNone;
  body_remaining_ = 0;
  request_version_ = head->version;
  head_request_ = head->method == HttpMethod::kHead;
  expect_continue_ = head->expect_continue;
  upgrade_requested_ = head->upgrade;
  request_has_body_ = head->has_body();
  ++requests_;
  close_after_response_ = !head->keep_alive || draining_ || eof_seen_ ||
                          (max_requests_ != 0 && requests_ >= max_requests_);
  handler_ = factory_->NewStream(this);
  ServerStreamHandler* handler = handler_.get();
  handler->OnRequestHead(std::move(head));  // may finish or reset the stream
  if (closed_) parser_->Stop();
}

void Http1ServerCodec::OnBody(std::string_view data) {
  if (closed_) {
    parser_->Stop();
    return;
  }
  if (handler_) handler_->OnRequestBody(data);
}

void Http1ServerCodec::OnMessageComplete() {
  if (closed_) {
    parser_->Stop();
    return;
  }
  request_complete_ = true;
  // An upgrade request ends with its head; what the client sends next belongs to the tunnel
  // (after a 101) or to the next request (after a refusal).
  if (upgrade_requested_) return;
  if (handler_) handler_->OnRequestEnd();
  MaybeFinishStream();
}

void Http1ServerCodec::OnEof() {
  if (closed_) return;
  eof_seen_ = true;
  if (framing_ == Framing::kTunnel) {
    if (!tunnel_request_ended_) {
      tunnel_request_ended_ = true;
      if (handler_) handler_->OnRequestEnd();
      MaybeFinishStream();
    }
    return;
  }
  if (stream_open_) {
    if (!request_complete_) {
      // The client went away in the middle of its request.
      ResetStreamFromClient(StreamResetReason::kDownstreamClosed);
      Close(false);
      return;
    }
    // A half-close after a complete request: answer it (and anything pipelined), then close.
    return;
  }
  if (parser_paused_ || !pending_input_.empty()) return;  // the deferred resume decides
  Close(true);
}

void Http1ServerCodec::OnTransportError() {
  if (closed_) return;
  ResetStreamFromClient(StreamResetReason::kDownstreamClosed);
  Close(false);
}

void Http1ServerCodec::OnTransportDrained() {
  if (handler_ && !closed_) handler_->OnDownstreamDrained();
}

void Http1ServerCodec::OnHeadTimeout() {
  if (closed_ || stream_open_) return;
  LOG_INFO("downstream %s: 408 request head not received in time", info_->client.ToString());
  RespondWithError(408, "request head not received in time");
}

void Http1ServerCodec::OnIdleTimeout() {
  if (closed_ || stream_open_) return;
  Close(true);
}

void Http1ServerCodec::Drain() {
  draining_ = true;
  if (closed_) return;
  if (stream_open_ || parser_paused_) {
    close_after_response_ = true;
    return;
  }
  // A head on its way is answered (with Connection: close) once it is complete; the head
  // timeout and the drain timeout bound how long that may take.
  if (parser_ && parser_->in_head()) return;
  Close(true);
}

void Http1ServerCodec::RunDeferred() {
  if (closed_) return;
  if (framing_ == Framing::kTunnel) {
    // Bytes the client sent after its upgrade request, before the 101 went out.
    std::string input;
    input.swap(pending_input_);
    if (handler_ && !input.empty()) handler_->OnRequestBody(input);
    if (reading_paused_for_input_) {
      reading_paused_for_input_ = false;
      transport_->ResumeReading();
    }
    return;
  }
  if (stream_open_ || !parser_paused_) return;
  if (upgrade_refused_) {
    parser().ResumeAfterRefusedUpgrade();
    upgrade_refused_ = false;
  } else {
    parser().ResumeAfterMessage();
  }
  parser_paused_ = false;
  if (reading_paused_for_input_) {
    reading_paused_for_input_ = false;
    transport_->ResumeReading();
  }
  std::string input;
  input.swap(pending_input_);
  if (!input.empty()) {
    Consume(input.data(), input.size());
  } else {
    ReleaseParserIfIdle();
  }
  if (!closed_ && eof_seen_ && !stream_open_ && !parser_paused_) {
    Close(true);  // the client is done sending and every complete request was answered
    return;
  }
  Notify();
}

// --- Output ------------------------------------------------------------------------------

void Http1ServerCodec::SendContinue() {
  if (!stream_open_ || closed_ || !expect_continue_ || continue_sent_ || response_started_ ||
      request_complete_) {
    return;
  }
  continue_sent_ = true;
  transport_->Write("HTTP/1.1 100 Continue\r\n\r\n");
}

void Http1ServerCodec::SendResponseHead(ResponseHead& head, bool end_stream) {
  if (!stream_open_ || closed_ || response_started_) return;
  response_started_ = true;
  std::string& out = context_->scratch();
  out.clear();

  if (head.status == 101) {
    if (!upgrade_requested_) {
      Reset();
      return;
    }
    AppendStatusLine(&out, 101, head.reason);
    AppendFields(&out, head.headers);
    AppendLiteral(&out, "Connection: upgrade\r\n\r\n");
    transport_->Write(out);
    framing_ = Framing::kTunnel;
    parser_paused_ = false;
    if (!pending_input_.empty()) context_->Schedule(this);
    if (eof_seen_ && !tunnel_request_ended_) {
      tunnel_request_ended_ = true;
      if (handler_) handler_->OnRequestEnd();
    }
    return;
  }

  if (upgrade_requested_) {
    upgrade_refused_ = true;  // an ordinary response: the connection stays HTTP/1.1
    upgrade_requested_ = false;
  }
  // Answering before the request body arrived: the connection cannot be trusted to be at a
  // message boundary afterwards.
  if (!request_complete_ && request_has_body_) close_after_response_ = true;
  bool no_body = head_request_ || head.status < 200 || head.status == 204 || head.status == 304;

  AppendStatusLine(&out, head.status, head.reason);
  AppendFields(&out, head.headers);
  if (no_body) {
    framing_ = Framing::kNone;
  } else if (head.framing == BodyFraming::kContentLength) {
    framing_ = Framing::kLength;
    body_remaining_ = head.content_length;
    AppendLiteral(&out, "Content-Length: ");
    AppendDecimal(&out, head.content_length);
    AppendLiteral(&out, "\r\n");
  } else if (request_version_ == HttpVersion::kHttp11) {
    framing_ = Framing::kChunked;
    AppendLiteral(&out, "Transfer-Encoding: chunked\r\n");
  } else {
    framing_ = Framing::kClose;  // an HTTP/1.0 client learns the end from the close
    close_after_response_ = true;
  }
  if (close_after_response_) {
    AppendLiteral(&out, "Connection: close\r\n");
  } else if (request_version_ == HttpVersion::kHttp10) {
    AppendLiteral(&out, "Connection: keep-alive\r\n");
  }
  AppendLiteral(&out, "\r\n");
  if (end_stream) {
    if (framing_ == Framing::kChunked) out.append(kLastChunk);
    if (framing_ == Framing::kLength && body_remaining_ != 0) {
      transport_->Write(out);
      Reset();  // promised a body that will not come
      return;
    }
  }
  transport_->Write(out);
  if (end_stream) {
    response_complete_ = true;
    MaybeFinishStream();
  }
}

void Http1ServerCodec::SendResponseTrailers(const HeaderMap& trailers) {
  if (!stream_open_ || closed_ || !response_started_ || response_complete_) return;
  if (framing_ != Framing::kChunked) {
    SendResponseBody({}, true);  // nowhere to put them
    return;
  }
  std::string& out = context_->scratch();
  out.assign("0\r\n");
  for (size_t i = 0; i < trailers.size(); ++i) {
    if (!AllowedInTrailers(trailers.kind(i))) continue;
    AppendField(&out, trailers.name(i), trailers.value(i));
  }
  AppendLiteral(&out, "\r\n");
  transport_->Write(out);
  response_complete_ = true;
  MaybeFinishStream();
}

void Http1ServerCodec::SendResponseBody(std::string_view data, bool end_stream) {
  if (!stream_open_ || closed_ || !response_started_ || response_complete_) return;
  switch (framing_) {
    case Framing::kTunnel:
      if (!data.empty()) transport_->Write(data);
      if (end_stream) {
        transport_->ShutdownWrite();
        response_complete_ = true;
        MaybeFinishStream();
      }
      return;
    case Framing::kNone:
      break;  // HEAD, 204, 304: a body would corrupt the connection
    case Framing::kLength:
      if (data.size() > body_remaining_) {
        Reset();  // more than promised: never let the excess reach the client
        return;
      }
      if (!data.empty()) transport_->Write(data);
      body_remaining_ -= data.size();
      if (end_stream && body_remaining_ != 0) {
        Reset();
        return;
      }
      break;
    case Framing::kChunked:
      if (!data.empty()) {
        char header[24];
        size_t n = FormatChunkHeader(header, data.size());
        transport_->Write({header, n}, data, end_stream ? "\r\n0\r\n\r\n" : "\r\n");
      } else if (end_stream) {
        transport_->Write(kLastChunk);
      }
      break;
    case Framing::kClose:
      if (!data.empty()) transport_->Write(data);
      break;
  }
  if (end_stream) {
    response_complete_ = true;
    MaybeFinishStream();
  }
}

void Http1ServerCodec::Reset() {
  if (!stream_open_ || closed_) return;
  stream_open_ = false;
  if (handler_) context_->DeleteLater(std::move(handler_));
  Close(false);
}

void Http1ServerCodec::CloseAfterResponse() {
  if (!stream_open_ || closed_ || response_started_) return;
  close_after_response_ = true;
}

void Http1ServerCodec::PauseRequestBody() {
  if (!closed_) transport_->PauseReading();
}

void Http1ServerCodec::ResumeRequestBody() {
  if (!closed_ && !reading_paused_for_input_) transport_->ResumeReading();
}

bool Http1ServerCodec::OutputFull() const { return transport_->QueuedBytes() > kOutputHighWater; }

// --- Stream and connection ends ----------------------------------------------------------

void Http1ServerCodec::MaybeFinishStream() {
  if (!stream_open_ || closed_ || !response_complete_) return;
  bool request_done = framing_ == Framing::kTunnel ? tunnel_request_ended_
                                                   : (request_complete_ || upgrade_refused_);
  // Answered before the request ended: the rest of it is not read; the connection closes.
  bool abandon_request = framing_ != Framing::kTunnel && close_after_response_;
  if (request_done || abandon_request) FinishStream();
}

void Http1ServerCodec::FinishStream() {
  stream_open_ = false;
  if (handler_) context_->DeleteLater(std::move(handler_));
  if (framing_ == Framing::kTunnel || close_after_response_ ||
      (upgrade_refused_ && !request_complete_)) {
    Close(true);
    return;
  }
  framing_ = Framing::kNone;
  // Parse what was pipelined behind this request, after the current callbacks unwind.
  context_->Schedule(this);
  Notify();
}

void Http1ServerCodec::ResetStreamFromClient(StreamResetReason reason) {
  if (!stream_open_) return;
  stream_open_ = false;
  if (handler_) {
    std::unique_ptr<ServerStreamHandler> handler = std::move(handler_);
    handler->OnStreamReset(reason);
    context_->DeleteLater(std::move(handler));
  }
}

void Http1ServerCodec::RespondWithError(int status, const char* reason) {
  std::string body = absl::StrFormat("%d %s: %s\n", status, ReasonPhrase(status), reason);
  std::string& out = context_->scratch();
  out.clear();
  AppendStatusLine(&out, status, {});
  AppendLiteral(&out, "Content-Type: text/plain\r\nContent-Length: ");
  AppendDecimal(&out, body.size());
  AppendLiteral(&out, "\r\nConnection: close\r\n\r\n");
  out.append(body);
  transport_->Write(out);
  Close(true);
}

void Http1ServerCodec::Close(bool graceful) {
  if (closed_) return;
  closed_ = true;
  if (parser_) parser_->Stop();
  CancelDeferred();
  if (graceful) {
    transport_->CloseAfterWrites();
  } else {
    transport_->Abort();
  }
  Notify();
}

}  // namespace sluice
