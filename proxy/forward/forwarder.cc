#include "proxy/forward/forwarder.h"

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/strings.h"
#include "proxy/event/recycler.h"
#include "proxy/forward/header_rewriter.h"
#include "proxy/forward/request_normalizer.h"

namespace sluice {
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
      attempt_(context, this, &filter_.context),
      idle_timeout_(this),
      retry_timeout_(this),
      steering_(context, snapshot_.get()) {}

Forwarder::~Forwarder() {
  // Never touches stream_: the codec may already be gone. The attempt closes a connection it
  // still holds (a tunnel's) as it goes.
  CompleteFilters();  // a tunnel, or an exchange that ended without a word to this handler
}

void Forwarder::ArmIdleTimeout() {
  const TimeoutsConfig& timeouts = snapshot_->config->timeouts;
  idle_timeout_.Arm(context_->Timeouts(tunnel_ ? timeouts.tunnel_idle : timeouts.body_idle));
}

// --- Request -----------------------------------------------------------------------------

void Forwarder::OnRequestHead(RequestHeadPtr head) {
  request_ = std::move(head);
  filter_.context.started_ns = context_->clock().MonotonicNanos();
  const Config& config = *snapshot_->config;
  steering_.Start();  // one table for the whole request
  RequestVerdict verdict = NormalizeRequest(request_.get(), config.proxy.path);
  if (!verdict.ok()) {
    LOG_INFO("downstream %s: %d %s", stream_->downstream().client.ToString(), verdict.status,
             verdict.reason);
    RespondLocal(verdict.status, absl::StrFormat("%d %s: %s\n", verdict.status,
                                                 ReasonPhrase(verdict.status), verdict.reason));
    return;
  }
  if (IsServingTarget(request_->target)) {
    AnswerBuiltin(false);
    return;
  }
  filter_.context.client = stream_->downstream().client;
  const SocketAddress& peer = stream_->downstream().client;
  // May put the real client of a tunneled request in the filters' context.
  if (steering_.on()) steering_.CheckHopMarker(*request_, peer, &filter_.context.client);
  const bool tunneled_in = steering_.tunneled_in();
  from_trusted_proxy_ = !tunneled_in && config.proxy.trusted_proxies.Contains(peer);
  filter_.context.trusted_headers =
      tunneled_in || config.proxy.trust_client_headers || from_trusted_proxy_;
  // Before X-Forwarded-For gets this node's peer appended (PrepareUpstreamRequest, below).
  if (steering_.on()) {
    steering_.set_cohort_client(
        CohortClientAddress(request_->headers, filter_.context.client, from_trusted_proxy_));
  }
  if (IsPeerHealthRequest(*request_, tunneled_in)) {
    AnswerBuiltin(true);
    return;
  }
  const RouteConfig* route = snapshot_->router.Match(request_->host, request_->path);
  if (!route) {
    RespondLocal(404, "404 Not Found: no route for this host and path\n");
    return;
  }
  local_cluster_ = snapshot_->clusters[route->cluster_index].get();
  attempt_.MoveTo(local_cluster_);
  route_ = static_cast<int>(route - config.routes.data());
  // An upgrade request is all head; what follows a 101 is the tunnel, not its body.
  if (request_->upgrade) request_complete_ = true;
  PrepareUpstreamRequest(*request_, config.proxy, stream_->downstream(), context_->Random(),
                         context_->Random(), tunneled_in);
  if (request_->has_body()) idle_timeout_.Arm(context_->Timeouts(config.timeouts.body_idle));

  size_t route_index = static_cast<size_t>(route - config.routes.data());
  filter_.head = request_.get();
  filter_.resume = this;
  filter_.context.route_index = route_index;
  filter_.context.cluster_index = route->cluster_index;
  run_.Start(&snapshot_->chains[route_index]);
  AfterRequestFilters(run_.RunRequestHead(filter_));
}

void Forwarder::AnswerBuiltin(bool peer_health) {
  LocalAnswer answer;
  if (peer_health) {
    std::shared_ptr<const std::string> view =
        snapshot_->node_health ? *snapshot_->node_health : nullptr;
    answer = AnswerPeerHealth(view.get(), *snapshot_->config->steering.signer, *steering_.table(),
                              steering_.hop_from(), steering_.hop_nonce());
  } else {
    answer = AnswerServing(request_->method, steering_.table(),
                           snapshot_->draining && *snapshot_->draining);
  }
  RespondLocal(answer.status, answer.body, &answer.headers);
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
      if (steering_.on()) {
        const int region = steering_.Steer(*request_, &filter_.context, *local_cluster_);
        if (region >= 0) UseRegion(region);
      }
      Dispatch(false);
      return;
  }
}

