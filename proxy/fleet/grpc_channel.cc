#include "proxy/fleet/grpc_channel.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/strings.h"

namespace sluice {
namespace {

// What the server may send before this side took it: watch bursts of a big fleet come fast.
constexpr uint32_t kStreamWindow = 4 * 1024 * 1024;
constexpr int32_t kConnectionWindow = 16 * 1024 * 1024;
// nghttp2's output waits in nghttp2 beyond this much in the socket's queue.
constexpr size_t kOutputHighWater = 256 * 1024;

nghttp2_nv HeaderField(std::string_view name, std::string_view value) {
  nghttp2_nv nv;
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.namelen = name.size();
  nv.valuelen = value.size();
  nv.flags = NGHTTP2_NV_FLAG_NONE;
  return nv;
}

}  // namespace

// nghttp2's callbacks, with access to the channel.
struct GrpcChannelCallbacks {
  static GrpcStream* StreamOf(nghttp2_session* session, int32_t id) {
    return static_cast<GrpcStream*>(nghttp2_session_get_stream_user_data(session, id));
  }

  static int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void*) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    GrpcStream* stream = StreamOf(session, frame->hd.stream_id);
    if (!stream) return 0;
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      int status = 0;
      for (char c : v) status = status * 10 + (c - '0');  // nghttp2 checked: three digits
      stream->http_status = status;
    } else if (n == "content-type") {
      stream->grpc_content = StartsWithIgnoreCase(v, "application/grpc");
    } else if (n == "grpc-status") {
      stream->grpc_status = std::string(v);
    } else if (n == "grpc-message") {
      stream->grpc_message = std::string(v.substr(0, 1024));
    }
    return 0;
  }

  static int OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    auto* channel = static_cast<GrpcChannel*>(user);
    if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0 &&
        !channel->ready_) {
      channel->ready_ = true;
      channel->connect_timeout_.Disarm();
    }
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      // etcd is stopping (or this connection served its time): new streams would be refused
      // while the old ones finish. Given up once this read is done, so that the owner moves
      // on now.
      channel->goaway_ = true;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
      GrpcStream* stream = StreamOf(session, frame->hd.stream_id);
      if (stream && (stream->http_status != 200 || !stream->grpc_content)) {
        // An HTTP/2 server but no gRPC behind it (a proxy without the route).
        channel->not_grpc_ = true;
      }
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      // The server's side ended (its trailers): so does the stream, though this side never
      // half-closes. The reset closes it in nghttp2 too (as gRPC servers do).
      GrpcStream* stream = StreamOf(session, frame->hd.stream_id);
      // Not when the answer is not gRPC: the owner hears of the refusal first (once the read
      // is done), then the streams end.
      if (stream && stream->handler && !channel->not_grpc_) {
        channel->EndStream(stream, channel->EndStatus(stream, NGHTTP2_NO_ERROR));
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
      }
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                         size_t len, void* user) {
    auto* channel = static_cast<GrpcChannel*>(user);
    GrpcStream* stream = StreamOf(session, id);
    if (!stream || !stream->handler) return 0;
    absl::Status s = stream->reader.Feed(std::string_view(reinterpret_cast<const char*>(data), len),
                                         [stream](std::string_view message) {
                                           // A handler may close the stream (or abandon the
                                           // channel) from a message.
                                           if (stream->handler)
                                             stream->handler->OnGrpcMessage(stream, message);
                                         });
    if (!s.ok() && stream->handler) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      channel->EndStream(stream, s);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session* session, int32_t id, uint32_t error_code, void* user) {
    auto* channel = static_cast<GrpcChannel*>(user);
    GrpcStream* stream = StreamOf(session, id);
    if (!stream) return 0;
    nghttp2_session_set_stream_user_data(session, id, nullptr);
    channel->StreamClosed(stream, error_code);
    return 0;
  }

  static ssize_t ReadOut(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t*,
                         nghttp2_data_source* source, void*) {
    auto* stream = static_cast<GrpcStream*>(source->ptr);
    size_t n = std::min(length, stream->out.size() - stream->out_taken);
    if (n == 0) {
      // The stream stays open for the next message (Send resumes it).
      stream->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    std::memcpy(buf, stream->out.data() + stream->out_taken, n);
    stream->out_taken += n;
    if (stream->out_taken == stream->out.size()) {
      stream->out.clear();
      stream->out_taken = 0;
    }
    return static_cast<ssize_t>(n);
  }
};

