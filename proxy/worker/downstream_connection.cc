#include "proxy/worker/downstream_connection.h"

#include "common/log.h"
#include "proxy/forward/forwarder.h"
#include "proxy/http/http2_server_codec.h"
#include "proxy/net/proxy_protocol.h"
#include "proxy/worker/worker.h"

namespace sluice {
namespace {

// After a graceful close, how long the client may keep sending before the socket closes.
constexpr absl::Duration kLinger = absl::Seconds(2);
// How long a connection that has sent nothing yet may take to send its first request once the
// worker drains.
constexpr absl::Duration kDrainGrace = absl::Seconds(2);

}  // namespace

void DownstreamConnection::Accept(Worker* worker, int fd, const sockaddr* peer,
                                  const ListenerOptions& options) {
  auto* conn = new DownstreamConnection(worker, options);
  conn->stream_.Init();
  if (conn->stream_.Adopt(fd) != 0) {
    conn->phase_ = Phase::kClosed;
    conn->stream_.Close();  // frees conn from the close callback
    return;
  }
  uint32_t cap = worker->snapshot()->max_connections;
  if (cap != 0 && worker->connection_count() >= cap) {
    // Over the connection cap: closed at once, before any byte is read or written.
    worker->CountRefusedConnection();
    conn->phase_ = Phase::kClosed;
    conn->stream_.Close();
    return;
  }
  if (options.tls) {
    SSL* ssl = options.tls->NewSession();
    if (!ssl) {
      conn->phase_ = Phase::kClosed;
      conn->stream_.Close();
      return;
    }
    conn->stream_.StartTls(ssl);
    conn->tls_ = true;
    conn->info_.https = true;
  }
  conn->info_.client = SocketAddress::FromSockaddr(peer);
  conn->Start();
}

DownstreamConnection::DownstreamConnection(Worker* worker, const ListenerOptions& options)
    : worker_(worker),
      stream_(worker->context(), this),
      timeout_(this),
      phase_(options.proxy_protocol ? Phase::kProxyHeader : Phase::kHttp),
      http2_(options.http2) {}

DownstreamConnection::~DownstreamConnection() {
  // A stream still open is reset here; its forwarder releases what it holds upstream.
  codec_.reset();
}

LoopContext* DownstreamConnection::context() const { return worker_->context(); }

void DownstreamConnection::Start() {
  worker_->connections().PushBack(this);
  counted_ = true;
  worker_->OnConnectionOpened();
  stream_.TuneSocket(static_cast<int>(kOutputHighWater));
  info_.connection_id = worker_->NextConnectionId();
  if (stream_.StartReading() != 0) {
    Abort();
    return;
  }
  const TimeoutsConfig& timeouts = worker_->snapshot()->config->timeouts;
  if (phase_ == Phase::kProxyHeader) {
    timeout_.Arm(context()->Timeouts(timeouts.head_read));
  } else {
    StartSession(nullptr, 0);
  }
  if (worker_->draining()) Drain();
}

void DownstreamConnection::StartSession(const char* data, size_t len) {
  // The client is known now (a PROXY header names it): hold it to its share.
  if (worker_->snapshot()->max_connections_per_client != 0) {
    const uint64_t key = info_.client.ClientKey();
    if (!worker_->AdmitClient(key)) {
      worker_->CountRefusedConnection();
      Abort();
      return;
    }
    client_admitted_ = true;
  }
  if (tls_) {
    // The handshake is bounded like a request head. Bytes that came with the PROXY header
    // cannot be fed back into TLS here; a client sends nothing before our handshake reply.
    phase_ = Phase::kHandshake;
    timeout_.Arm(context()->Timeouts(worker_->snapshot()->config->timeouts.head_read));
    if (drain_pending_) ArmDrainGrace();
    if (len > 0) Abort();
    return;
  }
  if (http2_) {
    phase_ = Phase::kSniff;
    timeout_.Arm(context()->Timeouts(worker_->snapshot()->config->timeouts.downstream_idle));
    if (drain_pending_) ArmDrainGrace();
    if (len > 0) OnSniffBytes(data, len);
    return;
  }
  StartHttp(false, data, len);
}

void DownstreamConnection::OnSniffBytes(const char* data, size_t len) {
  // Decided by the first bytes: the preface is not a valid HTTP/1.1 request line. Usually the
  // first read decides, and is passed on without a copy.
  std::string_view input(data, len);
  if (proxy_header_) {
    proxy_header_->append(data, len);
    input = *proxy_header_;
  }
  const size_t n = std::min(input.size(), kHttp2Preface.size());
  const bool prefix = input.substr(0, n) == kHttp2Preface.substr(0, n);
  if (prefix && n < kHttp2Preface.size()) {  // not enough to tell yet
    if (!proxy_header_) proxy_header_ = std::make_unique<std::string>(input);
    return;
  }
  const std::unique_ptr<std::string> buffered = std::move(proxy_header_);  // input's bytes
  timeout_.Disarm();
  StartHttp(prefix, input.data(), input.size());
}

void DownstreamConnection::OnTlsEstablished() {
  if (phase_ != Phase::kHandshake) return;
  timeout_.Disarm();
  const bool h2 = http2_ && stream_.alpn() == "h2";
  worker_->mutable_metrics().tls_handshakes[h2][SSL_session_reused(stream_.ssl()) ? 1 : 0].Add();
  if (stream_.handshake_waited()) worker_->mutable_metrics().tls_handshakes_waited.Add();
  StartHttp(h2, nullptr, 0);
}

void DownstreamConnection::StartHttp(bool http2, const char* data, size_t len) {
  phase_ = Phase::kHttp;
  const WorkerSnapshot& snapshot = *worker_->snapshot();
  const Config& config = *snapshot.config;
  if (http2) {
    worker_->mutable_metrics().http2_connections.Add();
    Http2ServerCodec::Options options;
    options.http2 = config.http2;
    options.limits = snapshot.request_limits;
    auto codec = std::make_unique<Http2ServerCodec>(
        context(), static_cast<CodecTransport*>(this), static_cast<StreamFactory*>(this),
        static_cast<CodecObserver*>(this), options, &info_);
    codec_h2_ = true;
    codec_ = std::move(codec);
  } else {
    codec();
  }
  OnCodecStateChanged();
  if (len > 0 && phase_ == Phase::kHttp) codec().OnData(data, len);
  DrainIfRequestBegan();
}

Http2ServerCodec* DownstreamConnection::http2_codec() const {
  return codec_h2_ ? static_cast<Http2ServerCodec*>(codec_.get()) : nullptr;
}

ServerCodec& DownstreamConnection::codec() {
  if (!codec_) {
    const WorkerSnapshot& snapshot = *worker_->snapshot();
    Http1ServerCodec::Options options;
    options.limits = snapshot.request_limits;
    options.max_requests = snapshot.config->limits.max_requests_per_connection;
    options.requests_served = requests_;
    codec_ = std::make_unique<Http1ServerCodec>(context(), static_cast<CodecTransport*>(this),
                                                static_cast<StreamFactory*>(this),
                                                static_cast<CodecObserver*>(this), options, &info_);
  }
  return *codec_;
}

void DownstreamConnection::ParkIfIdle() {
  if (codec_h2_ || !codec_) return;
  auto* http1 = static_cast<Http1ServerCodec*>(codec_.get());
  if (!http1->parkable()) return;
  requests_ = http1->requests();
  // The codec may still be on the stack (this runs from its notification): destroyed once the
  // current callbacks unwind.
  context()->DeleteLater(std::move(codec_));
}

void DownstreamConnection::OnProxyHeaderBytes(const char* data, size_t len) {
  if (!proxy_header_) proxy_header_ = std::make_unique<std::string>();
  std::string& header = *proxy_header_;
  header.append(data, len);
  ProxyParseResult r = ParseProxyHeader(header);
  switch (r.status) {
    case ProxyParseResult::Status::kNeedMore:
      if (header.size() > kMaxProxyHeaderBytes) Abort();
      return;
    case ProxyParseResult::Status::kError:
      LOG_INFO("downstream %s: %s", info_.client.ToString(), r.error);
      Abort();
      return;
    case ProxyParseResult::Status::kDone:
      break;
  }
  if (r.header.has_addresses) {
    info_.client = r.header.source;
    info_.InvalidateClientIp();
    info_.proxied = true;
  }
  std::string rest = header.substr(r.consumed);
  proxy_header_.reset();
  timeout_.Disarm();
  StartSession(rest.data(), rest.size());
}

// --- Socket events -----------------------------------------------------------------------

void DownstreamConnection::OnStreamRead(const char* data, size_t len) {
  switch (phase_) {
    case Phase::kProxyHeader:
      OnProxyHeaderBytes(data, len);
      return;
    case Phase::kSniff:
      OnSniffBytes(data, len);
      return;
    case Phase::kHttp:
      codec().OnData(data, len);
      DrainIfRequestBegan();
      return;
    case Phase::kHandshake:  // TLS records are consumed by the stream until it is done
    case Phase::kLingering:  // the answer is out; what the client still sends is discarded
    case Phase::kClosed:
      return;
  }
}

void DownstreamConnection::OnStreamEof() {
  peer_eof_ = true;
  if (phase_ == Phase::kHttp) {
    codec().OnEof();
    return;
  }
  Abort();
}

void DownstreamConnection::OnStreamError(int error) {
  if (!stream_.tls_error().empty()) {
    LOG_DEBUG("downstream %s: %s", info_.client.ToString(), stream_.tls_error());
    if (phase_ == Phase::kHandshake) worker_->mutable_metrics().tls_handshake_failures.Add();
  } else {
    LOG_DEBUG("downstream %s: %s", info_.client.ToString(), uv_strerror(error));
  }
  if (phase_ == Phase::kHttp && codec_) {
    codec_->OnTransportError();  // resets the stream and calls Abort()
  }
  Abort();
}

void DownstreamConnection::OnStreamDrained() {
  if (phase_ == Phase::kHttp) {
    if (codec_) codec_->OnTransportDrained();  // a parked codec has nothing waiting to go
  } else if (phase_ == Phase::kLingering) {
    if (peer_eof_) {
      Abort();  // everything is out and the client has finished too
      return;
    }
    timeout_.Arm(context()->Timeouts(kLinger));
  }
}

void DownstreamConnection::OnStreamClosed() {
  if (Http2ServerCodec* h2 = http2_codec(); h2 && !h2->close_reason().empty()) {
    worker_->mutable_metrics().http2_shed.Add();  // abuse or a protocol error ended it
  }
  worker_node_.Unlink();
  Worker* worker = worker_;
  bool counted = counted_;
  if (client_admitted_) worker->ReleaseClient(info_.client.ClientKey());  // as admitted
  delete this;
  worker->OnConnectionClosed(counted);
}

// --- CodecTransport ----------------------------------------------------------------------

void DownstreamConnection::Write(std::string_view a, std::string_view b, std::string_view c) {
  if (c.empty()) {
    if (b.empty()) {
      stream_.Write(a);
    } else {
      stream_.Write(a, b);
    }
  } else {
    stream_.Write(a, b, c);
  }
}

void DownstreamConnection::PauseReading() {
  if (phase_ != Phase::kHttp) return;
  read_paused_ = true;
  stream_.StopReading();
}

void DownstreamConnection::ResumeReading() {
  if (phase_ != Phase::kHttp || !read_paused_) return;
  read_paused_ = false;
  stream_.StartReading();
}

void DownstreamConnection::CloseAfterWrites() {
  if (phase_ == Phase::kClosed || phase_ == Phase::kLingering) return;
  phase_ = Phase::kLingering;
  if (peer_eof_ && stream_.queued_bytes() == 0) {
    Abort();  // nothing to send and nothing more to read
    return;
  }
  stream_.ShutdownWrite();
  // Keep reading (and discarding) so the client's unread bytes do not turn our close into a
  // reset that destroys the response in flight.
  if (read_paused_) stream_.StartReading();
  // Bounded while the last bytes drain; then kLinger once they are out (OnStreamDrained).
  timeout_.Arm(context()->Timeouts(
      stream_.queued_bytes() == 0 ? kLinger : worker_->snapshot()->config->timeouts.body_idle));
}

void DownstreamConnection::Abort() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  timeout_.Disarm();
  if (codec_) codec_->OnTransportError();
  stream_.Close();
}

