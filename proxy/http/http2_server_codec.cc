#include "proxy/http/http2_server_codec.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/strings.h"
#include "proxy/http/http1_serializer.h"
#include "proxy/http/http2_fields.h"

namespace sluice {
namespace {

constexpr int64_t kAbuseWindowNs = 10'000'000'000;  // 10 s

}  // namespace

// One stream: the request as it arrives, the handler serving it, and the response bytes that
// wait for the client's window.
class Http2ServerCodec::Stream final : public ServerStream, public Deletable {
 public:
  Stream(Http2ServerCodec* codec, int32_t id)
      : codec_(codec), id_(id), head_(MakeRequestHead()), out_(codec->context_) {
    head_->version = HttpVersion::kHttp2;
  }
  ~Stream() override { handler_.reset(); }

  // --- ServerStream ---
  void SendContinue() override {
    if (!open() || response_started_ || continue_sent_ || !expect_continue_) return;
    continue_sent_ = true;
    nghttp2_nv nv = Http2Field(":status", "100");
    nghttp2_submit_headers(codec_->session_, NGHTTP2_FLAG_NONE, id_, nullptr, &nv, 1, nullptr);
    codec_->ScheduleSend();
  }

  void SendResponseHead(ResponseHead& head, bool end_stream) override {
    if (!open() || response_started_) return;
    response_started_ = true;
    char status[4];
    const int code = head.status >= 100 && head.status <= 999 ? head.status : 500;
    status[0] = static_cast<char>('0' + code / 100);
    status[1] = static_cast<char>('0' + code / 10 % 10);
    status[2] = static_cast<char>('0' + code % 10);
    // Field names go out in lower case (RFC 9113 section 8.2.2); nghttp2 copies what it is
    // given, so the names can live in a scratch buffer until the call returns.
    std::string& names = codec_->names_;
    names.clear();
    size_t need = 0;
    for (size_t i = 0; i < head.headers.size(); ++i) need += head.headers.name(i).size();
    names.reserve(need + 32);
    std::vector<nghttp2_nv>& nva = codec_->nva_;
    nva.clear();
    nva.push_back(Http2Field(":status", std::string_view(status, 3)));
    for (size_t i = 0; i < head.headers.size(); ++i) {
      std::string_view name = head.headers.name(i);
      size_t start = names.size();
      for (char c : name) names.push_back(AsciiToLower(c));
      nva.push_back(
          Http2Field(std::string_view(names.data() + start, name.size()), head.headers.value(i)));
    }
    char length[24];
    if (head.framing == BodyFraming::kContentLength) {
      size_t n = 0;
      uint64_t value = head.content_length;
      do {
        length[sizeof(length) - 1 - n++] = static_cast<char>('0' + value % 10);
        value /= 10;
      } while (value != 0);
      nva.push_back(Http2Field("content-length", std::string_view(length + sizeof(length) - n, n)));
    }
    nghttp2_data_provider provider;
    provider.source.ptr = this;
    provider.read_callback = &Stream::ReadBody;
    if (end_stream) out_.End();
    int rv = nghttp2_submit_response(codec_->session_, id_, nva.data(), nva.size(),
                                     end_stream ? nullptr : &provider);
    if (rv != 0) {
      LOG_DEBUG("http2 stream %d: %s", id_, nghttp2_strerror(rv));
      Reset();
      return;
    }
    if (end_stream) response_complete_ = true;
    codec_->ScheduleSend();
  }

  void SendResponseBody(std::string_view data, bool end_stream) override {
    if (!open() || !response_started_ || out_.ended()) return;
    out_.Append(data);
    codec_->pending_bytes_ += data.size();
    if (end_stream) {
      out_.End();
      response_complete_ = true;
    }
    out_.Resume(codec_->session_, id_);
    codec_->ScheduleSend();
  }

  void SendResponseTrailers(const HeaderMap& trailers) override {
    if (!open() || !response_started_ || out_.ended()) return;
    for (size_t i = 0; i < trailers.size(); ++i) {
      if (!AllowedInTrailers(trailers.kind(i))) continue;
      std::string name(trailers.name(i));
      for (char& c : name) c = AsciiToLower(c);
      trailers_.emplace_back(std::move(name), std::string(trailers.value(i)));
    }
    has_trailers_ = !trailers_.empty();
    SendResponseBody({}, true);
  }

