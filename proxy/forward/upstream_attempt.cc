#include "proxy/forward/upstream_attempt.h"

#include <algorithm>

namespace sluice {

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

UpstreamAttempt::UpstreamAttempt(LoopContext* context, Owner* owner, const FilterContext* wishes)
    : context_(context),
      owner_(owner),
      wishes_(wishes),
      connect_timeout_(this),
      response_timeout_(this) {}

UpstreamAttempt::~UpstreamAttempt() {
  if (upstream_ || endpoint_counted_) Drop();
  ReleaseSlots();
  // A request lives once: its head went into a buffer of the loop's pool.
  if (head_.capacity() > std::string().capacity()) context_->GiveBuffer(std::move(head_));
}

void UpstreamAttempt::MoveTo(ClusterRuntime* cluster) {
  if (cluster == cluster_) return;
  ReleaseSlots();
  cluster_ = cluster;
}

void UpstreamAttempt::ReleaseSlots() {
  connect_slot_.Release();
  request_slot_.Release();
}

UpstreamAttempt::Start UpstreamAttempt::Begin(const RequestHead& request, bool same_endpoint) {
  if (upstream_) Drop();  // the last try's connection, if its owner left it
  request_ = &request;
  if (!request_slot_.held()) {
    if (const char* full = cluster_->AdmitRequest()) return {Start::kFull, full};
    request_slot_.Take(cluster_);
  }
  if (endpoint_counted_) {
    endpoint_->EndRequest();
    endpoint_counted_ = false;
  }
  if (!same_endpoint) {
    UpstreamEndpoint* picked = cluster_->balancer.Pick(
        context_->Random(), context_->clock().MonotonicNanos(), endpoint_.get());
    if (!picked) return {Start::kNoEndpoint};
    endpoint_ = picked->shared_from_this();
  }
  endpoint_->BeginRequest();
  endpoint_counted_ = true;
  ++tries_;
  head_sent_ = false;
  reused_ = false;
  if (head_.capacity() <= std::string().capacity()) head_ = context_->TakeBuffer();
  head_.clear();
  owner_->OnAttemptBegins(*endpoint_, &head_);

  if (!same_endpoint) {
    if (UpstreamConnection* pooled = endpoint_->TakeIdle()) {
      pooled->Attach(this);
      upstream_ = pooled;
      OnReady();
      return {};
    }
  }
  int error = 0;
  if (endpoint_->http2()) {
    // Multiplexed: a stream on an open HTTP/2 connection, or on one that is connecting.
    bool ready = false;
    bool opened = false;
    upstream_ = endpoint_->OpenHttp2Stream(this, &ready, &opened, &error);
    if (!upstream_) return {Start::kConnectFailed, nullptr, error};
    if (opened && cluster_->cell) cluster_->cell->connections.Add();
    if (ready) {
      OnReady();
      return {};
    }
    ArmConnectTimeout();
    return {};
  }
  if (const char* full = cluster_->AdmitConnect()) return {Start::kFull, full};
  upstream_ = endpoint_->Connect(this, &error);
  if (!upstream_) return {Start::kConnectFailed, nullptr, error};
  if (cluster_->cell) cluster_->cell->connections.Add();
  ArmConnectTimeout();
  return {};
}

void UpstreamAttempt::ArmConnectTimeout() {
  connect_slot_.Take(cluster_);
  connect_timeout_.Arm(context_->Timeouts(cluster_->config.connect_timeout));
}

void UpstreamAttempt::OnUpstreamConnected() {
  connect_timeout_.Disarm();
  connect_slot_.Release();
  OnReady();
}

void UpstreamAttempt::OnReady() {
  head_sent_ = true;
  const uint32_t this_try = tries_;
  upstream_->SendRequestHead(head_, request_->method, request_->framing, request_->upgrade);
  // Refused at once (an upgrade to an HTTP/2 origin): the owner heard of it, and may have
  // begun another try already.
  if (tries_ != this_try || !upstream_) return;
  reused_ = upstream_->reused();
  if (!replay_.empty()) upstream_->SendBody(replay_);  // a replay: what the last try was sent
  if (!KeepBody()) {
    // Nothing can retry this try: a fresh connection is not stale, and no filter asked.
    std::string().swap(replay_);
    if (body_sent_ > 0) replayable_ = false;
  }
  owner_->OnAttemptReady();
}

void UpstreamAttempt::SendBody(std::string_view data) {
  body_sent_ += data.size();
  if (replayable_) {
    if (KeepBody() && replay_.size() + data.size() <= wishes_->replay_limit) {
      replay_.append(data);
    } else {
      replayable_ = false;  // too big (or not kept): this request is sent once
      std::string().swap(replay_);
    }
  }
  upstream_->SendBody(data);
}

void UpstreamAttempt::ArmResponseTimeout() {
  absl::Duration timeout = cluster_->config.response_timeout;
  if (wishes_->per_try_timeout_ns > 0) {
    timeout = std::min(timeout, absl::Nanoseconds(wishes_->per_try_timeout_ns));
  }
  response_timeout_.Arm(context_->Timeouts(timeout));
}

void UpstreamAttempt::ForgetBody() {
  if (wishes_->keep_request_body) return;
  std::string().swap(replay_);
  if (body_sent_ > 0) replayable_ = false;
}

void UpstreamAttempt::PauseReading() {
  if (!upstream_ || reading_paused_) return;
  reading_paused_ = true;
  upstream_->PauseReading();
}

void UpstreamAttempt::ResumeReading() {
  if (!upstream_ || !reading_paused_) return;
  reading_paused_ = false;
  upstream_->ResumeReading();
}

void UpstreamAttempt::ReportFailure(int64_t now_ns) {
  if (endpoint_) cluster_->ReportOutcome(*endpoint_, true, now_ns);
}

void UpstreamAttempt::Finish(bool reusable) {
  if (endpoint_counted_) {
    endpoint_->EndRequest();
    endpoint_counted_ = false;
  }
  // Without a connection no timeout is armed and no connect is pending (OnUpstreamError).
  if (!upstream_) return;
  connect_timeout_.Disarm();
  response_timeout_.Disarm();
  connect_slot_.Release();
  UpstreamStream* upstream = upstream_;
  upstream_ = nullptr;
  if (reading_paused_) upstream->ResumeReading();
  reading_paused_ = false;
  if (reusable) {
    upstream->Release();
  } else {
    upstream->Close();
  }
}

// --- What the connection says ----------------------------------------------------------

void UpstreamAttempt::OnUpstreamHead(ResponseHeadPtr head) {
  response_timeout_.Disarm();
  cluster_->ReportOutcome(*endpoint_, head->status >= 500, context_->clock().MonotonicNanos());
  owner_->OnAttemptHead(std::move(head));
}

void UpstreamAttempt::OnUpstreamBody(std::string_view data) { owner_->OnAttemptBody(data); }

void UpstreamAttempt::OnUpstreamTrailers(const HeaderMap& trailers) {
  owner_->OnAttemptTrailers(trailers);
}

void UpstreamAttempt::OnUpstreamEnd() { owner_->OnAttemptEnd(); }

void UpstreamAttempt::OnUpstreamDrained() { owner_->OnAttemptDrained(); }

void UpstreamAttempt::OnUpstreamError(UpstreamError error, int detail, const char* reason) {
  // The connection is closing itself; it is no longer ours.
  upstream_ = nullptr;
  reading_paused_ = false;
  connect_timeout_.Disarm();
  response_timeout_.Disarm();
  connect_slot_.Release();
  owner_->OnAttemptError(error, detail, reason);
}

void UpstreamAttempt::OnTimeout(Timeout* which) {
  if (which == &connect_timeout_) {
    Drop();
    owner_->OnAttemptTimedOut({.end = AttemptEnd::kConnect}, "connect timed out",
                              "no connection within the connect timeout");
  } else if (which == &response_timeout_) {
    Drop();
    owner_->OnAttemptTimedOut({.end = AttemptEnd::kTimeout, .request_sent = true},
                              "response timed out", "no response within the response timeout");
  }
}

}  // namespace sluice
