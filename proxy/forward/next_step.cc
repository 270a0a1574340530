#include "proxy/forward/next_step.h"

namespace sluice {
namespace {

class Answer {
 public:
  explicit Answer(bool reached_origin) { next_.reached_origin = reached_origin; }
  Answer& Then(Step step) {
    next_.steps[next_.count++] = step;
    return *this;
  }
  Answer& ThenIf(bool when, Step step) { return when ? Then(step) : *this; }
  NextSteps Stands(Step step) { return Then(step).next_; }

 private:
  NextSteps next_;
};

}  // namespace

const char* StepName(Step step) {
  switch (step) {
    case Step::kRetry:
      return "retry";
    case Step::kNextRegion:
      return "next region";
    case Step::kFailover:
      return "failover";
    case Step::kAskFilters:
      return "ask filters";
    case Step::kResend:
      return "resend";
    case Step::kDeliver:
      return "deliver";
    case Step::kFail:
      return "fail";
    case Step::kReset:
      return "reset";
  }
  return "?";
}

bool NextSteps::operator==(const NextSteps& other) const {
  if (count != other.count || reached_origin != other.reached_origin) return false;
  for (uint8_t i = 0; i < count; ++i) {
    if (steps[i] != other.steps[i]) return false;
  }
  return true;
}

NextSteps DecideNextSteps(const AttemptFacts& attempt, const RequestFacts& request) {
  const AttemptEnd end = attempt.end;
  // Nothing reached an origin when no connection was made. (An endpoint that refused HTTP/2
  // was sent nothing, but once the one re-send is spent its refusal counts as a lost
  // connection, as it always has.)
  const bool reached_origin = end != AttemptEnd::kConnect && end != AttemptEnd::kNoEndpoint;
  const bool attempt_left = !request.client_saw_response && !request.upgraded &&
                            request.body_at_hand && request.attempts < kMaxAttempts;
  // A request the failed attempt may have acted on moves elsewhere only if that is safe.
  const bool may_move = attempt_left && (!reached_origin || request.idempotent);
  Answer answer(reached_origin);

  if (end == AttemptEnd::kResponse) {
    if (!ResponseMayMove(attempt.status, request.filters)) return answer.Stands(Step::kDeliver);
    return answer.ThenIf(request.filters == FilterVerdict::kRetry && attempt_left, Step::kRetry)
        .ThenIf(
            GatewayError(attempt.status) && !request.tunneled && request.may_fail_over && may_move,
            Step::kFailover)
        .Stands(Step::kDeliver);
  }
  if (end == AttemptEnd::kNoEndpoint) {
    return answer.ThenIf(request.tunneled && may_move, Step::kNextRegion).Stands(Step::kFail);
  }
  if (!request.resent) {
    if (end == AttemptEnd::kHttp2Refused) return answer.Stands(Step::kResend);
    if (end == AttemptEnd::kClosed && attempt.request_sent && attempt.pooled &&
        request.body_at_hand && request.idempotent) {
      return answer.Stands(Step::kResend);
    }
  }
  if (attempt.response_began) return answer.Stands(Step::kReset);
  if (request.filters == FilterVerdict::kNotAsked) return answer.Stands(Step::kAskFilters);

  bool retry = request.filters == FilterVerdict::kRetry;
  if (request.filters == FilterVerdict::kNoRetry && request.default_retries && !request.tunneled &&
      request.attempts <= 1) {
    retry = end == AttemptEnd::kConnect ||
            ((end == AttemptEnd::kClosed || end == AttemptEnd::kReset ||
              end == AttemptEnd::kHttp2Refused || end == AttemptEnd::kBadResponse) &&
             request.idempotent);
  }
  return answer.ThenIf(retry && attempt_left, Step::kRetry)
      .ThenIf(request.tunneled && may_move, Step::kNextRegion)
      .ThenIf(!request.tunneled && request.may_fail_over && may_move, Step::kFailover)
      .Stands(Step::kFail);
}

}  // namespace sluice