  void Reset() override {
    if (!open()) return;
    handler_reset_ = true;
    nghttp2_submit_rst_stream(codec_->session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
    codec_->ScheduleSend();
  }

  void CloseAfterResponse() override {}  // a stream error never poisons the connection

  void PauseRequestBody() override { paused_ = true; }
  void ResumeRequestBody() override {
    if (!paused_) return;
    paused_ = false;
    if (unconsumed_ > 0 && open()) {
      nghttp2_session_consume(codec_->session_, id_, unconsumed_);
      unconsumed_ = 0;
      codec_->ScheduleSend();
    }
  }

  bool OutputFull() const override {
    const bool full = out_.size() >= kOutputHighWater ||
                      codec_->pending_bytes_ >= kHttp2ConnectionOutputBudget ||
                      codec_->transport_->QueuedBytes() >= kOutputHighWater;
    if (full) waiting_for_socket_ = true;  // told to stop: OnDownstreamDrained will follow
    return full;
  }
  bool response_started() const override { return response_started_; }
  const DownstreamInfo& downstream() const override { return *codec_->info_; }

  // --- From the codec ---
  bool open() const { return !closed_; }

  // nghttp2 asks for the next DATA frame's payload.
  static ssize_t ReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void*) {
    auto* self = static_cast<Stream*>(source->ptr);
    const bool was_full = self->out_.size() >= kOutputHighWater;
    ssize_t n = self->out_.Read(buf, length, data_flags);
    if (n > 0) self->codec_->TookPending(static_cast<size_t>(n));
    if (*data_flags & NGHTTP2_DATA_FLAG_EOF) {
      if (self->has_trailers_) {
        // The trailers carry END_STREAM instead of this DATA frame.
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv> nva;
        for (const auto& [name, value] : self->trailers_) nva.push_back(Http2Field(name, value));
        nghttp2_submit_trailer(self->codec_->session_, self->id_, nva.data(), nva.size());
        self->has_trailers_ = false;
      }
    }
    if (was_full && self->out_.size() < kOutputHighWater) self->codec_->drained_.push_back(self);
    return n;
  }

