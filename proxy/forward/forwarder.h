// The forwarder: one request's life after its head was parsed. It normalizes and routes the
// request, runs the route's filter chain (filters/filter.h), picks an endpoint, takes a pooled
// connection or opens one, streams the request body up and the response down with backpressure both
// ways, turns upstream failures into 502 and timeouts into 504 (one log line each), and after a 101
// relays bytes both ways.
//
// A pooled connection the origin had closed is retried once on a fresh connection, when no
// response byte arrived, the request is idempotent (RFC 9110 section 9.2.2, or it carries an
// Idempotency-Key) and every byte sent is still at hand (body within the replay buffer).
//
// With steering configured, the steering decision (steering/decision.h) picks the region after
// the request filters: the route's cluster locally, or the peer region's sluice through a
// tunnel (its "region:<name>" cluster, with a signed sluice-hop marker). A tunnel that fails
// falls back to the next savior or to local; a request the local region fails goes once to a
// savior (Isthmus). Every response then says which region served it (sluice-region).
//
// GET or HEAD of exactly "/v1/serving" (origin-form, any query, any Host) is answered here,
// before routes and filters (steering/serving.h): a DNS provider's health check is never held
// by an auth filter, and never reaches an origin. Any other path, "/v1/serving/" included, is
// routed as usual.
//
// Owned by the downstream codec as the stream's handler; loop thread only.
#ifndef SLUICE_PROXY_FORWARD_FORWARDER_H_
#define SLUICE_PROXY_FORWARD_FORWARDER_H_

#include <string>

#include "filters/filter_chain.h"
#include "proxy/event/timeout_queue.h"
#include "proxy/forward/next_step.h"
#include "proxy/forward/steering_inputs.h"
#include "proxy/forward/worker_snapshot.h"
#include "proxy/http/http_codec.h"
#include "proxy/upstream/cluster_runtime.h"
#include "proxy/upstream/upstream_connection.h"

