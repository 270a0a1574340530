// What follows one upstream attempt, carried out (see proxy/forward/forwarder.h): the
// next-step policy (proxy/forward/next_step.h) answers, and this part of the forwarder does it:
// another attempt in the same cluster after the filters' backoff, the next savior or local
// when a tunnel failed, a savior when the local region failed (steering says which region:
// proxy/forward/request_steering.h), the one re-send on a fresh connection, a reset, or the
// failure that stands.
#include "common/log.h"
#include "proxy/forward/forwarder.h"

namespace sluice {

RequestFacts Forwarder::Facts() const {
  RequestFacts facts;
  facts.idempotent = request_->idempotent();
  facts.client_saw_response = !stream_ || stream_->response_started();
  facts.upgraded = tunnel_;
  facts.body_at_hand = attempt_.replayable();
  facts.attempts = filter_.context.attempts;
  facts.resent = resent_;
  facts.default_retries = route_ >= 0 && snapshot_->default_retries[static_cast<size_t>(route_)];
  facts.tunneled = steering_.peer_region() >= 0;
  facts.may_fail_over = steering_.may_fail_over();
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
  if (!AdmitRetry(reached_origin, attempt_.cluster())) return false;
  RecordRetry();
  attempt_.Drop();
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

void Forwarder::UseRegion(int region) {
  steering_.Use(region);
  // What the request holds in the last cluster's accounting goes back.
  attempt_.MoveTo(steering_.ClusterFor(region, local_cluster_));
}

bool Forwarder::Redispatch(bool reached_origin, int region) {
  // The attempt is a retry in the cluster it goes to: its budget decides. The budget of the
  // cluster that failed protects that cluster's origins, which this attempt leaves alone (when
  // a region's origins die, their budget is spent at once and a failover must still go).
  if (!AdmitRetry(reached_origin, steering_.ClusterFor(region, local_cluster_))) return false;
  attempt_.Drop();
  response_started_ = false;
  retry_timeout_.Disarm();
  UseRegion(region);
  Dispatch(false);
  return true;
}

bool Forwarder::FallBack(bool reached_origin) {
  const int next = steering_.AfterTunnelFailed(*request_);
  return next >= 0 && Redispatch(reached_origin, next);
}

bool Forwarder::FailOver(bool reached_origin) {
  const int savior = steering_.PickSavior();
  if (savior < 0 || !Redispatch(reached_origin, savior)) return false;
  steering_.FailedOver(*request_, savior);
  return true;
}

void Forwarder::OnAttemptError(UpstreamError error, int detail, const char* reason) {
  if (!stream_) return;
  const AttemptFacts attempt{.end = EndOf(error),
                             .request_sent = attempt_.head_sent(),
                             .pooled = attempt_.reused(),
                             .response_began = response_started_};
  const std::string& endpoint = attempt_.endpoint()->name();
  switch (DecideNextSteps(attempt, Facts()).last()) {
    case Step::kResend:
      if (error == UpstreamError::kHttp2Refused) {
        // Nothing reached the origin; the endpoint speaks HTTP/1.1 from now on.
        LOG_DEBUG("upstream %s: %s; sending over HTTP/1.1", endpoint, reason);
      } else {
        LOG_DEBUG("upstream %s: pooled connection was closed (%s); retrying on a new one", endpoint,
                  reason);
      }
      resent_ = true;
      // Body bytes already sent are in the attempt's replay; the rest are in pending_body_.
      Dispatch(true);
      return;
    case Step::kReset: {
      LOG_WARN("upstream %s: %s (%s) after the response began; aborting %s %s%s", endpoint,
               UpstreamErrorText(error), reason, request_->method_text, request_->authority,
               request_->path);
      outcome_.upstream_failed = true;
      ResetClient();
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
  attempt_.Drop();
  attempt_.ReportFailure(context_->clock().MonotonicNanos());
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

void Forwarder::OnAttemptTimedOut(const AttemptFacts& attempt, const char* what,
                                  const char* detail) {
  AttemptFailed(504, attempt, what, detail);
}

}  // namespace sluice