  Http2ServerCodec* codec_;
  int32_t id_;
  RequestHeadPtr head_;  // being received; moved to the handler with OnRequestHead
  std::unique_ptr<ServerStreamHandler> handler_;
  PendingBody out_;      // response body bytes not yet framed
  std::string cookies_;  // RFC 9113 section 8.2.3: joined into one field for HTTP/1.1
  std::vector<std::pair<std::string, std::string>> trailers_;  // to send after the body
  bool has_trailers_ = false;
  uint64_t head_bytes_ = 0;  // RFC 7541 sizes: name + value + 32 per field
  uint64_t body_received_ = 0;
  size_t unconsumed_ = 0;  // DATA bytes received while paused: acknowledged on resume
  std::string_view method_, path_, authority_;  // pseudo-header values, in head_ storage
  int error_status_ = 0;                        // answer this instead of serving the request
  const char* error_reason_ = "";
  bool has_method_ = false;
  bool has_path_ = false;
  bool head_delivered_ = false;
  bool request_ended_ = false;
  bool expect_continue_ = false;
  bool continue_sent_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;  // the handler ended the response
  bool paused_ = false;
  bool handler_reset_ = false;               // the handler reset it: no OnStreamReset back
  mutable bool waiting_for_socket_ = false;  // OutputFull() said yes since the last drain
  bool peer_reset_ = false;                  // the client sent RST_STREAM
  bool closed_ = false;
};

// --- nghttp2 callbacks -------------------------------------------------------------------

struct Http2ServerCodec::Callbacks {
  static Http2ServerCodec* Codec(void* user_data) {
    return static_cast<Http2ServerCodec*>(user_data);
  }
  static Stream* StreamOf(nghttp2_session* session, int32_t id) {
    return static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, id));
  }

  static int OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    Http2ServerCodec* codec = Codec(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    if (codec->draining_ || codec->closed_) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    auto* stream = new Stream(codec, frame->hd.stream_id);
    codec->streams_.insert(stream);
    ++codec->open_streams_;
    ++codec->heads_pending_;
    ++codec->counters_.streams;
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, stream);
    // The stream is reading its head: the connection's head timer runs until it ends.
    codec->Notify();
    return 0;
  }

  static int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    Http2ServerCodec* codec = Codec(user);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* stream = StreamOf(session, frame->hd.stream_id);
    if (!stream || stream->head_delivered_) return 0;  // trailers: dropped
    if (stream->error_status_ != 0) return 0;
    const Http1Limits& limits = codec->options_.limits;
    stream->head_bytes_ += namelen + valuelen + 32;
    if (stream->head_bytes_ > limits.max_head_bytes ||
        stream->head_->headers.size() >= limits.max_headers) {
      stream->error_status_ = 431;
      stream->error_reason_ = "request header fields too large";
      return 0;
    }
    std::string_view n = Http2Bytes(name, namelen);
    std::string_view v = Http2Bytes(value, valuelen);
    RequestHead& head = *stream->head_;
    if (!n.empty() && n[0] == ':') {
      // nghttp2 has checked the pseudo-headers (known, once each, before the fields).
      if (n == ":method") {
        head.method_text.assign(v);
        stream->has_method_ = true;
      } else if (n == ":path") {
        if (v.size() > limits.max_target_bytes) {
          stream->error_status_ = 414;
          stream->error_reason_ = "request target too long";
          return 0;
        }
        head.target.assign(v);
        stream->has_path_ = true;
      } else if (n == ":authority") {
        head.authority.assign(v);
      }
      return 0;
    }
    if (n == "cookie") {
      if (!stream->cookies_.empty()) stream->cookies_.append("; ");
      stream->cookies_.append(v);
      return 0;
    }
    head.headers.Add(n, v);
    return 0;
  }

  static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    Http2ServerCodec* codec = Codec(user);
    switch (frame->hd.type) {
      case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) return 0;
        codec->CountControlFrame();
        // A client's keep-alive (a peer region's warm tunnel): the idle timeout starts again.
        if (codec->open_streams_ == 0) codec->Notify();
        return 0;
      case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) codec->CountControlFrame();
        return 0;
      case NGHTTP2_PRIORITY:
        codec->CountControlFrame();
        return 0;
      case NGHTTP2_RST_STREAM:
        if (Stream* stream = StreamOf(session, frame->hd.stream_id)) stream->peer_reset_ = true;
        return 0;
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        break;
      default:
        return 0;
    }
    Stream* stream = StreamOf(session, frame->hd.stream_id);
    if (!stream) return 0;
    const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS && !stream->head_delivered_ &&
        (frame->hd.flags & NGHTTP2_FLAG_END_HEADERS)) {
      codec->DeliverHead(stream, end_stream);
      return 0;
    }
    if (end_stream && stream->head_delivered_ && !stream->request_ended_) {
      stream->request_ended_ = true;
      if (stream->handler_) stream->handler_->OnRequestEnd();
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                         size_t len, void* user) {
    Http2ServerCodec* codec = Codec(user);
    Stream* stream = StreamOf(session, id);
    if (!stream || !stream->handler_ || stream->request_ended_) {
      nghttp2_session_consume(session, id, len);
      return 0;
    }
    stream->body_received_ += len;
    const uint64_t max_body = codec->options_.limits.max_body_bytes;
    if (max_body != 0 && stream->body_received_ > max_body) {
      nghttp2_session_consume(session, id, len);
      codec->DetachHandler(stream, StreamResetReason::kProtocolError);
      if (!stream->response_started_) {
        codec->RespondError(stream, 413, "request body too large");
      } else {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      }
      return 0;
    }
    if (stream->paused_) {
      stream->unconsumed_ += len;
    } else {
      nghttp2_session_consume(session, id, len);
    }
    stream->handler_->OnRequestBody(Http2Bytes(data, len));
    return 0;
  }

  static int OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void*) {
    if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      return 0;
    }
    // The response is out but the client is still sending: tell it to stop (RFC 9113
    // section 8.1), so the stream closes instead of waiting for a body nobody reads.
    Stream* stream = StreamOf(session, frame->hd.stream_id);
    if (stream && !stream->request_ended_) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session* session, int32_t id, uint32_t error_code, void* user) {
    Http2ServerCodec* codec = Codec(user);
    Stream* stream = StreamOf(session, id);
    if (!stream) return 0;
    nghttp2_session_set_stream_user_data(session, id, nullptr);
    codec->CloseStream(stream, error_code);
    return 0;
  }

  static int OnInvalidFrame(nghttp2_session*, const nghttp2_frame* frame, int lib_error,
                            void* user) {
    Http2ServerCodec* codec = Codec(user);
    LOG_DEBUG("downstream %s: http2 invalid frame type %d on stream %d: %s",
              codec->info_->client.ToString(), frame->hd.type, frame->hd.stream_id,
              nghttp2_strerror(lib_error));
    return 0;
  }
};