GrpcChannel* GrpcChannel::Create(LoopContext* context, GrpcChannelOptions options, Owner* owner) {
  return new GrpcChannel(context, std::move(options), owner);
}

GrpcChannel::GrpcChannel(LoopContext* context, GrpcChannelOptions options, Owner* owner)
    : context_(context),
      options_(std::move(options)),
      owner_(owner),
      stream_(context, this),
      connect_timeout_(this),
      last_read_(absl::Now()) {
  stream_.Init();  // always succeeds; from here on Close() ends in OnStreamClosed
  nghttp2_session_callbacks* callbacks;
  nghttp2_session_callbacks_new(&callbacks);
  using C = GrpcChannelCallbacks;
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &C::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &C::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &C::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &C::OnStreamClose);
  nghttp2_session_client_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  // From now: a name's resolution counts too.
  connect_timeout_.Arm(context_->Timeouts(options_.connect_timeout));
}

GrpcChannel::~GrpcChannel() {
  CancelDeferred();
  if (session_) nghttp2_session_del(session_);
}

void GrpcChannel::Connect(const SocketAddress& address) {
  if (down_) return;
  Count(&ControlHttpCounters::connections, 1);
  if (options_.tls) {
    SSL* ssl = NewClientSsl(options_.tls.get(), options_.server_name);
    if (!ssl) {
      FailLater(absl::UnavailableError("out of memory for TLS"));
      return;
    }
    if (options_.tls_session) options_.tls_session->Attach(ssl);
    static const unsigned char kAlpn[] = "\x02h2";
    SSL_set_alpn_protos(ssl, kAlpn, sizeof(kAlpn) - 1);
    stream_.StartTls(ssl);  // OnStreamConnected once the handshake is done
  }
  if (int rc = stream_.Connect(address.sockaddr_ptr()); rc != 0) {
    FailLater(absl::UnavailableError(absl::StrFormat("cannot connect: %s", uv_strerror(rc))));
  }
}

GrpcStream* GrpcChannel::OpenStream(std::string_view path, const Metadata& metadata,
                                    StreamHandler* handler) {
  if (down_) return nullptr;
  auto owned = std::make_unique<GrpcStream>();
  GrpcStream* stream = owned.get();
  stream->channel = this;
  stream->handler = handler;
  stream->path = std::string(path);
  stream->metadata = metadata;
  streams_.push_back(std::move(owned));
  Submit(stream);
  return stream;
}

void GrpcChannel::Submit(GrpcStream* stream) {
  const char* scheme = options_.tls ? "https" : "http";
  std::vector<nghttp2_nv> fields = {
      HeaderField(":method", "POST"),
      HeaderField(":scheme", scheme),
      HeaderField(":path", stream->path),
      HeaderField(":authority", options_.authority),
      HeaderField("content-type", "application/grpc"),
      HeaderField("te", "trailers"),
      HeaderField("user-agent", "sluice"),
  };
  for (const auto& [name, value] : stream->metadata) fields.push_back(HeaderField(name, value));
  nghttp2_data_provider provider;
  provider.source.ptr = stream;
  provider.read_callback = &GrpcChannelCallbacks::ReadOut;
  int32_t id =
      nghttp2_submit_request(session_, nullptr, fields.data(), fields.size(), &provider, stream);
  if (id < 0) {
    // Out of stream IDs or memory: this connection has served its time.
    FailLater(
        absl::UnavailableError(absl::StrFormat("cannot open a stream: %s", nghttp2_strerror(id))));
    return;
  }
  stream->id = id;
  Count(&ControlHttpCounters::requests, 1);
  ScheduleSend();
}

