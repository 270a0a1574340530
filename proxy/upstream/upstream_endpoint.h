// One origin endpoint as one worker sees it: its address, its pool of idle keep-alive
// connections (most recently used first), and how many requests this worker has outstanding
// on it (for least-outstanding balancing). Per worker, so nothing here is shared between
// threads. Loop thread only.
#ifndef SLUICE_PROXY_UPSTREAM_UPSTREAM_ENDPOINT_H_
#define SLUICE_PROXY_UPSTREAM_UPSTREAM_ENDPOINT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "common/socket_address.h"
#include "proxy/config/config.h"
#include "proxy/event/intrusive_list.h"
#include "proxy/event/loop_context.h"
#include "proxy/http/http1_parser.h"
#include "proxy/tls/client_tls.h"
#include "proxy/tls/session_cache.h"
#include "proxy/upstream/upstream_connection.h"

namespace sluice {

class Http2UpstreamSession;
class MetricCounter;

class UpstreamEndpoint : public std::enable_shared_from_this<UpstreamEndpoint>,
                         private TimeoutTarget {
 public:
  UpstreamEndpoint(LoopContext* context, std::string name, const SocketAddress& address,
                   const PoolConfig& pool, const Http1Limits& response_limits);
  ~UpstreamEndpoint() override;
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

  // --- Availability, as this worker sees it ---
  // A hot standby not yet injected: no traffic, and not counted as capacity.
  bool standby() const { return standby_; }
  // The last verdict of the active health checks (healthy until told otherwise).
  bool healthy() const { return healthy_; }
  void set_healthy(bool healthy) { healthy_ = healthy; }
  // A new verdict; passing again after failing starts a slow start of `slow_start_ns`.
  void SetHealthy(bool healthy, int64_t now_ns, int64_t slow_start_ns) {
    if (healthy && !healthy_ && slow_start_ns > 0) StartSlowStart(now_ns, slow_start_ns);
    healthy_ = healthy;
  }
  // Passive outlier detection (proxy/upstream/outlier_detector.h).
  bool ejected(int64_t now_ns) const { return now_ns < ejected_until_ns_; }
  bool available(int64_t now_ns) const { return !standby_ && healthy_ && !ejected(now_ns); }
  // Slow start: the share of traffic this endpoint should get relative to a settled one, rising
  // linearly from 10% to 100% over the window after it joined.
  double Weight(int64_t now_ns) const;
  void StartSlowStart(int64_t now_ns, int64_t window_ns);
  // Joins or leaves the standby pool; joining traffic starts a slow start.
  void SetStandby(bool standby, int64_t now_ns, int64_t slow_start_ns);
  // Upstream connections open to this endpoint (busy and idle), for circuit breakers.
  uint32_t connections() const { return connections_; }

  uint32_t consecutive_failures = 0;
  uint32_t times_ejected = 0;
  int64_t ejected_until_ns_ = 0;
  int64_t last_ejection_end_ns = 0;

  // TLS toward this endpoint (null context: cleartext); `server_name` is sent as SNI and is
  // what the certificate must name. New connections use what was set last.
  void SetTls(ClientTlsContext context, std::string server_name);
  const ClientTlsContext& tls() const { return tls_; }
  const std::string& tls_name() const { return tls_name_; }

  // A client SSL for a new connection: SNI and verification name, the cached session, and
  // ALPN h2 + http/1.1 when `offer_h2` (HTTP/1.1 connections offer what the context says).
  SSL* NewTlsSession(bool offer_h2);

  // HTTP/2 to this endpoint: configured, and not refused by the endpoint itself.
  bool http2() const { return http2_ && !http2_refused_; }
  void SetHttp2(bool enabled) { http2_ = enabled; }
  // The endpoint answered h2 with HTTP/1.1: HTTP/1.1 until the configuration changes.
  void RefuseHttp2() { http2_refused_ = true; }
  // A stream on the least busy HTTP/2 connection, opening a connection when every one is
  // busy (up to pool.http2_connections). `*ready`: send now; otherwise wait for the connect.
  // Null (with a libuv error) when no connection could be started.
  // `*opened` tells whether a new connection was started for it.
  UpstreamStream* OpenHttp2Stream(UpstreamStream::Handler* handler, bool* ready, bool* opened,
                                  int* error);
  size_t http2_sessions() const { return sessions_.size(); }
  // Opens HTTP/2 connections until pool.http2_warm of them take streams (none for a standby,
  // a retired or draining endpoint or one without HTTP/2). A warm connection that closes is
  // replaced after 100 ms when it had served for 10 s or more, else after twice the last
  // wait (up to 30 s: a peer that refuses, or accepts and closes, is not hammered). Called
  // when the configuration is applied.
  void KeepWarm();
  // The worker drains: no more warm connections (those open close as the worker finishes).
  void StopWarm() {
    warm_stopped_ = true;
    rewarm_.Disarm();
  }
  // Where the connections KeepWarm opens are counted (the cluster's opened connections).
  void set_opened_counter(MetricCounter* counter) { opened_counter_ = counter; }
  // Whether `session` is one of the warm ones (the first pool.http2_warm that take streams).
  bool KeepsWarm(const Http2UpstreamSession* session) const;

  // A configuration reload kept this endpoint: adopt its new pool settings.
  void Update(const PoolConfig& pool, const Http1Limits& response_limits);
  // The endpoint left the configuration: close idle connections, pool nothing more. Busy
  // connections finish their exchange and then close.
  void Retire();
  bool retired() const { return retired_; }
  size_t idle_count() const { return idle_count_; }

 private:
  friend class UpstreamConnection;
  friend class Http2UpstreamSession;
  void AddSession(Http2UpstreamSession* session) { sessions_.push_back(session); }
  // `lived_well`: it served long enough that replacing it needs no back-off.
  void RemoveSession(Http2UpstreamSession* session, bool lived_well);
  bool WantsWarm() const;
  void ArmRewarm();
  // TimeoutTarget: time to replace a warm connection.
  void OnTimeout(Timeout* which) override;

  static constexpr absl::Duration kFirstRewarm = absl::Milliseconds(100);
  static constexpr absl::Duration kLastRewarm = absl::Seconds(30);
  // Called by a connection that finished cleanly; false when it must close instead.
  bool AddIdle(UpstreamConnection* connection);
  // Takes a connection out of the idle pool (and its count) if it is there: when it closes
  // or is attached to a request.
  void RemoveIdle(UpstreamConnection* connection);

  LoopContext* context_;
  std::string name_;
  SocketAddress address_;
  PoolConfig pool_;
  Http1Limits response_limits_;
  ClientTlsContext tls_;
  std::string tls_name_;
  // TLS resumption: the newest session ticket the endpoint gave this worker, offered by the
  // next connection so it skips the certificate exchange.
  TlsSessionSlot tls_session_;
  std::vector<Http2UpstreamSession*> sessions_;  // HTTP/2 connections (they free themselves)
  Timeout rewarm_{this};
  MetricCounter* opened_counter_ = nullptr;
  absl::Duration rewarm_backoff_ = kFirstRewarm;
  bool http2_ = false;
  bool http2_refused_ = false;
  TimeoutQueue* idle_timeouts_;
  IntrusiveList<UpstreamConnection, &UpstreamConnection::pool_node_> idle_;
  size_t idle_count_ = 0;
  uint32_t outstanding_ = 0;
  uint32_t connections_ = 0;
  int64_t slow_start_begin_ns_ = 0;
  int64_t slow_start_ns_ = 0;
  bool standby_ = false;
  bool healthy_ = true;
  bool retired_ = false;
  bool warm_stopped_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_UPSTREAM_UPSTREAM_ENDPOINT_H_