// --- The codec -----------------------------------------------------------------------------

Http2ServerCodec::Http2ServerCodec(LoopContext* context, CodecTransport* transport,
                                   StreamFactory* factory, CodecObserver* observer,
                                   const Options& options, const DownstreamInfo* info)
    : context_(context),
      transport_(transport),
      factory_(factory),
      observer_(observer),
      info_(info),
      options_(options) {
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &Callbacks::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Callbacks::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Callbacks::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Callbacks::OnDataChunk);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &Callbacks::OnFrameSend);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Callbacks::OnStreamClose);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks,
                                                               &Callbacks::OnInvalidFrame);
  nghttp2_option* option;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_max_continuations(option, options_.http2.max_continuations);
  // Bursts of client resets beyond this are a connection error (the library's own guard,
  // next to ours that counts only streams reset before their response).
  nghttp2_option_set_stream_reset_rate_limit(
      option, options_.http2.max_early_resets,
      std::max<uint64_t>(1, options_.http2.max_early_resets / 10));
  nghttp2_session_server_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);

  const Http2Settings& h2 = options_.http2;
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2.initial_stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options_.limits.max_head_bytes},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings,
                          sizeof(settings) / sizeof(settings[0]));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(h2.initial_connection_window));
  window_start_ns_ = context_->clock().MonotonicNanos();
  ScheduleSend();
}

Http2ServerCodec::~Http2ServerCodec() {
  CancelDeferred();
  closed_ = true;
  // Streams still open end for their handlers here; nghttp2 calls nothing back after this.
  std::vector<Stream*> open(streams_.begin(), streams_.end());
  for (Stream* stream : open) CloseStream(stream, NGHTTP2_CANCEL);
  nghttp2_session_del(session_);
}

void Http2ServerCodec::DeliverHead(Stream* stream, bool end_stream) {
  stream->head_delivered_ = true;
  if (--heads_pending_ == 0) Notify();
  stream->request_ended_ = end_stream;
  RequestHead& head = *stream->head_;
  if (stream->error_status_ != 0) {
    RespondError(stream, stream->error_status_, stream->error_reason_);
    return;
  }
  head.method = ClassifyMethod(head.method_text);
  if (head.method == HttpMethod::kConnect) {
    RespondError(stream, 501, "CONNECT is not supported");
    return;
  }
  if (!stream->cookies_.empty()) {
    head.headers.Add("cookie", stream->cookies_);
    std::string().swap(stream->cookies_);
  }
  if (!head.authority.empty()) {
    // :authority wins over Host (RFC 9113 section 8.3.1); HTTP/1.1 origins get it as Host.
    head.headers.RemoveIf([&](size_t i) { return head.headers.kind(i) == HeaderKind::kHost; });
    head.headers.Add("host", head.authority);
    head.authority.clear();  // filled again by request normalization
  }
  if (std::optional<std::string_view> length = head.headers.GetKind(HeaderKind::kContentLength)) {
    uint64_t value = 0;
    if (!ParseInteger(*length, &value)) {
      RespondError(stream, 400, "invalid content-length");
      return;
    }
    head.framing = BodyFraming::kContentLength;
    head.content_length = value;
    const uint64_t max_body = options_.limits.max_body_bytes;
    if (max_body != 0 && value > max_body) {
      RespondError(stream, 413, "request body too large");
      return;
    }
  } else {
    head.framing = end_stream ? BodyFraming::kNone : BodyFraming::kChunked;
  }
  if (!end_stream && head.framing != BodyFraming::kNone) {
    if (std::optional<std::string_view> expect = head.headers.GetKind(HeaderKind::kExpect)) {
      stream->expect_continue_ = EqualsIgnoreCase(*expect, "100-continue");
      head.expect_continue = stream->expect_continue_;
    }
  }
  head.keep_alive = true;
  stream->handler_ = factory_->NewStream(stream);
  stream->handler_->OnRequestHead(std::move(stream->head_));
  if (end_stream && stream->open() && stream->handler_ && !stream->handler_reset_) {
    stream->handler_->OnRequestEnd();
  }
}

