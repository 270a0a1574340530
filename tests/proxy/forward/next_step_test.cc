#include "proxy/forward/next_step.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

// "retry, failover -> fail": the steps tried in order, then the one that stands; "(origin)"
// when the failed attempt may have reached an origin.
std::string Show(const NextSteps& next) {
  std::string out;
  for (uint8_t i = 0; i < next.count; ++i) {
    if (i > 0) out += i + 1 == next.count ? " -> " : ", ";
    out += StepName(next.steps[i]);
  }
  return out + (next.reached_origin ? " (origin)" : "");
}

// A plain first attempt: a GET on a route without a retry filter, served locally, with
// failover on; the filters have been asked and did not ask for a retry.
RequestFacts Get() {
  RequestFacts r;
  r.idempotent = true;
  r.attempts = 1;
  r.default_retries = true;
  r.filters = FilterVerdict::kNoRetry;
  r.may_fail_over = true;
  return r;
}
RequestFacts Post() {
  RequestFacts r = Get();
  r.idempotent = false;
  return r;
}
template <typename F>
RequestFacts With(RequestFacts r, F change) {
  change(r);
  return r;
}
AttemptFacts Ended(AttemptEnd end) {
  AttemptFacts a;
  a.end = end;
  a.request_sent = end != AttemptEnd::kConnect && end != AttemptEnd::kNoEndpoint;
  return a;
}
AttemptFacts Status(int status) {
  AttemptFacts a = Ended(AttemptEnd::kResponse);
  a.status = status;
  return a;
}
AttemptFacts Pooled(AttemptEnd end) {
  AttemptFacts a = Ended(end);
  a.pooled = true;
  return a;
}

struct Row {
  const char* name;
  AttemptFacts attempt;
  RequestFacts request;
  const char* expected;
};