void DownstreamConnection::Drain() {
  switch (phase_) {
    case Phase::kProxyHeader:
    case Phase::kHandshake:
    case Phase::kSniff:
      BeginDrainGrace();
      return;
    case Phase::kHttp:
      // HTTP/2 has its own graceful way (GOAWAY: a request that crossed it is refused, safe to
      // send again elsewhere), and an idle HTTP/2 connection is often a peer region's warm
      // tunnel that sent nothing yet: no grace, or every drain would wait it out.
      if (!had_request_ && !codec_h2_ && (!codec_ || codec_->state() == CodecState::kIdle)) {
        BeginDrainGrace();
        return;
      }
      codec().Drain();
      return;
    default:
      return;
  }
}

void DownstreamConnection::BeginDrainGrace() {
  if (drain_pending_) return;
  drain_pending_ = true;
  const absl::Duration grace =
      std::min(worker_->snapshot()->config->timeouts.head_read, kDrainGrace);
  drain_deadline_ms_ = static_cast<uint32_t>(context()->clock().MonotonicNanos() / 1'000'000 +
                                             absl::ToInt64Milliseconds(grace));
  ArmDrainGrace();
}

void DownstreamConnection::ArmDrainGrace() {
  // What is left of the grace, whatever the phase armed the timer for since.
  head_timer_ = false;
  const uint32_t now_ms = static_cast<uint32_t>(context()->clock().MonotonicNanos() / 1'000'000);
  const int32_t left = static_cast<int32_t>(drain_deadline_ms_ - now_ms);
  timeout_.Arm(context()->Timeouts(absl::Milliseconds(std::max<int32_t>(0, left))));
}

