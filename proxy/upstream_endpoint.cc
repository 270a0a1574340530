#include "proxy/upstream_endpoint.h"

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

UpstreamEndpoint::~UpstreamEndpoint() {
  if (tls_session_) SSL_SESSION_free(tls_session_);
}

void UpstreamEndpoint::EnableSessionCache(SSL_CTX* context) {
  SSL_CTX_set_session_cache_mode(context,
                                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(context, [](SSL* ssl, SSL_SESSION* session) -> int {
    auto* endpoint = static_cast<UpstreamEndpoint*>(SSL_get_app_data(ssl));
    if (!endpoint || !SSL_SESSION_is_resumable(session)) return 0;
    if (endpoint->tls_session_) SSL_SESSION_free(endpoint->tls_session_);
    endpoint->tls_session_ = session;
    return 1;  // the endpoint holds the reference now
  });
}

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

void UpstreamEndpoint::OnConnectionClosed(UpstreamConnection* connection) {
  if (connection->pool_node_.linked()) {
    connection->pool_node_.Unlink();
    --idle_count_;
  }
}

void UpstreamEndpoint::SetTls(ClientTlsContext context, std::string server_name) {
  if (context != tls_ || server_name != tls_name_) {
    // A session belongs to the context and name it was made for.
    if (tls_session_) SSL_SESSION_free(tls_session_);
    tls_session_ = nullptr;
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
  while (UpstreamConnection* connection = TakeIdle()) connection->Close();
}

}  // namespace sluice
