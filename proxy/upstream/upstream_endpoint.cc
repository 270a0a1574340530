#include "proxy/upstream/upstream_endpoint.h"

#include "proxy/observe/metrics.h"
#include "proxy/upstream/http2_upstream.h"

#include <algorithm>

namespace sluice {

UpstreamEndpoint::UpstreamEndpoint(LoopContext* context, std::string name,
                                   const SocketAddress& address, const PoolConfig& pool,
                                   const Http1Limits& response_limits)
    : context_(context),
      name_(std::move(name)),
      address_(address),
      pool_(pool),
      response_limits_(response_limits),
      idle_timeouts_(context->Timeouts(pool.idle_timeout)) {}

UpstreamEndpoint::~UpstreamEndpoint() = default;

UpstreamConnection* UpstreamEndpoint::TakeIdle() {
  // Most recently used first: it is the least likely to have been closed by the origin.
  UpstreamConnection* connection = idle_.PopBack();
  if (connection) --idle_count_;
  return connection;
}

UpstreamConnection* UpstreamEndpoint::Connect(UpstreamConnection::Handler* handler, int* error) {
  return UpstreamConnection::Connect(context_, shared_from_this(), handler, error);
}

bool UpstreamEndpoint::AddIdle(UpstreamConnection* connection) {
  if (retired_ || idle_count_ >= pool_.max_idle) return false;
  idle_.PushBack(connection);
  ++idle_count_;
  return true;
}

void UpstreamEndpoint::RemoveIdle(UpstreamConnection* connection) {
  if (connection->pool_node_.linked()) {
    connection->pool_node_.Unlink();
    --idle_count_;
  }
}

void UpstreamEndpoint::SetTls(ClientTlsContext context, std::string server_name) {
  if (context != tls_ || server_name != tls_name_) {
    tls_session_.Clear();  // a session belongs to the context and name it was made for
  }
  tls_ = std::move(context);
  tls_name_ = std::move(server_name);
}

void UpstreamEndpoint::Update(const PoolConfig& pool, const Http1Limits& response_limits) {
  pool_ = pool;
  response_limits_ = response_limits;
  idle_timeouts_ = context_->Timeouts(pool.idle_timeout);
  while (idle_count_ > pool_.max_idle) {
    UpstreamConnection* connection = TakeIdle();
    connection->Close();
  }
}

double UpstreamEndpoint::Weight(int64_t now_ns) const {
  if (slow_start_ns_ <= 0 || now_ns >= slow_start_begin_ns_ + slow_start_ns_) return 1.0;
  double progress = static_cast<double>(now_ns - slow_start_begin_ns_) / slow_start_ns_;
  return 0.1 + 0.9 * std::max(0.0, progress);
}

void UpstreamEndpoint::StartSlowStart(int64_t now_ns, int64_t window_ns) {
  slow_start_begin_ns_ = now_ns;
  slow_start_ns_ = window_ns;
}

void UpstreamEndpoint::SetStandby(bool standby, int64_t now_ns, int64_t slow_start_ns) {
  if (standby_ && !standby) StartSlowStart(now_ns, slow_start_ns);
  standby_ = standby;
}

void UpstreamEndpoint::Retire() {
  retired_ = true;
  rewarm_.Disarm();
  while (UpstreamConnection* connection = TakeIdle()) connection->Close();
  std::vector<Http2UpstreamSession*> sessions = sessions_;
  for (Http2UpstreamSession* session : sessions) session->Retire();
}

SSL* UpstreamEndpoint::NewTlsSession(bool offer_h2) {
  SSL* ssl = NewClientSsl(tls_.get(), tls_name_);
  if (!ssl) return nullptr;
  tls_session_.Attach(ssl);
  if (offer_h2) {
    static const unsigned char kAlpn[] = "\x02h2\x08http/1.1";
    SSL_set_alpn_protos(ssl, kAlpn, sizeof(kAlpn) - 1);
  }
  return ssl;
}

UpstreamStream* UpstreamEndpoint::OpenHttp2Stream(UpstreamStream::Handler* handler, bool* ready,
                                                  bool* opened, int* error) {
  *opened = false;
  // The least busy connection, a ready one before one still connecting (a warm connection
  // being replaced must not make a request wait for its handshake).
  Http2UpstreamSession* best = nullptr;
  for (Http2UpstreamSession* session : sessions_) {
    if (!session->accepting()) continue;
    if (!best || (session->ready() && !best->ready()) ||
        (session->ready() == best->ready() && session->active_streams() < best->active_streams())) {
      best = session;
    }
  }
  // Another connection only when the least busy one is past a stream budget of its own.
  constexpr size_t kStreamsPerConnection = 100;
  size_t open = 0;
  for (Http2UpstreamSession* session : sessions_) open += session->accepting() ? 1 : 0;
  if (!best || (best->active_streams() >= kStreamsPerConnection &&
                open < std::max<uint32_t>(1, pool_.http2_connections))) {
    Http2UpstreamSession* fresh =
        Http2UpstreamSession::Connect(context_, shared_from_this(), error);
    if (fresh) {
      best = fresh;
      *opened = true;
    }
    if (!best) return nullptr;
  }
  return best->OpenStream(handler, ready);
}

void UpstreamEndpoint::RemoveSession(Http2UpstreamSession* session, bool lived_well) {
  bool found = false;
  for (size_t i = 0; i < sessions_.size(); ++i) {
    if (sessions_[i] == session) {
      sessions_.erase(sessions_.begin() + static_cast<long>(i));
      found = true;
      break;
    }
  }
  if (!found) return;  // (a second call from the same close)
  // Another in its place, after the back-off (never from inside its close).
  if (lived_well) rewarm_backoff_ = kFirstRewarm;
  ArmRewarm();
}

void UpstreamEndpoint::ArmRewarm() {
  if (!WantsWarm() || rewarm_.armed()) return;
  rewarm_.Arm(context_->Timeouts(rewarm_backoff_));
  rewarm_backoff_ = std::min(rewarm_backoff_ * 2, kLastRewarm);
}

bool UpstreamEndpoint::WantsWarm() const {
  return pool_.http2_warm > 0 && http2() && !retired_ && !standby_ && !warm_stopped_;
}

bool UpstreamEndpoint::KeepsWarm(const Http2UpstreamSession* session) const {
  if (!WantsWarm()) return false;
  uint32_t before = 0;
  for (const Http2UpstreamSession* s : sessions_) {
    if (s == session) return s->accepting() && before < pool_.http2_warm;
    if (s->accepting()) ++before;
  }
  return false;
}

void UpstreamEndpoint::KeepWarm() {
  if (!WantsWarm()) {
    rewarm_.Disarm();
    return;
  }
  uint32_t open = 0;
  for (const Http2UpstreamSession* session : sessions_) open += session->accepting() ? 1 : 0;
  for (; open < pool_.http2_warm; ++open) {
    int error = 0;
    if (!Http2UpstreamSession::Connect(context_, shared_from_this(), &error)) {
      ArmRewarm();  // (its close may have armed it already)
      return;
    }
    if (opened_counter_) opened_counter_->Add();
  }
}

void UpstreamEndpoint::OnTimeout(Timeout*) { KeepWarm(); }

}  // namespace sluice
