// One request's side toward the origins, one try at a time: the cluster the try goes to and
// what the request holds in that cluster's accounting (its request slot, and a connect slot
// while a connection is pending), the endpoint it picked, the connection it took from the pool
// or opened (HTTP/1.1, or a stream on an HTTP/2 connection), the connect and response timeouts,
// and every body byte sent so far while another try may have to replay them.
//
// It carries out one try and reports how it went; what follows a try that failed (another
// endpoint, another region, the failure that stands) is for its owner, the forwarder, to decide
// (proxy/forward/next_step.h). Every slot, count and connection it holds is given back by
// Drop / Finish / ReleaseSlots and at the latest by its destructor, on every path.
//
// Loop thread only.
#ifndef SLUICE_PROXY_FORWARD_UPSTREAM_ATTEMPT_H_
#define SLUICE_PROXY_FORWARD_UPSTREAM_ATTEMPT_H_

#include <memory>
#include <string>

#include "common/http_message.h"
#include "filters/filter.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/timeout_queue.h"
#include "proxy/forward/next_step.h"
#include "proxy/upstream/cluster_runtime.h"
#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/upstream_endpoint.h"

namespace sluice {

// How a try whose connection failed ended, for the next-step policy.
AttemptEnd EndOf(UpstreamError error);
// What the filters and the metrics are told failed.
UpstreamFailure FailureOf(AttemptEnd end);

class UpstreamAttempt final : private UpstreamStream::Handler, private TimeoutTarget {
 public:
  // What a try tells the one it works for.
  class Owner {
   public:
    // The try has its endpoint: the owner counts the try and writes the request head into
    // `head` (an empty buffer) for `endpoint`. Called before any connection is taken.
    virtual void OnAttemptBegins(const UpstreamEndpoint& endpoint, std::string* head) = 0;
    // The connection has the head and the replayed body: more body may follow.
    virtual void OnAttemptReady() = 0;
    virtual void OnAttemptHead(ResponseHeadPtr head) = 0;
    virtual void OnAttemptBody(std::string_view data) = 0;
    virtual void OnAttemptTrailers(const HeaderMap& trailers) = 0;
    virtual void OnAttemptEnd() = 0;
    // The connection took what was queued.
    virtual void OnAttemptDrained() = 0;
    // The connection failed and is gone (UpstreamStream::Handler::OnUpstreamError).
    virtual void OnAttemptError(UpstreamError error, int detail, const char* reason) = 0;
    // No connection within the connect timeout, or no response within the response timeout:
    // the connection is dropped already.
    virtual void OnAttemptTimedOut(const AttemptFacts& attempt, const char* what,
                                   const char* detail) = 0;

   protected:
    virtual ~Owner() = default;
  };

  // How Start went when it did not start a try.
  struct Start {
    enum Result : uint8_t { kStarted, kFull, kNoEndpoint, kConnectFailed };
    Result result = kStarted;
    const char* full = nullptr;  // kFull: what the circuit breaker said
    int error = 0;               // kConnectFailed: the libuv code
  };

  // `wishes`: what the filters asked of every try (keep_request_body, replay_limit,
  // per_try_timeout_ns); read when needed, so later changes count.
  UpstreamAttempt(LoopContext* context, Owner* owner, const FilterContext* wishes);
  ~UpstreamAttempt() override;
  UpstreamAttempt(const UpstreamAttempt&) = delete;
  UpstreamAttempt& operator=(const UpstreamAttempt&) = delete;

  // The cluster the next try goes to. Moving to another gives back what the request holds in
  // the last one's accounting.
  void MoveTo(ClusterRuntime* cluster);
  ClusterRuntime* cluster() const { return cluster_; }

  // A new try: the request's slot in the cluster (taken once), an endpoint (with
  // `same_endpoint`, the last try's again, on a fresh connection; else the balancer's pick,
  // which avoids the last one), a pooled connection or a new one. The head and any body bytes
  // sent before are sent again once it is ready (Owner::OnAttemptReady).
  Start Begin(const RequestHead& request, bool same_endpoint);
  // The connection has the head: body bytes may go.
  bool ready() const { return upstream_ && head_sent_; }
  bool head_sent() const { return head_sent_; }  // of this try, even after its connection went
  bool reused() const { return reused_; }        // this try's connection came from the pool
  const std::shared_ptr<UpstreamEndpoint>& endpoint() const { return endpoint_; }

  // Request body bytes: sent, and kept while the body may have to be replayed.
  void SendBody(std::string_view data);
  void EndRequest() { upstream_->EndRequest(); }
  // The origin's time to answer, once it has the whole request: the cluster's response
  // timeout, or the filters' per-try timeout if shorter.
  void ArmResponseTimeout();
  // Every body byte sent is still at hand (or none was sent).
  bool replayable() const { return replayable_; }
  uint64_t body_sent() const { return body_sent_; }
  // The response is the client's now: the body need not be kept unless a filter asked.
  void ForgetBody();
  size_t queued_bytes() const { return upstream_ ? upstream_->queued_bytes() : 0; }

  // After a 101: bytes both ways, unframed.
  void StartTunnel() { upstream_->StartTunnel(); }
  void ShutdownWrite() {
    if (upstream_) upstream_->ShutdownWrite();
  }
  // Flow control of the response (the client reads slower than the origin sends).
  void PauseReading();
  void ResumeReading();
  bool reading_paused() const { return reading_paused_; }

  // The endpoint failed this try (passive health, outlier ejection).
  void ReportFailure(int64_t now_ns);
  // The try is over: its connection goes back to the pool (`reusable`) or is closed, its
  // timeouts and the endpoint's count of it end.
  void Finish(bool reusable);
  void Drop() { Finish(false); }
  // Gives back the request's slots in the cluster (at the end of the exchange).
  void ReleaseSlots();

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

  void OnReady();
  // The body is kept for a replay when the connection came from the pool (it may be stale)
  // or a filter asked.
  bool KeepBody() const { return reused_ || wishes_->keep_request_body; }
  void ArmConnectTimeout();

  LoopContext* context_;
  Owner* owner_;
  const FilterContext* wishes_;
  const RequestHead* request_ = nullptr;
  ClusterRuntime* cluster_ = nullptr;
  std::shared_ptr<UpstreamEndpoint> endpoint_;  // of the current (or last) try
  UpstreamStream* upstream_ = nullptr;
  std::string head_;    // the serialized request head, kept to send again
  std::string replay_;  // every body byte sent so far, while replayable_
  Timeout connect_timeout_;
  Timeout response_timeout_;
  // In the cluster's counts: this request, and its connect while pending.
  ClusterSlot request_slot_{ClusterSlot::kRequest};
  ClusterSlot connect_slot_{ClusterSlot::kConnect};
  uint64_t body_sent_ = 0;
  uint32_t tries_ = 0;  // Begin calls that reached an endpoint
  bool head_sent_ = false;
  bool reused_ = false;
  bool endpoint_counted_ = false;  // endpoint_->BeginRequest() was called for this try
  bool replayable_ = true;         // replay_ holds the whole body sent so far (or there is none)
  bool reading_paused_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_UPSTREAM_ATTEMPT_H_