void DownstreamConnection::DrainIfRequestBegan() {
  // Once a request began (even one answered at once, inside OnData), the connection drains:
  // closed after that response, or now when it is already idle again.
  if (!drain_pending_ || phase_ != Phase::kHttp || !had_request_) return;
  drain_pending_ = false;
  codec().Drain();
}

// --- Streams and timers ------------------------------------------------------------------

std::unique_ptr<ServerStreamHandler> DownstreamConnection::NewStream(ServerStream* stream) {
  // New requests use the newest configuration, even on an old connection.
  return std::make_unique<Forwarder>(context(), worker_->snapshot(), stream);
}

void DownstreamConnection::OnCodecStateChanged() {
  if (phase_ != Phase::kHttp || !codec_) return;
  // Connections opened before a reload follow the newest timeouts too.
  const TimeoutsConfig& timeouts = worker_->snapshot()->config->timeouts;
  const CodecState state = codec_->state();
  if (state == CodecState::kReadingHead || state == CodecState::kActive) had_request_ = true;
  switch (state) {
    case CodecState::kIdle:
      head_timer_ = false;
      if (drain_pending_) {
        ArmDrainGrace();  // the grace runs on (a TLS handshake or the sniff may have ended)
        return;
      }
      timeout_.Arm(context()->Timeouts(timeouts.downstream_idle));
      ParkIfIdle();
      return;
    case CodecState::kReadingHead:
      // From the first byte of a head to its end, however slowly the bytes come.
      if (!head_timer_) {
        head_timer_ = true;
        timeout_.Arm(context()->Timeouts(timeouts.head_read));
      }
      return;
    case CodecState::kActive:
      head_timer_ = false;
      timeout_.Disarm();
      return;
    case CodecState::kClosed:
      return;
  }
}

void DownstreamConnection::OnTimeout(Timeout*) {
  switch (phase_) {
    case Phase::kHttp:
      if (head_timer_) {
        codec().OnHeadTimeout();
      } else {
        codec().OnIdleTimeout();
      }
      return;
    case Phase::kProxyHeader:
      LOG_INFO("downstream %s: no PROXY header in time", info_.client.ToString());
      Abort();
      return;
    case Phase::kHandshake:
      LOG_DEBUG("downstream %s: no TLS handshake in time", info_.client.ToString());
      Abort();
      return;
    case Phase::kSniff:  // an idle cleartext connection that never sent a byte
      Abort();
      return;
    case Phase::kLingering:
    case Phase::kClosed:
      Abort();
      return;
  }
}

}  // namespace sluice