void Http2ServerCodec::RespondError(Stream* stream, int status, const char* reason) {
  if (!stream->open() || stream->response_started_) return;
  std::string body = absl::StrFormat("%d %s: %s\n", status, ReasonPhrase(status), reason);
  ResponseHeadPtr head = MakeResponseHead();
  head->status = status;
  head->headers.Add("content-type", "text/plain");
  head->framing = BodyFraming::kContentLength;
  head->content_length = body.size();
  stream->SendResponseHead(*head, false);
  stream->SendResponseBody(body, true);
  LOG_INFO("downstream %s: http2 stream %d: %d %s", info_->client.ToString(), stream->id_, status,
           reason);
}

void Http2ServerCodec::DetachHandler(Stream* stream, StreamResetReason reason) {
  if (!stream->handler_) return;
  if (!stream->handler_reset_) stream->handler_->OnStreamReset(reason);
  stream->handler_reset_ = false;
  context_->DeleteLater(std::move(stream->handler_));
}

void Http2ServerCodec::CloseStream(Stream* stream, uint32_t error_code) {
  stream->closed_ = true;
  streams_.erase(stream);
  --open_streams_;
  TookPending(stream->out_.size());  // what it held is freed with it
  if (!stream->head_delivered_) --heads_pending_;
  if (stream->peer_reset_ && !stream->response_started_ && stream->head_delivered_) {
    CountEarlyReset();
  }
  if (!closed_) nghttp2_session_set_stream_user_data(session_, stream->id_, nullptr);
  if (stream->handler_ && !stream->handler_reset_ &&
      !(stream->response_complete_ && error_code == NGHTTP2_NO_ERROR && stream->out_.size() == 0)) {
    // The client (or the connection) ended it before the response was out.
    stream->handler_->OnStreamReset(StreamResetReason::kDownstreamClosed);
  }
  for (Stream*& s : drained_) {
    if (s == stream) s = nullptr;
  }
  context_->DeleteLater(std::unique_ptr<Deletable>(stream));
  if (open_streams_ == 0) Notify();
}

void Http2ServerCodec::OnData(const char* data, size_t len) {
  if (closed_) return;
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len);
  if (closed_) return;
  if (rv < 0) {
    LOG_INFO("downstream %s: http2: %s", info_->client.ToString(),
             nghttp2_strerror(static_cast<int>(rv)));
    if (close_reason_.empty()) close_reason_ = nghttp2_strerror(static_cast<int>(rv));
    // Tell the client why before closing (a no-op if nghttp2 queued a GOAWAY already).
    nghttp2_session_terminate_session(
        session_, rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
                      ? NGHTTP2_ENHANCE_YOUR_CALM
                      : NGHTTP2_PROTOCOL_ERROR);
    RunDeferred();
    Close(true);
    return;
  }
  ScheduleSend();
}

void Http2ServerCodec::RunDeferred() {
  if (closed_) return;
  while (transport_->QueuedBytes() < kOutputHighWater) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      LOG_INFO("downstream %s: http2: %s", info_->client.ToString(),
               nghttp2_strerror(static_cast<int>(n)));
      Close(false);
      return;
    }
    if (n == 0) break;
    transport_->Write(
        std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
  }
  // Streams that can take more response bytes now.
  if (budget_freed_) {
    budget_freed_ = false;
    WakeWaitingStreams();
  }
  std::vector<Stream*> drained;
  drained.swap(drained_);
  for (Stream* stream : drained) {
    if (stream && stream->open() && stream->handler_ && !stream->OutputFull()) {
      stream->handler_->OnDownstreamDrained();
    }
  }
  if (closed_) return;
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
    Close(true);  // after a GOAWAY both ways, or a finished drain
    return;
  }
  if (draining_ && open_streams_ == 0 && transport_->QueuedBytes() == 0 &&
      nghttp2_session_want_write(session_) == 0) {
    Close(true);
  }
}