void Forwarder::Resume(FilterStatus status) {
  if (!filters_waiting_ || !stream_) return;
  AfterRequestFilters(run_.Resume(filter_, status));
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
  attempt_.ReleaseSlots();
  retry_slot_.Release();
}

void Forwarder::Dispatch(bool same_endpoint) {
  const UpstreamAttempt::Start start = attempt_.Begin(*request_, same_endpoint);
  switch (start.result) {
    case UpstreamAttempt::Start::kStarted:
      return;
    case UpstreamAttempt::Start::kFull:
      Overflow(start.full);
      return;
    case UpstreamAttempt::Start::kNoEndpoint: {
      Step taken;
      const NextSteps next = DecideNextSteps({.end = AttemptEnd::kNoEndpoint}, Facts());
      if (TakeSteps(next, FilterVerdict::kNotAsked, nullptr, &taken)) return;
      Fail(503, "no endpoint", "the cluster has no endpoint to use (standbys or unresolved names)");
      return;
    }
    case UpstreamAttempt::Start::kConnectFailed:
      AttemptFailed(502, {.end = AttemptEnd::kConnect}, "connect failed", uv_strerror(start.error));
      return;
  }
}

void Forwarder::OnAttemptBegins(const UpstreamEndpoint& endpoint, std::string* head) {
  attempt_started_ns_ = context_->clock().MonotonicNanos();
  ++filter_.context.attempts;
  filter_.context.last_failure = UpstreamFailure::kNone;
  outcome_.upstream_failed = false;
  outcome_.timed_out = false;
  SerializeUpstreamRequest(*request_, endpoint.name(), head);
  if (steering_.peer_region() >= 0) steering_.AppendHopMarker(*request_, endpoint.name(), head);
}

void Forwarder::OnAttemptReady() {
  if (!pending_body_.empty()) {
    std::string body;
    body.swap(pending_body_);
    SendBodyUpstream(body);
  }
  if (request_complete_) {
    attempt_.EndRequest();
  } else if (request_->expect_continue && attempt_.body_sent() == 0) {
    stream_->SendContinue();  // the client waits for this before sending its body
  }
  if (downstream_paused_ && attempt_.queued_bytes() <= kOutputHighWater) {
    downstream_paused_ = false;
    stream_->ResumeRequestBody();
  }
  MaybeArmResponseTimeout();
}

void Forwarder::SendBodyUpstream(std::string_view data) {
  attempt_.SendBody(data);  // kept for a replay as the filters wished before these bytes
  run_.RunRequestBody(filter_, data);
}

