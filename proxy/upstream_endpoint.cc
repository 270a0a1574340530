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