// One row per rule and per exception to it (next_step.h numbers the rules).
TEST(NextStep, TheRulesAsATable) {
  auto retry_asked = [](RequestFacts& r) { r.filters = FilterVerdict::kRetry; };
  auto not_asked = [](RequestFacts& r) { r.filters = FilterVerdict::kNotAsked; };
  auto tunneled = [](RequestFacts& r) { r.tunneled = true; };
  auto second = [](RequestFacts& r) { r.attempts = 2; };
  auto no_failover = [](RequestFacts& r) { r.may_fail_over = false; };
  auto retry_filter = [](RequestFacts& r) {
    r.default_retries = false;
    r.filters = FilterVerdict::kNoRetry;
  };
  auto resent = [](RequestFacts& r) { r.resent = true; };
  auto body_gone = [](RequestFacts& r) { r.body_at_hand = false; };
  auto client_saw = [](RequestFacts& r) { r.client_saw_response = true; };
  auto upgraded = [](RequestFacts& r) { r.upgraded = true; };
  auto last_attempt = [](RequestFacts& r) { r.attempts = kMaxAttempts; };
  auto nine = [](RequestFacts& r) { r.attempts = kMaxAttempts - 1; };
  AttemptFacts began = Ended(AttemptEnd::kReset);
  began.response_began = true;
  AttemptFacts pooled_unsent = Pooled(AttemptEnd::kClosed);
  pooled_unsent.request_sent = false;

  const std::vector<Row> rows = {
      // 1. Responses.
      {"200", Status(200), Get(), "deliver (origin)"},
      {"503 fails over", Status(503), Get(), "failover -> deliver (origin)"},
      {"502 fails over", Status(502), Get(), "failover -> deliver (origin)"},
      {"504 fails over", Status(504), Get(), "failover -> deliver (origin)"},
      {"500 does not", Status(500), Get(), "deliver (origin)"},
      {"501 does not", Status(501), Get(), "deliver (origin)"},
      {"505 does not", Status(505), Get(), "deliver (origin)"},
      {"503 of a POST", Status(503), Post(), "deliver (origin)"},
      {"503 through a tunnel", Status(503), With(Get(), tunneled), "deliver (origin)"},
      {"503, failover off", Status(503), With(Get(), no_failover), "deliver (origin)"},
      {"filter retry on 503", Status(503), With(Get(), retry_asked),
       "retry, failover -> deliver (origin)"},
      {"filter retry on 200", Status(200), With(Get(), retry_asked), "retry -> deliver (origin)"},
      {"filter retry of a POST", Status(500), With(Post(), retry_asked),
       "retry -> deliver (origin)"},
      {"filter retry, body gone", Status(503),
       With(Get(),
            [](RequestFacts& r) {
              r.filters = FilterVerdict::kRetry;
              r.body_at_hand = false;
            }),
       "deliver (origin)"},
      {"filter retry, attempts spent", Status(503), With(With(Get(), retry_asked), last_attempt),
       "deliver (origin)"},
      {"filter retry, ninth attempt", Status(500), With(With(Get(), retry_asked), nine),
       "retry -> deliver (origin)"},
      // 2. No endpoint.
      {"no endpoint", Ended(AttemptEnd::kNoEndpoint), Get(), "fail"},
      {"no endpoint, tunnel", Ended(AttemptEnd::kNoEndpoint), With(Post(), tunneled),
       "next region -> fail"},
      {"no endpoint, tunnel, spent", Ended(AttemptEnd::kNoEndpoint),
       With(With(Get(), tunneled), last_attempt), "fail"},
      // 3. Transparent re-sends.
      {"HTTP/2 refused", Ended(AttemptEnd::kHttp2Refused), With(Post(), not_asked),
       "resend (origin)"},
      {"HTTP/2 refused twice", Ended(AttemptEnd::kHttp2Refused),
       With(With(Get(), not_asked), resent), "ask filters (origin)"},
      {"stale pooled", Pooled(AttemptEnd::kClosed), With(Get(), not_asked), "resend (origin)"},
      {"stale pooled POST", Pooled(AttemptEnd::kClosed), With(Post(), not_asked),
       "ask filters (origin)"},
      {"stale pooled, body gone", Pooled(AttemptEnd::kClosed),
       With(With(Get(), not_asked), body_gone), "ask filters (origin)"},
      {"stale pooled, resent", Pooled(AttemptEnd::kClosed), With(With(Get(), not_asked), resent),
       "ask filters (origin)"},
      {"stale pooled, unsent", pooled_unsent, With(Get(), not_asked), "ask filters (origin)"},
      {"fresh closed", Ended(AttemptEnd::kClosed), With(Get(), not_asked), "ask filters (origin)"},
      {"pooled reset", Pooled(AttemptEnd::kReset), With(Get(), not_asked), "ask filters (origin)"},
      // 4. After the response began.
      {"began", began, With(Get(), not_asked), "reset (origin)"},
      {"began, filters said retry", began, With(Get(), retry_asked), "reset (origin)"},
      // 5. The filters first, then retries.
      {"connect, not asked", Ended(AttemptEnd::kConnect), With(Get(), not_asked), "ask filters"},
      {"connect", Ended(AttemptEnd::kConnect), Get(), "retry, failover -> fail"},
      {"connect POST", Ended(AttemptEnd::kConnect), Post(), "retry, failover -> fail"},
      {"closed", Ended(AttemptEnd::kClosed), Get(), "retry, failover -> fail (origin)"},
      {"closed POST", Ended(AttemptEnd::kClosed), Post(), "fail (origin)"},
      {"reset", Ended(AttemptEnd::kReset), Get(), "retry, failover -> fail (origin)"},
      {"bad response", Ended(AttemptEnd::kBadResponse), Get(), "retry, failover -> fail (origin)"},
      {"bad response POST", Ended(AttemptEnd::kBadResponse), Post(), "fail (origin)"},
      {"refused, resent", Ended(AttemptEnd::kHttp2Refused), With(Get(), resent),
       "retry, failover -> fail (origin)"},
      {"timeout", Ended(AttemptEnd::kTimeout), Get(), "failover -> fail (origin)"},
      {"timeout, filter retry", Ended(AttemptEnd::kTimeout), With(Get(), retry_asked),
       "retry, failover -> fail (origin)"},
      {"timeout POST, filter retry", Ended(AttemptEnd::kTimeout), With(Post(), retry_asked),
       "retry -> fail (origin)"},
      {"second attempt", Ended(AttemptEnd::kConnect), With(Get(), second), "failover -> fail"},
      {"second, filter retry", Ended(AttemptEnd::kConnect), With(With(Get(), second), retry_asked),
       "retry, failover -> fail"},
      {"retry filter said no", Ended(AttemptEnd::kConnect), With(Get(), retry_filter),
       "failover -> fail"},
      {"connect, body gone", Ended(AttemptEnd::kConnect), With(Get(), body_gone), "fail"},
      {"connect, client saw", Ended(AttemptEnd::kConnect), With(Get(), client_saw), "fail"},
      {"connect, upgraded", Ended(AttemptEnd::kConnect), With(Get(), upgraded), "fail"},
      {"connect, attempts spent", Ended(AttemptEnd::kConnect), With(Get(), last_attempt), "fail"},
      // 6. Steering.
      {"tunnel connect", Ended(AttemptEnd::kConnect), With(Post(), tunneled),
       "next region -> fail"},
      {"tunnel reset GET", Ended(AttemptEnd::kReset), With(Get(), tunneled),
       "next region -> fail (origin)"},
      {"tunnel reset POST", Ended(AttemptEnd::kReset), With(Post(), tunneled), "fail (origin)"},
      {"tunnel timeout, filter retry", Ended(AttemptEnd::kTimeout),
       With(With(Get(), tunneled), retry_asked), "retry, next region -> fail (origin)"},
      {"tunnel, failover flag ignored", Ended(AttemptEnd::kConnect),
       With(With(Get(), tunneled), no_failover), "next region -> fail"},
      {"local, failover off", Ended(AttemptEnd::kReset), With(Get(), no_failover),
       "retry -> fail (origin)"},
      {"local POST connect", Ended(AttemptEnd::kConnect), With(Post(), second), "failover -> fail"},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(Show(DecideNextSteps(row.attempt, row.request)), row.expected) << row.name;
  }
}