namespace sluice {

class Forwarder final : public ServerStreamHandler,
                        private UpstreamStream::Handler,
                        private FilterResume,
                        private TimeoutTarget {
 public:
  Forwarder(LoopContext* context, WorkerSnapshotPtr snapshot, ServerStream* stream);
  ~Forwarder() override;

  // One per request: the memory is recycled per thread (proxy/event/recycler.h).
  static void* operator new(size_t size);
  static void operator delete(void* p, size_t size);

  // ServerStreamHandler
  void OnRequestHead(RequestHeadPtr head) override;
  void OnRequestBody(std::string_view data) override;
  void OnRequestEnd() override;
  void OnDownstreamDrained() override;
  void OnStreamReset(StreamResetReason reason) override;

 private:
  // UpstreamStream::Handler
  void OnUpstreamConnected() override;
  void OnUpstreamHead(ResponseHeadPtr head) override;
  void OnUpstreamBody(std::string_view data) override;
  void OnUpstreamTrailers(const HeaderMap& trailers) override;
  void OnUpstreamEnd() override;
  void OnUpstreamError(UpstreamError error, int detail, const char* reason) override;
  void OnUpstreamDrained() override;
  // TimeoutTarget
  void OnTimeout(Timeout* which) override;
  // FilterResume: a paused filter is done.
  void Resume(FilterStatus status) override;

  // GET /v1/serving (steering/serving.h): this worker's table and whether it drains.
  void AnswerServing();
  // Acts on what the request filters decided: forward, answer, or wait.
  void AfterRequestFilters(FilterStatus status);
  // What the request is, for the next-step policy (proxy/forward/next_step.h).
  RequestFacts Facts() const;
  // The attempt failed before a response: counts it, asks the filters, and carries out what
  // the next-step policy answers; `status` (502 or 504) with a log line when nothing is left.
  void AttemptFailed(int status, const AttemptFacts& attempt, const char* what, const char* detail);
  // Tries the steps before the last in order; true when one started another attempt (`taken`
  // says which). A retry the filters asked for that does not happen is finished for them
  // (the filters the walk skipped see the failure, or `head`, that stands) before steering
  // moves the request.
  bool TakeSteps(const NextSteps& next, FilterVerdict filters, ResponseHead* head, Step* taken);
  // Another attempt in the same cluster, after the filters' backoff: false when the retry
  // budget says no. `reached_origin` false: the failed attempt never got a connection, so the
  // retry adds no work for the origins and the budget does not limit it.
  bool Retry(bool reached_origin);
  // Counts a retry against the budget of `on`, the cluster the next attempt goes to (once per
  // request). False when the budget says no.
  bool AdmitRetry(bool reached_origin, ClusterRuntime* on);

  // --- Steering (proxy/forward/forwarder_steering.cc) ---
  // Verifies a sluice-hop marker before the request's sluice-* fields are dropped.
  void CheckHopMarker();
  // After the request filters: local, a tunnel to a peer region, or (Isthmus) a savior when
  // the local cluster has no endpoint available.
  void Steer();
  // The region the current attempt tunneled to failed: the next savior, or local. False when
  // steering has no region left for the member, or the budget there says no.
  bool FallBack(bool reached_origin);
  // Isthmus: the local region failed this request; once, through a tunnel to a savior.
  bool FailOver(bool reached_origin);
  // Another attempt in `region` (-1 or the local region: the route's cluster), now.
  bool Redispatch(bool reached_origin, int region);
  void UseRegion(int region);
  // The cluster that serves `region`: the local one, or the tunnel to a peer region.
  ClusterRuntime* ClusterFor(int region) const;
  uint64_t UnreachableRegions() const;
  void AppendHopMarker();
  // sluice-region on a response: the peer's own when it came through a tunnel.
  void AddRegionHeader(ResponseHead& head, std::string_view peer_says);
  void AddRegionHeader(HeaderMap& headers);
  void CompleteFilters();
  // Gives back what this request holds in its clusters' accounting (requests, retries,
  // pending connects). Idempotent.
  void ReleaseCluster();
  uint64_t ReplayLimit() const { return filter_.context.replay_limit; }

  void Dispatch(bool fresh_connection);
  void OnUpstreamReady();
  void SendBodyUpstream(std::string_view data);
  void MaybeArmResponseTimeout();
  void ReleaseUpstream(bool reusable);
  void DropUpstream();
  // Answers with a short plain-text error (or resets when a response already started).
  void Fail(int status, const char* what, const char* detail);
  // A circuit breaker said no: an immediate 503 with Retry-After.
  void Overflow(const char* why);
  void RespondLocal(int status, std::string_view body, const HeaderMap* headers = nullptr);
  bool KeepReplay() const { return upstream_reused_ || filter_.context.keep_request_body; }
  bool Idempotent() const;
  // Body bytes moved in either direction (or a queue drained): restart the idle clock.
  void ArmIdleTimeout();

  LoopContext* context_;
  WorkerSnapshotPtr snapshot_;
  ServerStream* stream_;  // null once the exchange is over for the client
  RequestHeadPtr request_;
  FilterRequest filter_;  // the request as the route's filters see it
  FilterRun run_;
  FilterOutcome outcome_;
  ClusterRuntime* cluster_ = nullptr;           // of the current attempt
  ClusterRuntime* local_cluster_ = nullptr;     // the route's cluster
  std::shared_ptr<UpstreamEndpoint> endpoint_;  // of the current (or last) attempt
  UpstreamStream* upstream_ = nullptr;
  std::string upstream_head_;  // the serialized request head, kept for a replay
  std::string pending_body_;   // body bytes that arrived before the upstream was ready
  std::string replay_;         // every body byte sent so far, while replayable_
  Timeout connect_timeout_;
  Timeout response_timeout_;
  Timeout idle_timeout_;
  Timeout retry_timeout_;  // the backoff before another attempt
  // In the cluster's counts: this request (in the cluster of the current attempt), its retry
  // (in the cluster the budget admitted it in), its connect while pending.
  ClusterSlot request_slot_{ClusterSlot::kRequest};
  ClusterSlot retry_slot_{ClusterSlot::kRetry};
  ClusterSlot connect_slot_{ClusterSlot::kConnect};
  uint64_t body_sent_ = 0;
  bool upstream_ready_ = false;
  bool upstream_reused_ = false;   // the current connection came from the pool
  bool endpoint_counted_ = false;  // endpoint_->BeginRequest() was called
  bool request_complete_ = false;
  bool replayable_ = true;        // replay_ holds the whole body sent so far (or there is none)
  bool filters_waiting_ = false;  // a filter paused the request
  bool resent_ = false;           // the one transparent re-send (next_step.h, rule 3) was used
  bool response_started_ = false;
  bool response_done_ = false;
  bool tunnel_ = false;
  bool trailers_sent_ = false;  // the response ended with trailers
  bool tunnel_client_done_ = false;
  bool upstream_paused_ = false;
  bool downstream_paused_ = false;

  // --- Metrics and the access log (proxy/forward/forwarder_metrics.cc) ---
  // Once per exchange, when it ends: the worker's counters (and later the access log).
  void RecordExchange();
  void RecordUpstreamHead(int status);
  void RecordUpstreamFailure(UpstreamFailure kind);
  void RecordRetry();
  void WriteAccessLog(size_t route);

  int route_ = -1;              // index of the matched route; -1: none
  uint8_t decision_label_ = 0;  // metrics.h DecisionLabel index; set with the request head
  int64_t attempt_started_ns_ = 0;
  uint64_t bytes_in_ = 0;   // request body bytes from the client
  uint64_t bytes_out_ = 0;  // response body bytes to the client
  bool recorded_ = false;

  // Steering: null table when steering is off.
  SteeringTablePtr steering_;
  MemberRequest member_;
  MemberIdBuffer member_buffer_;
  int peer_region_ = -1;             // the region the current attempt tunnels to; -1: local
  uint64_t failed_regions_ = 0;      // regions whose tunnel failed this request
  bool tunneled_in_ = false;         // a verified hop marker: served here, never tunneled again
  bool from_trusted_proxy_ = false;  // the peer is in proxy.trusted_proxies (not tunneled in)
  SocketAddress cohort_client_;      // what cohort CIDR files are matched against
  std::string hop_from_;             // tunneled in: the sending region, and its marker's nonce
  uint64_t hop_nonce_ = 0;
  bool failed_over_ = false;  // the Isthmus attempt was made
};

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_FORWARDER_H_