void Forwarder::OnRequestBody(std::string_view data) {
  if (response_done_ && !tunnel_) return;
  bytes_in_ += data.size();
  ArmIdleTimeout();
  if (attempt_.ready()) {
    SendBodyUpstream(data);
    if (attempt_.queued_bytes() > kOutputHighWater && !downstream_paused_ && stream_) {
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
    attempt_.ShutdownWrite();
    return;
  }
  request_complete_ = true;
  if (!response_started_ && !request_->has_body()) idle_timeout_.Disarm();
  if (attempt_.ready()) {
    attempt_.EndRequest();
    MaybeArmResponseTimeout();
  }
}

void Forwarder::OnAttemptDrained() {
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
  if (request_complete_ && attempt_.ready() && !response_started_ && !tunnel_) {
    idle_timeout_.Disarm();
    attempt_.ArmResponseTimeout();
  }
}

// --- Response ----------------------------------------------------------------------------

void Forwarder::OnAttemptHead(ResponseHeadPtr head) {
  response_started_ = true;
  RecordUpstreamHead(head->status);
  if (!stream_) return;
  const Config& config = *snapshot_->config;
  std::string_view peer_says;
  if (steering_.peer_region() >= 0) peer_says = head->headers.Get("sluice-region").value_or("");
  std::string peer_region(peer_says);  // the header storage is rewritten below
  PrepareDownstreamResponse(*head, config.proxy);
  if (steering_.on()) steering_.AddRegionHeader(*head, peer_region);
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
  attempt_.ForgetBody();
  if (head->status == 101) {
    tunnel_ = true;
    attempt_.StartTunnel();
    idle_timeout_.Arm(context_->Timeouts(config.timeouts.tunnel_idle));
  } else {
    idle_timeout_.Arm(context_->Timeouts(config.timeouts.body_idle));
  }
  outcome_.status = head->status;
  stream_->SendResponseHead(*head, false);
}

void Forwarder::OnAttemptBody(std::string_view data) {
  if (!stream_ || response_done_) return;
  ArmIdleTimeout();
  run_.RunResponseBody(filter_, data);
  bytes_out_ += data.size();
  stream_->SendResponseBody(data, false);
  if (stream_ && stream_->OutputFull()) attempt_.PauseReading();
}

void Forwarder::OnDownstreamDrained() {
  // The client took what was queued (a slow reader is still a reader).
  if (idle_timeout_.armed()) ArmIdleTimeout();
  attempt_.ResumeReading();
}

void Forwarder::OnAttemptEnd() {
  if (!stream_) return;
  if (tunnel_) {
    response_done_ = true;
    stream_->SendResponseBody({}, true);  // half-close toward the client
    return;
  }
  idle_timeout_.Disarm();
  // Reusable only if the origin has the whole request (it may answer before reading it all).
  attempt_.Finish(request_complete_);
  response_done_ = true;
  ServerStream* stream = stream_;
  stream_ = nullptr;  // the exchange is over for this handler; it is deleted later
  if (!trailers_sent_) stream->SendResponseBody({}, true);
  CompleteFilters();
}

void Forwarder::OnAttemptTrailers(const HeaderMap& trailers) {
  if (!stream_ || response_done_ || tunnel_) return;
  trailers_sent_ = true;
  stream_->SendResponseTrailers(trailers);  // ends the response; OnUpstreamEnd follows
}

// --- Ends --------------------------------------------------------------------------------

void Forwarder::OnTimeout(Timeout* which) {
  if (which == &retry_timeout_) {
    if (stream_) Dispatch(false);  // the backoff before another attempt is over
  } else if (which == &idle_timeout_) {
    attempt_.Drop();
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
  idle_timeout_.Disarm();
  attempt_.Drop();
  outcome_.cancelled = true;
  CompleteFilters();
}

void Forwarder::ResetClient() {
  response_done_ = true;
  outcome_.status = 0;
  ServerStream* stream = stream_;
  stream_ = nullptr;
  stream->Reset();
  CompleteFilters();
}

void Forwarder::Fail(int status, const char* what, const char* detail) {
  if (!stream_) return;
  if (response_started_ || stream_->response_started()) {
    ResetClient();
    return;
  }
  uint64_t held_back = 0;
  if (context_->request_warnings().Allow(context_->clock().MonotonicNanos(), &held_back)) {
    LOG_WARN(
        "%d %s %s%s upstream %s: %s: %s%s", status, request_->method_text, request_->authority,
        request_->path, attempt_.endpoint() ? attempt_.endpoint()->name() : std::string("-"), what,
        detail,
        held_back == 0 ? std::string() : absl::StrFormat(" (and %d more not logged)", held_back));
  }
  attempt_.Drop();
  RespondLocal(status, absl::StrFormat("%d %s\n", status, ReasonPhrase(status)));
}

void Forwarder::Overflow(const char* why) {
  // Counted by the cluster; under a storm a warning per request would flood the log.
  LOG_DEBUG("503 %s %s%s: %s", request_->method_text, request_->authority, request_->path, why);
  attempt_.Drop();
  HeaderMap headers;
  headers.Add("Retry-After", "1");
  RespondLocal(503, "503 Service Unavailable\n", &headers);
}

void Forwarder::RespondLocal(int status, std::string_view body, const HeaderMap* headers) {
  if (!stream_) return;
  attempt_.Drop();
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
  if (steering_.on()) steering_.AddRegionHeader(head->headers);
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
