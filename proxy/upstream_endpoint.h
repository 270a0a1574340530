// One origin endpoint as one worker sees it: its address, its pool of idle keep-alive
// connections (most recently used first), and how many requests this worker has outstanding
// on it (for least-outstanding balancing). Per worker, so nothing here is shared between
// threads. Loop thread only.
#ifndef SLUICE_PROXY_UPSTREAM_ENDPOINT_H_
#define SLUICE_PROXY_UPSTREAM_ENDPOINT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "common/socket_address.h"
#include "proxy/config.h"
#include "proxy/http1_parser.h"
#include "proxy/intrusive_list.h"
#include "proxy/loop_context.h"
#include "proxy/upstream_connection.h"

namespace sluice {

class UpstreamEndpoint : public std::enable_shared_from_this<UpstreamEndpoint> {
 public:
  UpstreamEndpoint(LoopContext* context, std::string name, const SocketAddress& address,
                   const PoolConfig& pool, const Http1Limits& response_limits);
  UpstreamEndpoint(const UpstreamEndpoint&) = delete;
  UpstreamEndpoint& operator=(const UpstreamEndpoint&) = delete;

  const std::string& name() const { return name_; }
  const SocketAddress& address() const { return address_; }
  const PoolConfig& pool() const { return pool_; }
  const Http1Limits& response_limits() const { return response_limits_; }
  TimeoutQueue* idle_timeouts() const { return idle_timeouts_; }

  // A pooled connection, or nullptr. The caller Attach()es it.
  UpstreamConnection* TakeIdle();
  // Starts a new connection for `handler` (see UpstreamConnection::Connect).
  UpstreamConnection* Connect(UpstreamConnection::Handler* handler, int* error);

  // Outstanding requests on this endpoint from this worker.
  uint32_t outstanding() const { return outstanding_; }
  void BeginRequest() { ++outstanding_; }
  void EndRequest() {
    if (outstanding_ > 0) --outstanding_;
  }

  // A configuration reload kept this endpoint: adopt its new pool settings.
  void Update(const PoolConfig& pool, const Http1Limits& response_limits);
  // The endpoint left the configuration: close idle connections, pool nothing more. Busy
  // connections finish their exchange and then close.
  void Retire();
  bool retired() const { return retired_; }
  size_t idle_count() const { return idle_count_; }

 private:
  friend class UpstreamConnection;
  // Called by a connection that finished cleanly; false when it must close instead.
  bool AddIdle(UpstreamConnection* connection);
  void OnConnectionClosed(UpstreamConnection* connection);

  LoopContext* context_;
  std::string name_;
  SocketAddress address_;
  PoolConfig pool_;
  Http1Limits response_limits_;
  TimeoutQueue* idle_timeouts_;
  IntrusiveList<UpstreamConnection, &UpstreamConnection::pool_node_> idle_;
  size_t idle_count_ = 0;
  uint32_t outstanding_ = 0;
  bool retired_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_UPSTREAM_ENDPOINT_H_