void GrpcChannel::Send(GrpcStream* stream, std::string_view message) {
  if (down_ || !stream->handler || stream->id < 0) return;
  stream->out.append(GrpcFrame(message));
  if (stream->deferred) {
    stream->deferred = false;
    nghttp2_session_resume_data(session_, stream->id);
  }
  ScheduleSend();
}

void GrpcChannel::CloseStream(GrpcStream* stream) {
  stream->handler = nullptr;
  if (down_) return;  // the session goes with the connection
  if (stream->id >= 0) {
    // Open in nghttp2, or still queued there (its HEADERS not sent: nghttp2 then drops it):
    // either way nghttp2 closes it and holds the pointer until then.
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_CANCEL);
    ScheduleSend();  // freed when nghttp2 closes it
    return;
  }
  StreamClosed(stream, NGHTTP2_CANCEL);  // never given to nghttp2
}

void GrpcChannel::EndStream(GrpcStream* stream, const absl::Status& status) {
  StreamHandler* handler = stream->handler;
  stream->handler = nullptr;
  if (handler && !abandoned_) handler->OnGrpcEnd(stream, status);
}

absl::Status GrpcChannel::EndStatus(const GrpcStream* stream, uint32_t error_code) {
  if (error_code != NGHTTP2_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrFormat("etcd: the stream was reset (%s)", nghttp2_http2_strerror(error_code)));
  }
  if (stream->http_status != 200) {
    return absl::UnavailableError(absl::StrFormat("etcd: HTTP status %d", stream->http_status));
  }
  if (!stream->grpc_content) return absl::UnavailableError("etcd: the answer is not gRPC");
  if (stream->grpc_status.empty()) {
    return absl::UnavailableError("etcd: the stream ended without a gRPC status");
  }
  if (stream->reader.partial()) {
    return absl::InternalError("etcd gRPC: the stream ended inside a message");
  }
  return EtcdGrpcStatus(stream->grpc_status, stream->grpc_message);
}

void GrpcChannel::StreamClosed(GrpcStream* stream, uint32_t error_code) {
  if (stream->handler) EndStream(stream, EndStatus(stream, error_code));
  auto it = std::find_if(streams_.begin(), streams_.end(),
                         [stream](const auto& s) { return s.get() == stream; });
  if (it != streams_.end()) streams_.erase(it);
}

void GrpcChannel::ScheduleSend() {
  if (!down_ && failure_.ok()) context_->ScheduleLate(this);
}

void GrpcChannel::FailLater(absl::Status status) {
  if (failure_.ok()) failure_ = std::move(status);
  context_->Schedule(this);
}

void GrpcChannel::RunDeferred() {
  if (!failure_.ok()) {
    Fail(failure_);
    return;
  }
  if (down_ || !connected_) return;
  while (stream_.queued_bytes() < kOutputHighWater) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      Fail(absl::UnavailableError(
          absl::StrFormat("etcd: HTTP/2: %s", nghttp2_strerror(static_cast<int>(n)))));
      return;
    }
    if (n == 0) break;
    Count(&ControlHttpCounters::tx_bytes, static_cast<uint64_t>(n));
    stream_.Write(std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
  }
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
    Fail(absl::UnavailableError("etcd closed the connection (GOAWAY)"));
  }
}

