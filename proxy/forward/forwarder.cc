#include "proxy/forward/forwarder.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/strings.h"
#include "proxy/event/recycler.h"
#include "proxy/forward/header_rewriter.h"
#include "proxy/forward/request_normalizer.h"
#include "proxy/upstream/upstream_endpoint.h"
#include "steering/serving.h"

namespace sluice {
namespace {

// Exactly "/v1/serving" as the client sent it, with or without a query: not a path that only
// normalizes to it ("/v1//serving", "/v1/%73erving"), which the routes may serve.
bool IsServingTarget(std::string_view target) {
  constexpr std::string_view kPath = "/v1/serving";
  return target.substr(0, kPath.size()) == kPath &&
         (target.size() == kPath.size() || target[kPath.size()] == '?');
}

}  // namespace

namespace {
// Free forwarder blocks kept per thread: enough for the requests that start at once.
using ForwarderAllocation = RecycledAllocation<Forwarder, 128>;
}  // namespace

void* Forwarder::operator new(size_t size) { return ForwarderAllocation::New(size); }

void Forwarder::operator delete(void* p, size_t size) { ForwarderAllocation::Delete(p, size); }

Forwarder::Forwarder(LoopContext* context, WorkerSnapshotPtr snapshot, ServerStream* stream)
    : context_(context),
      snapshot_(std::move(snapshot)),
      stream_(stream),
      connect_timeout_(this),
      response_timeout_(this),
      idle_timeout_(this),
      retry_timeout_(this) {}

Forwarder::~Forwarder() {
  // Never touches stream_: the codec may already be gone.
  DropUpstream();
  CompleteFilters();  // a tunnel, or an exchange that ended without a word to this handler
  if (upstream_head_.capacity() > std::string().capacity()) {
    context_->GiveBuffer(std::move(upstream_head_));
  }
}

void Forwarder::ArmIdleTimeout() {
  const TimeoutsConfig& timeouts = snapshot_->config->timeouts;
  idle_timeout_.Arm(context_->Timeouts(tunnel_ ? timeouts.tunnel_idle : timeouts.body_idle));
}

bool Forwarder::Idempotent() const { return request_->idempotent(); }

// --- Request -----------------------------------------------------------------------------

void Forwarder::OnRequestHead(RequestHeadPtr head) {
  request_ = std::move(head);
  filter_.context.started_ns = context_->clock().MonotonicNanos();
  const Config& config = *snapshot_->config;
  steering_ = snapshot_->steering;  // one table for the whole request
  decision_label_ = steering_ ? static_cast<uint8_t>(SteeringReason::kLocal) : kDecisionOff;
  RequestVerdict verdict = NormalizeRequest(request_.get(), config.proxy.path);
  if (!verdict.ok()) {
    LOG_INFO("downstream %s: %d %s", stream_->downstream().client.ToString(), verdict.status,
             verdict.reason);
    RespondLocal(verdict.status, absl::StrFormat("%d %s: %s\n", verdict.status,
                                                 ReasonPhrase(verdict.status), verdict.reason));
    return;
  }
  if (IsServingTarget(request_->target)) {
    AnswerServing();
    return;
  }
  filter_.context.client = stream_->downstream().client;
  if (steering_) CheckHopMarker();  // may put the real client of a tunneled request there
  from_trusted_proxy_ =
      !tunneled_in_ && config.proxy.trusted_proxies.Contains(stream_->downstream().client);
  filter_.context.trusted_headers =
      tunneled_in_ || config.proxy.trust_client_headers || from_trusted_proxy_;
  // Before X-Forwarded-For gets this node's peer appended (PrepareUpstreamRequest, below).
  if (steering_) {
    cohort_client_ =
        CohortClientAddress(request_->headers, filter_.context.client, from_trusted_proxy_);
  }
  if (tunneled_in_ && request_->method == HttpMethod::kGet && request_->path == "/v1/health") {
    // A peer region's controller polls this node's view (proxy/control/region_health.h): answered
    // whatever the routes say, and never forwarded to an origin.
    std::shared_ptr<const std::string> doc =
        snapshot_->node_health ? *snapshot_->node_health : nullptr;
    HeaderMap headers;
    headers.Add("Content-Type", "application/json");
    if (doc) {
      // Signed for the poll that asked: a peer believes no report it cannot verify.
      const SteeringTable& table = *steering_;
      headers.Add(kHealthMacHeader,
                  config.steering.signer->MacHex(HealthReplyMessage(
                      table.region(table.local()).name, hop_from_, hop_nonce_, *doc)));
      RespondLocal(200, *doc, &headers);
    } else {
      RespondLocal(503, "{\"error\": \"starting\", \"ready\": false}\n", &headers);
    }
    return;
  }
  const RouteConfig* route = snapshot_->router.Match(request_->host, request_->path);
  if (!route) {
    RespondLocal(404, "404 Not Found: no route for this host and path\n");
    return;
  }
  cluster_ = local_cluster_ = snapshot_->clusters[route->cluster_index].get();
  route_ = static_cast<int>(route - config.routes.data());
  // An upgrade request is all head; what follows a 101 is the tunnel, not its body.
  if (request_->upgrade) request_complete_ = true;
  PrepareUpstreamRequest(*request_, config.proxy, stream_->downstream(), context_->Random(),
                         context_->Random(), tunneled_in_);
  if (request_->has_body()) idle_timeout_.Arm(context_->Timeouts(config.timeouts.body_idle));

  size_t route_index = static_cast<size_t>(route - config.routes.data());
  filter_.head = request_.get();
  filter_.resume = this;
  filter_.context.route_index = route_index;
  filter_.context.cluster_index = route->cluster_index;
  run_.Start(&snapshot_->chains[route_index]);
  AfterRequestFilters(run_.RunRequestHead(filter_));
}

void Forwarder::AnswerServing() {
  HeaderMap headers;
  headers.Add("Cache-Control", "no-store");
  if (request_->method != HttpMethod::kGet && request_->method != HttpMethod::kHead) {
    headers.Add("Allow", "GET, HEAD");
    RespondLocal(405, "405 Method Not Allowed: GET or HEAD\n", &headers);
    return;
  }
  const ServingState state =
      DecideServing(steering_.get(), snapshot_->draining && *snapshot_->draining);
  headers.Add("Content-Type", "application/json");
  // A HEAD response carries no body (over HTTP/2 none may be sent); the status says it all.
  const std::string body = ServingJson(state);
  RespondLocal(state.status(), request_->method == HttpMethod::kHead ? "" : body, &headers);
}

void Forwarder::AfterRequestFilters(FilterStatus status) {
  if (!stream_) return;
  switch (status) {
    case FilterStatus::kPause:
      filters_waiting_ = true;  // body bytes wait in pending_body_ meanwhile
      return;
    case FilterStatus::kRespond: {
      filters_waiting_ = false;
      outcome_.answered_by_filter = true;
      FilterReply& reply = filter_.reply;
      if (reply.status < 200 || reply.status > 599) reply.status = 500;
      RespondLocal(reply.status, reply.body, &reply.headers);
      return;
    }
    case FilterStatus::kContinue:
    case FilterStatus::kRetry:
      filters_waiting_ = false;
      if (steering_) Steer();
      Dispatch(false);
      return;
  }
}

void Forwarder::Resume(FilterStatus status) {
  if (!filters_waiting_ || !stream_) return;
  AfterRequestFilters(run_.Resume(filter_, status));
}

RequestFacts Forwarder::Facts() const {
  RequestFacts facts;
  facts.idempotent = Idempotent();
  facts.client_saw_response = !stream_ || stream_->response_started();
  facts.upgraded = tunnel_;
  facts.body_at_hand = replayable_;
  facts.attempts = filter_.context.attempts;
  facts.resent = resent_;
  facts.default_retries = route_ >= 0 && snapshot_->default_retries[static_cast<size_t>(route_)];
  facts.tunneled = peer_region_ >= 0;
  facts.may_fail_over =
      steering_ && snapshot_->config->steering.failover && !tunneled_in_ && !failed_over_;
  return facts;
}

bool Forwarder::TakeSteps(const NextSteps& next, FilterVerdict filters, ResponseHead* head,
                          Step* taken) {
  bool filters_wait = filters == FilterVerdict::kRetry;  // for a retry, or to hear there is none
  for (uint8_t i = 0; i + 1 < next.count; ++i) {
    const Step step = next.steps[i];
    if (step != Step::kRetry && filters_wait) {
      filters_wait = false;
      head ? run_.FinishResponseHead(filter_, *head) : run_.FinishUpstreamError(filter_);
    }
    const bool started = step == Step::kRetry        ? Retry(next.reached_origin)
                         : step == Step::kNextRegion ? FallBack(next.reached_origin)
                         : step == Step::kFailover   ? FailOver(next.reached_origin)
                                                     : false;
    if (started) {
      *taken = step;
      return true;
    }
  }
  if (filters_wait)
    head ? run_.FinishResponseHead(filter_, *head) : run_.FinishUpstreamError(filter_);
  return false;
}

bool Forwarder::AdmitRetry(bool reached_origin, ClusterRuntime* on) {
  if (retry_slot_.held() || !reached_origin) return true;
  // The budget keeps retries from multiplying an outage: a denied retry is an answer.
  if (!on->AdmitRetry()) {
    LOG_DEBUG("%s %s%s: retry budget exhausted for cluster %s", request_->method_text,
              request_->authority, request_->path, on->config.name);
    return false;
  }
  retry_slot_.Take(on);
  return true;
}

bool Forwarder::Retry(bool reached_origin) {
  if (!AdmitRetry(reached_origin, cluster_)) return false;
  RecordRetry();
  DropUpstream();
  response_started_ = false;
  int64_t delay_ns = filter_.context.retry_delay_ns;
  filter_.context.retry_delay_ns = 0;
  if (delay_ns > 0) {
    retry_timeout_.Arm(context_->Timeouts(absl::Nanoseconds(delay_ns)));
  } else {
    Dispatch(false);
  }
  return true;
}

void Forwarder::CompleteFilters() {
  RecordExchange();
  ReleaseCluster();
  if (!run_.active()) return;
  outcome_.latency_ns = context_->clock().MonotonicNanos() - filter_.context.started_ns;
  run_.Complete(filter_, outcome_);
}

void Forwarder::ReleaseCluster() {
  retry_timeout_.Disarm();
  connect_slot_.Release();
  retry_slot_.Release();
  request_slot_.Release();
}

void Forwarder::Dispatch(bool fresh_connection) {
  if (!request_slot_.held()) {
    if (const char* full = cluster_->AdmitRequest()) {
      Overflow(full);
      return;
    }
    request_slot_.Take(cluster_);
  }
  std::shared_ptr<UpstreamEndpoint> previous = endpoint_;
  if (endpoint_counted_) {
    endpoint_->EndRequest();
    endpoint_counted_ = false;
  }
  if (!fresh_connection) {
    UpstreamEndpoint* picked = cluster_->balancer.Pick(
        context_->Random(), context_->clock().MonotonicNanos(), previous.get());
    if (!picked) {
      Step taken;
      const NextSteps next = DecideNextSteps({.end = AttemptEnd::kNoEndpoint}, Facts());
      if (TakeSteps(next, FilterVerdict::kNotAsked, nullptr, &taken)) return;
      Fail(503, "no endpoint", "the cluster has no endpoint to use (standbys or unresolved names)");
      return;
    }
    endpoint_ = picked->shared_from_this();
  }
  endpoint_->BeginRequest();
  attempt_started_ns_ = context_->clock().MonotonicNanos();
  ++filter_.context.attempts;
  filter_.context.last_failure = UpstreamFailure::kNone;
  outcome_.upstream_failed = false;
  outcome_.timed_out = false;
  endpoint_counted_ = true;
  upstream_ready_ = false;

  // A forwarder lives for one request: its head goes into a buffer of the loop's pool.
  if (upstream_head_.capacity() <= std::string().capacity()) {
    upstream_head_ = context_->TakeBuffer();
  }
  upstream_head_.clear();
  SerializeUpstreamRequest(*request_, endpoint_->name(), &upstream_head_);
  if (peer_region_ >= 0) AppendHopMarker();

  if (!fresh_connection) {
    if (UpstreamConnection* pooled = endpoint_->TakeIdle()) {
      pooled->Attach(this);
      upstream_ = pooled;
      OnUpstreamReady();
      return;
    }
  }
  if (endpoint_->http2()) {
    // Multiplexed: a stream on an open HTTP/2 connection, or on one that is connecting.
    bool ready = false;
    bool opened = false;
    int error = 0;
    upstream_ = endpoint_->OpenHttp2Stream(this, &ready, &opened, &error);
    if (!upstream_) {
      AttemptFailed(502, {.end = AttemptEnd::kConnect}, "connect failed", uv_strerror(error));
      return;
    }
    if (opened && cluster_->cell) cluster_->cell->connections.Add();
    if (ready) {
      OnUpstreamReady();
      return;
    }
    connect_slot_.Take(cluster_);
    connect_timeout_.Arm(context_->Timeouts(cluster_->config.connect_timeout));
    return;
  }
  if (const char* full = cluster_->AdmitConnect()) {
    Overflow(full);
    return;
  }
  int error = 0;
  upstream_ = endpoint_->Connect(this, &error);
  if (!upstream_) {
    AttemptFailed(502, {.end = AttemptEnd::kConnect}, "connect failed", uv_strerror(error));
    return;
  }
  if (cluster_->cell) cluster_->cell->connections.Add();
  connect_slot_.Take(cluster_);
  connect_timeout_.Arm(context_->Timeouts(cluster_->config.connect_timeout));
}

void Forwarder::OnUpstreamConnected() {
  connect_timeout_.Disarm();
  connect_slot_.Release();
  OnUpstreamReady();
}

void Forwarder::OnUpstreamReady() {
  upstream_ready_ = true;
  upstream_->SendRequestHead(upstream_head_, request_->method, request_->framing,
                             request_->upgrade);
  upstream_reused_ = upstream_->reused();
  if (!replay_.empty()) upstream_->SendBody(replay_);  // a replay: what the last one was sent
  if (!KeepReplay()) {
    // Nothing can retry this attempt: a fresh connection is not stale, and no filter asked.
    std::string().swap(replay_);
    if (body_sent_ > 0) replayable_ = false;
  }
  if (!pending_body_.empty()) {
    std::string body;
    body.swap(pending_body_);
    SendBodyUpstream(body);
  }
  if (request_complete_) {
    upstream_->EndRequest();
  } else if (request_->expect_continue && body_sent_ == 0) {
    stream_->SendContinue();  // the client waits for this before sending its body
  }
  if (downstream_paused_ && upstream_->queued_bytes() <= kOutputHighWater) {
    downstream_paused_ = false;
    stream_->ResumeRequestBody();
  }
  MaybeArmResponseTimeout();
}

void Forwarder::SendBodyUpstream(std::string_view data) {
  body_sent_ += data.size();
  if (replayable_) {
    if (KeepReplay() && replay_.size() + data.size() <= ReplayLimit()) {
      replay_.append(data);
    } else {
      replayable_ = false;  // too big (or not kept): this request is sent once
      std::string().swap(replay_);
    }
  }
  run_.RunRequestBody(filter_, data);
  upstream_->SendBody(data);
}

void Forwarder::OnRequestBody(std::string_view data) {
  if (response_done_ && !tunnel_) return;
  bytes_in_ += data.size();
  ArmIdleTimeout();
  if (upstream_ && upstream_ready_) {
    SendBodyUpstream(data);
    if (upstream_->queued_bytes() > kOutputHighWater && !downstream_paused_ && stream_) {
      downstream_paused_ = true;
      stream_->PauseRequestBody();
    }
    return;
  }
  // Not connected yet (or between a failed attempt and its replay): hold the bytes.
  pending_body_.append(data);
  if (pending_body_.size() > kOutputHighWater && !downstream_paused_ && stream_) {
    downstream_paused_ = true;
    stream_->PauseRequestBody();
  }
}

void Forwarder::OnRequestEnd() {
  if (tunnel_) {
    tunnel_client_done_ = true;
    if (upstream_) upstream_->ShutdownWrite();
    return;
  }
  request_complete_ = true;
  if (!response_started_ && !request_->has_body()) idle_timeout_.Disarm();
  if (upstream_ && upstream_ready_) {
    upstream_->EndRequest();
    MaybeArmResponseTimeout();
  }
}

void Forwarder::OnUpstreamDrained() {
  // The origin took what was queued: progress, so the idle clock restarts.
  if (idle_timeout_.armed()) ArmIdleTimeout();
  if (downstream_paused_ && stream_) {
    downstream_paused_ = false;
    stream_->ResumeRequestBody();
  }
}

void Forwarder::MaybeArmResponseTimeout() {
  // The origin gets its time once it has the whole request; an upload is covered by the body
  // idle timeout instead.
  if (request_complete_ && upstream_ready_ && !response_started_ && !tunnel_) {
    idle_timeout_.Disarm();
    absl::Duration timeout = cluster_->config.response_timeout;
    if (filter_.context.per_try_timeout_ns > 0) {
      timeout = std::min(timeout, absl::Nanoseconds(filter_.context.per_try_timeout_ns));
    }
    response_timeout_.Arm(context_->Timeouts(timeout));
  }
}

// --- Response ----------------------------------------------------------------------------

void Forwarder::OnUpstreamHead(ResponseHeadPtr head) {
  response_timeout_.Disarm();
  response_started_ = true;
  RecordUpstreamHead(head->status);
  cluster_->ReportOutcome(*endpoint_, head->status >= 500, context_->clock().MonotonicNanos());
  if (!stream_) return;
  const Config& config = *snapshot_->config;
  std::string_view peer_says;
  if (peer_region_ >= 0) peer_says = head->headers.Get("sluice-region").value_or("");
  std::string peer_region(peer_says);  // the header storage is rewritten below
  PrepareDownstreamResponse(*head, config.proxy);
  if (steering_) AddRegionHeader(*head, peer_region);
  const FilterVerdict filters =
      head->status != 101 && run_.RunResponseHead(filter_, *head) == FilterStatus::kRetry
          ? FilterVerdict::kRetry
          : FilterVerdict::kNoRetry;
  if (ResponseMayMove(head->status, filters)) {
    RequestFacts facts = Facts();
    facts.filters = filters;
    Step taken;
    const NextSteps next =
        DecideNextSteps({.end = AttemptEnd::kResponse, .status = head->status}, facts);
    if (TakeSteps(next, filters, head.get(), &taken)) return;
  }
  if (!filter_.context.keep_request_body) std::string().swap(replay_);
  if (head->status == 101) {
    tunnel_ = true;
    upstream_->StartTunnel();
    idle_timeout_.Arm(context_->Timeouts(config.timeouts.tunnel_idle));
  } else {
    idle_timeout_.Arm(context_->Timeouts(config.timeouts.body_idle));
  }
  outcome_.status = head->status;
  stream_->SendResponseHead(*head, false);
}

void Forwarder::OnUpstreamBody(std::string_view data) {
  if (!stream_ || response_done_) return;
  ArmIdleTimeout();
  run_.RunResponseBody(filter_, data);
  bytes_out_ += data.size();
  stream_->SendResponseBody(data, false);
  if (stream_ && upstream_ && !upstream_paused_ && stream_->OutputFull()) {
    upstream_paused_ = true;
    upstream_->PauseReading();
  }
}

void Forwarder::OnDownstreamDrained() {
  // The client took what was queued (a slow reader is still a reader).
  if (idle_timeout_.armed()) ArmIdleTimeout();
  if (upstream_paused_ && upstream_) {
    upstream_paused_ = false;
    upstream_->ResumeReading();
  }
}

void Forwarder::OnUpstreamEnd() {
  if (!stream_) return;
  if (tunnel_) {
    response_done_ = true;
    stream_->SendResponseBody({}, true);  // half-close toward the client
    return;
  }
  idle_timeout_.Disarm();
  // Reusable only if the origin has the whole request (it may answer before reading it all).
  ReleaseUpstream(request_complete_);
  response_done_ = true;
  ServerStream* stream = stream_;
  stream_ = nullptr;  // the exchange is over for this handler; it is deleted later
  if (!trailers_sent_) stream->SendResponseBody({}, true);
  CompleteFilters();
}

void Forwarder::OnUpstreamTrailers(const HeaderMap& trailers) {
  if (!stream_ || response_done_ || tunnel_) return;
  trailers_sent_ = true;
  stream_->SendResponseTrailers(trailers);  // ends the response; OnUpstreamEnd follows
}

namespace {

AttemptEnd EndOf(UpstreamError error) {
  switch (error) {
    case UpstreamError::kConnectFailed:
      return AttemptEnd::kConnect;
    case UpstreamError::kClosedBeforeResponse:
      return AttemptEnd::kClosed;
    case UpstreamError::kClosedDuringResponse:
      return AttemptEnd::kReset;
    case UpstreamError::kBadResponse:
      return AttemptEnd::kBadResponse;
    case UpstreamError::kHttp2Refused:
      return AttemptEnd::kHttp2Refused;
  }
  return AttemptEnd::kReset;
}

// What the filters and the metrics are told failed.
UpstreamFailure FailureOf(AttemptEnd end) {
  switch (end) {
    case AttemptEnd::kConnect:
    case AttemptEnd::kNoEndpoint:
      return UpstreamFailure::kConnect;
    case AttemptEnd::kBadResponse:
      return UpstreamFailure::kBadResponse;
    case AttemptEnd::kTimeout:
      return UpstreamFailure::kTimeout;
    case AttemptEnd::kResponse:
      return UpstreamFailure::kNone;
    case AttemptEnd::kHttp2Refused:
    case AttemptEnd::kClosed:
    case AttemptEnd::kReset:
      break;
  }
  return UpstreamFailure::kReset;
}

}  // namespace

void Forwarder::OnUpstreamError(UpstreamError error, int detail, const char* reason) {
  // The connection is closing itself; it is no longer ours.
  upstream_ = nullptr;
  connect_timeout_.Disarm();
  response_timeout_.Disarm();
  if (!stream_) return;
  const AttemptFacts attempt{.end = EndOf(error),
                             .request_sent = upstream_ready_,
                             .pooled = upstream_reused_,
                             .response_began = response_started_};
  switch (DecideNextSteps(attempt, Facts()).last()) {
    case Step::kResend:
      if (error == UpstreamError::kHttp2Refused) {
        // Nothing reached the origin; the endpoint speaks HTTP/1.1 from now on.
        LOG_DEBUG("upstream %s: %s; sending over HTTP/1.1", endpoint_->name(), reason);
      } else {
        LOG_DEBUG("upstream %s: pooled connection was closed (%s); retrying on a new one",
                  endpoint_->name(), reason);
      }
      resent_ = true;
      connect_slot_.Release();
      // Body bytes already sent are in replay_; the rest are in pending_body_.
      Dispatch(true);
      return;
    case Step::kReset: {
      LOG_WARN("upstream %s: %s (%s) after the response began; aborting %s %s%s", endpoint_->name(),
               UpstreamErrorText(error), reason, request_->method_text, request_->authority,
               request_->path);
      response_done_ = true;
      outcome_.upstream_failed = true;
      outcome_.status = 0;
      ServerStream* stream = stream_;
      stream_ = nullptr;
      stream->Reset();
      CompleteFilters();
      return;
    }
    default:
      // `reason` says more than the code when there is one (a TLS verification failure, say).
      AttemptFailed(502, attempt, UpstreamErrorText(error),
                    reason && *reason ? reason : uv_strerror(detail));
      return;
  }
}

void Forwarder::AttemptFailed(int status, const AttemptFacts& attempt, const char* what,
                              const char* detail) {
  DropUpstream();
  connect_slot_.Release();
  if (endpoint_) cluster_->ReportOutcome(*endpoint_, true, context_->clock().MonotonicNanos());
  const UpstreamFailure kind = FailureOf(attempt.end);
  RecordUpstreamFailure(kind);
  if (status == 504) {
    outcome_.timed_out = true;
  } else {
    outcome_.upstream_failed = true;
  }
  filter_.context.last_failure = kind;
  // The filters first: what the request is is read after them (one may have added an
  // Idempotency-Key, say).
  const FilterVerdict filters = run_.RunUpstreamError(filter_) == FilterStatus::kRetry
                                    ? FilterVerdict::kRetry
                                    : FilterVerdict::kNoRetry;
  RequestFacts facts = Facts();
  facts.filters = filters;
  Step taken;
  if (TakeSteps(DecideNextSteps(attempt, facts), facts.filters, nullptr, &taken)) {
    LOG_DEBUG("%s %s%s: %s (%s); %s", request_->method_text, request_->authority, request_->path,
              what, detail,
              taken != Step::kRetry                    ? "steered elsewhere"
              : facts.filters == FilterVerdict::kRetry ? "a filter asked for another attempt"
                                                       : "once more on another endpoint");
    return;
  }
  Fail(status, what, detail);
}

// --- Ends --------------------------------------------------------------------------------

void Forwarder::OnTimeout(Timeout* which) {
  if (which == &retry_timeout_) {
    if (stream_) Dispatch(false);  // the backoff before another attempt is over
  } else if (which == &connect_timeout_) {
    AttemptFailed(504, {.end = AttemptEnd::kConnect}, "connect timed out",
                  "no connection within the connect timeout");
  } else if (which == &response_timeout_) {
    AttemptFailed(504, {.end = AttemptEnd::kTimeout, .request_sent = true}, "response timed out",
                  "no response within the response timeout");
  } else if (which == &idle_timeout_) {
    DropUpstream();
    if (!response_started_ && !request_complete_) {
      // The client stopped sending its body.
      if (stream_) {
        LOG_INFO("downstream %s: 408 request body stalled",
                 stream_->downstream().client.ToString());
        RespondLocal(408, "408 Request Timeout: request body stalled\n");
      }
      return;
    }
    Fail(504, tunnel_ ? "tunnel idle" : "body stalled", "no data within the idle timeout");
  }
}

void Forwarder::OnStreamReset(StreamResetReason reason) {
  stream_ = nullptr;
  connect_timeout_.Disarm();
  response_timeout_.Disarm();
  idle_timeout_.Disarm();
  DropUpstream();
  outcome_.cancelled = true;
  CompleteFilters();
}

void Forwarder::ReleaseUpstream(bool reusable) {
  if (endpoint_counted_) {
    endpoint_->EndRequest();
    endpoint_counted_ = false;
  }
  if (!upstream_) return;
  UpstreamStream* upstream = upstream_;
  upstream_ = nullptr;
  if (upstream_paused_) upstream->ResumeReading();
  if (reusable) {
    upstream->Release();
  } else {
    upstream->Close();
  }
}

void Forwarder::DropUpstream() { ReleaseUpstream(false); }

void Forwarder::Fail(int status, const char* what, const char* detail) {
  if (!stream_) return;
  if (response_started_ || stream_->response_started()) {
    response_done_ = true;
    outcome_.status = 0;
    ServerStream* stream = stream_;
    stream_ = nullptr;
    stream->Reset();
    CompleteFilters();
    return;
  }
  uint64_t held_back = 0;
  if (context_->request_warnings().Allow(context_->clock().MonotonicNanos(), &held_back)) {
    LOG_WARN(
        "%d %s %s%s upstream %s: %s: %s%s", status, request_->method_text, request_->authority,
        request_->path, endpoint_ ? endpoint_->name() : std::string("-"), what, detail,
        held_back == 0 ? std::string() : absl::StrFormat(" (and %d more not logged)", held_back));
  }
  DropUpstream();
  RespondLocal(status, absl::StrFormat("%d %s\n", status, ReasonPhrase(status)));
}

void Forwarder::Overflow(const char* why) {
  // Counted by the cluster; under a storm a warning per request would flood the log.
  LOG_DEBUG("503 %s %s%s: %s", request_->method_text, request_->authority, request_->path, why);
  DropUpstream();
  HeaderMap headers;
  headers.Add("Retry-After", "1");
  RespondLocal(503, "503 Service Unavailable\n", &headers);
}

void Forwarder::RespondLocal(int status, std::string_view body, const HeaderMap* headers) {
  if (!stream_) return;
  connect_timeout_.Disarm();
  response_timeout_.Disarm();
  idle_timeout_.Disarm();
  response_done_ = true;
  ResponseHeadPtr head = MakeResponseHead();
  head->status = status;
  bool has_type = false;
  if (headers) {
    for (size_t i = 0; i < headers->size(); ++i) {
      head->headers.Add(headers->name(i), headers->value(i));
      has_type = has_type || EqualsIgnoreCase(headers->name(i), "content-type");
    }
  }
  if (!has_type) head->headers.Add("Content-Type", "text/plain");
  if (steering_) AddRegionHeader(head->headers);
  head->framing = BodyFraming::kContentLength;
  head->content_length = body.size();
  outcome_.status = status;
  ServerStream* stream = stream_;
  stream_ = nullptr;  // the exchange is over for this handler; it is deleted later
  if (status >= 400 && status < 500 && status != 404 && !outcome_.answered_by_filter) {
    stream->CloseAfterResponse();  // a malformed request: the connection is not trusted
  }
  bytes_out_ += body.size();
  stream->SendResponseHead(*head, false);
  stream->SendResponseBody(body, true);
  CompleteFilters();
}

}  // namespace sluice
