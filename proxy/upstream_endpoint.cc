#include "proxy/upstream_endpoint.h"

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

void UpstreamEndpoint::Retire() {
  retired_ = true;
  while (UpstreamConnection* connection = TakeIdle()) connection->Close();
}

}  // namespace sluice