void GrpcChannel::OnStreamConnected() {
  if (down_) return;
  if (stream_.ssl()) {
    if (!handshake_counted_) {
      handshake_counted_ = true;
      Count(SSL_session_reused(stream_.ssl()) == 1 ? &ControlHttpCounters::tls_resumed
                                                   : &ControlHttpCounters::tls_handshakes,
            1);
    }
    if (stream_.alpn() != "h2") {
      Down(absl::UnavailableError("etcd did not agree to HTTP/2 (ALPN)"), /*refused=*/true);
      return;
    }
  }
  connected_ = true;
  int fd = stream_.fd();
  int on = 1;
  auto user_timeout = static_cast<unsigned>(absl::ToInt64Milliseconds(options_.user_timeout));
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
  if (stream_.StartReading() != 0) {
    Fail(absl::UnavailableError("cannot read from the socket"));
    return;
  }
  ScheduleSend();
}

void GrpcChannel::OnStreamRead(const char* data, size_t len) {
  if (down_) return;
  last_read_ = absl::Now();
  Count(&ControlHttpCounters::rx_bytes, len);
  if (first_read_) {
    first_read_ = false;
    if (len >= 7 && std::memcmp(data, "HTTP/1.", 7) == 0) {
      Down(absl::UnavailableError("etcd answered HTTP/2 with HTTP/1.1 (no gRPC there)"),
           /*refused=*/true);
      return;
    }
  }
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len);
  if (down_) return;
  if (not_grpc_) {
    Down(absl::UnavailableError("etcd answered a gRPC call with something else (no gRPC there)"),
         /*refused=*/true);
    return;
  }
  if (goaway_) {
    Fail(absl::UnavailableError("etcd is closing the connection (GOAWAY)"));
    return;
  }
  if (rv < 0) {
    Down(absl::UnavailableError(
             absl::StrFormat("etcd: HTTP/2: %s", nghttp2_strerror(static_cast<int>(rv)))),
         /*refused=*/!ready_);
    return;
  }
  ScheduleSend();
}

void GrpcChannel::OnStreamEof() { Fail(absl::UnavailableError("etcd closed the connection")); }

void GrpcChannel::OnStreamError(int error) {
  std::string why = stream_.tls_error().empty() ? uv_strerror(error) : stream_.tls_error();
  if (why.find("no application protocol") != std::string::npos) {
    // A TLS server that refused h2 by ALPN with an alert (Go's does).
    Down(absl::UnavailableError("etcd did not agree to HTTP/2 (ALPN): " + why), /*refused=*/true);
    return;
  }
  Fail(absl::UnavailableError(
      absl::StrFormat("%s: %s", connected_ ? "connection to etcd" : "cannot connect", why)));
}

void GrpcChannel::OnStreamDrained() { ScheduleSend(); }

void GrpcChannel::OnTimeout(Timeout*) {
  if (down_ || ready_) return;
  Fail(absl::UnavailableError(absl::StrFormat("etcd: no HTTP/2 connection within %s",
                                              absl::FormatDuration(options_.connect_timeout))));
}

void GrpcChannel::Fail(const absl::Status& status) { Down(status, /*refused=*/false); }

void GrpcChannel::Retire(absl::Status status) { FailLater(std::move(status)); }

void GrpcChannel::Down(const absl::Status& why, bool refused) {
  if (down_) return;
  down_ = true;
  connect_timeout_.Disarm();
  CancelDeferred();
  absl::Status status = why;
  if (!options_.name.empty()) {
    status = absl::Status(why.code(), absl::StrFormat("%s: %s", options_.name, why.message()));
  }
  if (!abandoned_) owner_->OnGrpcChannelDown(this, status, refused);
  // The streams end after the owner stopped using the channel; a handler may close others.
  for (size_t i = 0; i < streams_.size(); ++i) EndStream(streams_[i].get(), status);
  if (!stream_.closing()) stream_.Close();
}

void GrpcChannel::Abandon() {
  abandoned_ = true;
  for (auto& stream : streams_) stream->handler = nullptr;
  if (down_) return;
  down_ = true;
  connect_timeout_.Disarm();
  CancelDeferred();
  if (!stream_.closing()) stream_.Close();
}

void GrpcChannel::OnStreamClosed() { delete this; }

}  // namespace sluice