void Http2ServerCodec::TookPending(size_t n) {
  const bool was_over = pending_bytes_ >= kHttp2ConnectionOutputBudget;
  pending_bytes_ -= std::min(n, pending_bytes_);
  // Below the connection's budget again: every stream told to wait may go on.
  if (was_over && pending_bytes_ < kHttp2ConnectionOutputBudget) budget_freed_ = true;
}

void Http2ServerCodec::WakeWaitingStreams() {
  std::vector<Stream*> waiting;
  for (Stream* stream : streams_) {
    if (stream->waiting_for_socket_) waiting.push_back(stream);
  }
  for (Stream* stream : waiting) {
    stream->waiting_for_socket_ = false;
    if (stream->open() && stream->handler_ && !stream->OutputFull()) {
      stream->handler_->OnDownstreamDrained();
    }
  }
}

void Http2ServerCodec::OnTransportDrained() {
  if (closed_) return;
  ScheduleSend();
  // The socket took everything: the streams that were told to wait may go on.
  WakeWaitingStreams();
}

void Http2ServerCodec::OnEof() {
  // The client will send nothing more: streams still waiting for request bytes cannot finish.
  Close(true);
}

void Http2ServerCodec::OnTransportError() { Close(false); }

void Http2ServerCodec::OnHeadTimeout() { Close(false); }

void Http2ServerCodec::OnIdleTimeout() {
  if (closed_) return;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  RunDeferred();
  Close(true);
}

void Http2ServerCodec::Drain() {
  if (closed_ || draining_) return;
  draining_ = true;
  // No new streams; those in progress finish. Then the connection closes (RunDeferred).
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  ScheduleSend();
  if (open_streams_ == 0) {
    RunDeferred();
    Close(true);
  }
}

CodecState Http2ServerCodec::state() const {
  if (closed_) return CodecState::kClosed;
  // A header block that has not ended is a head still being read, whatever else is active:
  // nothing else may arrive on the connection until it ends (RFC 9113 section 6.10).
  if (heads_pending_ > 0) return CodecState::kReadingHead;
  return open_streams_ == 0 ? CodecState::kIdle : CodecState::kActive;
}

bool Http2ServerCodec::WindowExpired(int64_t now) {
  if (now - window_start_ns_ < kAbuseWindowNs) return false;
  window_start_ns_ = now;
  window_resets_ = 0;
  window_control_ = 0;
  return true;
}

void Http2ServerCodec::CountControlFrame() {
  ++counters_.control_frames;
  WindowExpired(context_->clock().MonotonicNanos());
  if (++window_control_ > options_.http2.max_control_frames) {
    Shed(NGHTTP2_ENHANCE_YOUR_CALM, "too many PING/SETTINGS/PRIORITY frames");
  }
}

void Http2ServerCodec::CountEarlyReset() {
  ++counters_.early_resets;
  WindowExpired(context_->clock().MonotonicNanos());
  if (++window_resets_ > options_.http2.max_early_resets) {
    Shed(NGHTTP2_ENHANCE_YOUR_CALM, "too many streams reset before their response");
  }
}

void Http2ServerCodec::Shed(uint32_t error, const char* why) {
  if (closed_ || !close_reason_.empty()) return;
  close_reason_ = why;
  LOG_WARN("downstream %s: http2: %s; closing the connection", info_->client.ToString(), why);
  // Called from inside nghttp2's callbacks: the session only queues a GOAWAY and stops
  // reading here; the next send writes it and, with nothing left to do, closes (RunDeferred).
  nghttp2_session_terminate_session(session_, error);
  ScheduleSend();
}

void Http2ServerCodec::Close(bool graceful) {
  if (closed_) return;
  closed_ = true;
  CancelDeferred();
  std::vector<Stream*> open(streams_.begin(), streams_.end());
  for (Stream* stream : open) CloseStream(stream, NGHTTP2_CANCEL);
  if (graceful) {
    transport_->CloseAfterWrites();
  } else {
    transport_->Abort();
  }
  Notify();
}

void Http2ServerCodec::Notify() {
  if (observer_) observer_->OnCodecStateChanged();
}

}  // namespace sluice