// Every combination of what happened and what the request is, against the rules' invariants.
TEST(NextStep, EveryCombinationKeepsTheInvariants) {
  const AttemptEnd ends[] = {AttemptEnd::kResponse,     AttemptEnd::kNoEndpoint,
                             AttemptEnd::kHttp2Refused, AttemptEnd::kConnect,
                             AttemptEnd::kClosed,       AttemptEnd::kReset,
                             AttemptEnd::kBadResponse,  AttemptEnd::kTimeout};
  const int statuses[] = {101, 200, 500, 502, 503, 504};
  const int attempt_counts[] = {0, 1, 2, kMaxAttempts - 1, kMaxAttempts};
  const FilterVerdict verdicts[] = {FilterVerdict::kNotAsked, FilterVerdict::kRetry,
                                    FilterVerdict::kNoRetry};
  int cases = 0;
  for (AttemptEnd end : ends) {
    for (int status : statuses) {
      if (end != AttemptEnd::kResponse && status != 200) continue;
      for (int bits = 0; bits < (1 << 11); ++bits) {
        for (int attempts : attempt_counts) {
          for (FilterVerdict filters : verdicts) {
            auto bit = [bits](int i) { return (bits >> i & 1) != 0; };
            AttemptFacts a{end, status, bit(0), bit(1), bit(2)};
            RequestFacts r;
            r.idempotent = bit(3);
            r.client_saw_response = bit(4);
            r.upgraded = bit(5);
            r.body_at_hand = bit(6);
            r.resent = bit(7);
            r.default_retries = bit(8);
            r.tunneled = bit(9);
            r.may_fail_over = bit(10);
            r.attempts = attempts;
            r.filters = filters;
            const NextSteps next = DecideNextSteps(a, r);
            ++cases;
            SCOPED_TRACE(Show(next));
            ASSERT_GE(next.count, 1);
            const Step last = next.last();
            // The last step stands; the ones before it are tried.
            ASSERT_TRUE(last == Step::kAskFilters || last == Step::kResend ||
                        last == Step::kDeliver || last == Step::kFail || last == Step::kReset);
            EXPECT_EQ(last == Step::kDeliver, end == AttemptEnd::kResponse);
            const bool attempt_left =
                !r.client_saw_response && !r.upgraded && r.body_at_hand && attempts < kMaxAttempts;
            EXPECT_EQ(next.reached_origin,
                      end != AttemptEnd::kConnect && end != AttemptEnd::kNoEndpoint);
            for (uint8_t i = 0; i + 1 < next.count; ++i) {
              const Step step = next.steps[i];
              ASSERT_TRUE(step == Step::kRetry || step == Step::kNextRegion ||
                          step == Step::kFailover);
              EXPECT_TRUE(attempt_left) << "another attempt with none left";
              if (step == Step::kRetry) {
                EXPECT_NE(end, AttemptEnd::kNoEndpoint);
                EXPECT_NE(filters, FilterVerdict::kNotAsked);
                // Without a filter asking: only the default, once, on a route without a policy.
                if (filters != FilterVerdict::kRetry) {
                  EXPECT_TRUE(r.default_retries && attempts <= 1 && !r.tunneled);
                  EXPECT_NE(end, AttemptEnd::kTimeout);
                  EXPECT_NE(end, AttemptEnd::kResponse);
                  EXPECT_TRUE(end == AttemptEnd::kConnect || r.idempotent);
                }
                EXPECT_EQ(i, 0) << "a retry comes first";
              } else {
                // Another region only for what is safe to send again.
                EXPECT_TRUE(!next.reached_origin || r.idempotent);
                EXPECT_EQ(step == Step::kNextRegion, r.tunneled);
                if (step == Step::kFailover) {
                  EXPECT_TRUE(r.may_fail_over);
                }
                EXPECT_EQ(i + 2, next.count) << "one move between regions, last";
              }
            }
            if (last == Step::kResend) {
              EXPECT_FALSE(r.resent) << "one transparent re-send per request";
              EXPECT_TRUE(end == AttemptEnd::kHttp2Refused ||
                          (end == AttemptEnd::kClosed && a.pooled && a.request_sent &&
                           r.idempotent && r.body_at_hand));
            }
            if (last == Step::kReset) {
              EXPECT_TRUE(a.response_began);
            }
            if (last == Step::kAskFilters) {
              EXPECT_EQ(filters, FilterVerdict::kNotAsked);
            }
            if (end == AttemptEnd::kResponse || end == AttemptEnd::kNoEndpoint) {
              EXPECT_NE(last, Step::kAskFilters) << "the forwarder asks before it decides";
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 13 * 2048 * 5 * 3);
}

}  // namespace
}  // namespace sluice
