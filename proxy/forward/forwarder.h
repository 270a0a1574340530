// The forwarder: one request's life after its head was parsed. It normalizes and routes the
// request, runs the route's filter chain (filters/filter.h), sends the request on through one
// upstream attempt after another (proxy/forward/upstream_attempt.h) as the next-step policy
// says (proxy/forward/next_step.h), relays the response down with backpressure both ways, turns
// failures that stand into 502/503/504 (one log line each), and after a 101 relays bytes both
// ways.
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
// The routes every sluice answers itself (/v1/serving, and /v1/health for a peer region) are
// in proxy/forward/builtin_routes.h.
//
// Owned by the downstream codec as the stream's handler; loop thread only.
#ifndef SLUICE_PROXY_FORWARD_FORWARDER_H_
#define SLUICE_PROXY_FORWARD_FORWARDER_H_

#include <string>

#include "filters/filter_chain.h"
#include "proxy/event/timeout_queue.h"
#include "proxy/forward/builtin_routes.h"
#include "proxy/forward/next_step.h"
#include "proxy/forward/request_steering.h"
#include "proxy/forward/upstream_attempt.h"
#include "proxy/forward/worker_snapshot.h"
#include "proxy/http/http_codec.h"
#include "proxy/upstream/cluster_runtime.h"

namespace sluice {

class Forwarder final : public ServerStreamHandler,
                        private UpstreamAttempt::Owner,
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
  // UpstreamAttempt::Owner
  void OnAttemptBegins(const UpstreamEndpoint& endpoint, std::string* head) override;
  void OnAttemptReady() override;
  void OnAttemptHead(ResponseHeadPtr head) override;
  void OnAttemptBody(std::string_view data) override;
  void OnAttemptTrailers(const HeaderMap& trailers) override;
  void OnAttemptEnd() override;
  void OnAttemptDrained() override;
  void OnAttemptError(UpstreamError error, int detail, const char* reason) override;
  void OnAttemptTimedOut(const AttemptFacts& attempt, const char* what,
                         const char* detail) override;
  // TimeoutTarget
  void OnTimeout(Timeout* which) override;
  // FilterResume: a paused filter is done.
  void Resume(FilterStatus status) override;

  // Answers a built-in route (proxy/forward/builtin_routes.h): /v1/serving, or a peer's
  // /v1/health (`peer_health`).
  void AnswerBuiltin(bool peer_health);
  // Acts on what the request filters decided: forward, answer, or wait.
  void AfterRequestFilters(FilterStatus status);

  // --- What follows an attempt (proxy/forward/forwarder_next.cc) ---
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

  // The regions come from steering_ (proxy/forward/request_steering.h).
  // The region the current attempt tunneled to failed: the next savior, or local. False when
  // steering has no region left for the member, or the budget there says no.
  bool FallBack(bool reached_origin);
  // Isthmus: the local region failed this request; once, through a tunnel to a savior.
  bool FailOver(bool reached_origin);
  // Another attempt in `region` (-1 or the local region: the route's cluster), now.
  bool Redispatch(bool reached_origin, int region);
  void UseRegion(int region);

  // --- The request, the response, the ends (proxy/forward/forwarder.cc) ---
  void CompleteFilters();
  // Gives back what this request holds in its clusters' accounting (requests, retries,
  // pending connects). Idempotent.
  void ReleaseCluster();

  // Another attempt (`same_endpoint`: the last one's endpoint on a fresh connection).
  void Dispatch(bool same_endpoint);
  void SendBodyUpstream(std::string_view data);
  void MaybeArmResponseTimeout();
  // Answers with a short plain-text error (or resets when a response already started).
  void Fail(int status, const char* what, const char* detail);
  // The response began and cannot be finished: the client's stream (HTTP/2) or connection is
  // reset, and the exchange ends.
  void ResetClient();
  // A circuit breaker said no: an immediate 503 with Retry-After.
  void Overflow(const char* why);
  void RespondLocal(int status, std::string_view body, const HeaderMap* headers = nullptr);
  // Body bytes moved in either direction (or a queue drained): restart the idle clock.
  void ArmIdleTimeout();

  LoopContext* context_;
  WorkerSnapshotPtr snapshot_;
  ServerStream* stream_;  // null once the exchange is over for the client
  RequestHeadPtr request_;
  FilterRequest filter_;  // the request as the route's filters see it
  FilterRun run_;
  FilterOutcome outcome_;
  ClusterRuntime* local_cluster_ = nullptr;  // the route's cluster
  UpstreamAttempt attempt_;                  // the current (or last) try, and the body it sent
  std::string pending_body_;                 // body bytes that arrived before the attempt was ready
  Timeout idle_timeout_;
  Timeout retry_timeout_;  // the backoff before another attempt
  // In the retry budget of the cluster it was admitted in (once per request).
  ClusterSlot retry_slot_{ClusterSlot::kRetry};
  bool request_complete_ = false;
  bool filters_waiting_ = false;  // a filter paused the request
  bool resent_ = false;           // the one transparent re-send (next_step.h, rule 3) was used
  bool response_started_ = false;
  bool response_done_ = false;
  bool tunnel_ = false;
  bool trailers_sent_ = false;  // the response ended with trailers
  bool tunnel_client_done_ = false;
  bool downstream_paused_ = false;

  // --- Metrics and the access log (proxy/forward/forwarder_metrics.cc) ---
  // Once per exchange, when it ends: the worker's counters (and later the access log).
  void RecordExchange();
  void RecordUpstreamHead(int status);
  void RecordUpstreamFailure(UpstreamFailure kind);
  void RecordRetry();
  void WriteAccessLog(size_t route);

  int route_ = -1;  // index of the matched route; -1: none
  int64_t attempt_started_ns_ = 0;
  uint64_t bytes_in_ = 0;   // request body bytes from the client
  uint64_t bytes_out_ = 0;  // response body bytes to the client
  bool recorded_ = false;

  RequestSteering steering_;
  bool from_trusted_proxy_ = false;  // the peer is in proxy.trusted_proxies (not tunneled in)
};

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_FORWARDER_H_
