#include "filters/retry/retry_filter.h"

#include "gtest/gtest.h"
#include "tests/filters/filter_test_util.h"

namespace sluice {
namespace {

class RetryFilterTest : public ::testing::Test {
 protected:
  RetryFilterTest() { config_.status_codes = {500}; }
  TestRequest& Request(HttpMethod method,
                       std::initializer_list<std::pair<const char*, const char*>> h = {}) {
    request_ = std::make_unique<TestRequest>(h);
    request_->head().method = method;
    return *request_;
  }
  FakeClock clock_;
  RetryConfig config_;
  std::unique_ptr<TestRequest> request_;
};

TEST_F(RetryFilterTest, IdempotentRequestsAreRetriedOnEachCondition) {
  RetryFilter filter(config_, clock_);
  TestRequest& r = Request(HttpMethod::kGet);
  FilterSlot slot;
  ASSERT_EQ(filter.OnRequestHead(r.get(), slot), FilterStatus::kContinue);
  EXPECT_TRUE(r.get().context.keep_request_body);
  EXPECT_EQ(r.get().context.replay_limit, 64u * 1024);
  r.get().context.attempts = 1;
  for (UpstreamFailure failure : {UpstreamFailure::kConnect, UpstreamFailure::kReset,
                                  UpstreamFailure::kTimeout, UpstreamFailure::kBadResponse}) {
    r.get().context.last_failure = failure;
    EXPECT_EQ(filter.OnUpstreamError(r.get(), slot), FilterStatus::kRetry);
    EXPECT_GT(r.get().context.retry_delay_ns, 0);
  }
  ResponseHeadPtr response = MakeResponseHead();
  for (int status : {500, 502, 503, 504}) {
    response->status = status;
    EXPECT_EQ(filter.OnResponseHead(r.get(), *response, slot), FilterStatus::kRetry) << status;
  }
  for (int status : {200, 404, 501}) {
    response->status = status;
    EXPECT_EQ(filter.OnResponseHead(r.get(), *response, slot), FilterStatus::kContinue) << status;
  }
}

TEST_F(RetryFilterTest, AttemptsAreBounded) {
  config_.attempts = 3;
  RetryFilter filter(config_, clock_);
  TestRequest& r = Request(HttpMethod::kGet);
  FilterSlot slot;
  filter.OnRequestHead(r.get(), slot);
  r.get().context.last_failure = UpstreamFailure::kConnect;
  r.get().context.attempts = 2;
  EXPECT_EQ(filter.OnUpstreamError(r.get(), slot), FilterStatus::kRetry);
  r.get().context.attempts = 3;
  EXPECT_EQ(filter.OnUpstreamError(r.get(), slot), FilterStatus::kContinue);
}

TEST_F(RetryFilterTest, PostOnlyWithAnIdempotencyKeyOrWhenAllowed) {
  RetryFilter filter(config_, clock_);
  FilterSlot slot;
  TestRequest& post = Request(HttpMethod::kPost);
  filter.OnRequestHead(post.get(), slot);
  EXPECT_FALSE(post.get().context.keep_request_body);
  post.get().context.attempts = 1;
  post.get().context.last_failure = UpstreamFailure::kReset;
  EXPECT_EQ(filter.OnUpstreamError(post.get(), slot), FilterStatus::kContinue);

  FilterSlot keyed_slot;
  TestRequest& keyed = Request(HttpMethod::kPost, {{"Idempotency-Key", "abc"}});
  filter.OnRequestHead(keyed.get(), keyed_slot);
  keyed.get().context.attempts = 1;
  keyed.get().context.last_failure = UpstreamFailure::kReset;
  EXPECT_EQ(filter.OnUpstreamError(keyed.get(), keyed_slot), FilterStatus::kRetry);

  config_.any_method = true;
  RetryFilter any(config_, clock_);
  FilterSlot any_slot;
  TestRequest& post2 = Request(HttpMethod::kPost);
  any.OnRequestHead(post2.get(), any_slot);
  post2.get().context.attempts = 1;
  post2.get().context.last_failure = UpstreamFailure::kReset;
  EXPECT_EQ(any.OnUpstreamError(post2.get(), any_slot), FilterStatus::kRetry);
}

TEST_F(RetryFilterTest, ConditionsCanBeNarrowed) {
  config_.on_timeout = false;
  config_.on_gateway_error = false;
  config_.status_codes.clear();
  RetryFilter filter(config_, clock_);
  TestRequest& r = Request(HttpMethod::kGet);
  FilterSlot slot;
  filter.OnRequestHead(r.get(), slot);
  r.get().context.attempts = 1;
  r.get().context.last_failure = UpstreamFailure::kTimeout;
  EXPECT_EQ(filter.OnUpstreamError(r.get(), slot), FilterStatus::kContinue);
  ResponseHeadPtr response = MakeResponseHead();
  response->status = 503;
  EXPECT_EQ(filter.OnResponseHead(r.get(), *response, slot), FilterStatus::kContinue);
}

TEST_F(RetryFilterTest, BackoffGrowsWithJitterUpToTheCap) {
  RetryFilter filter(config_, clock_);  // base 25 ms, cap 250 ms
  for (int i = 0; i < 200; ++i) {
    int64_t first = filter.Backoff(1);
    EXPECT_GE(first, 12500000);
    EXPECT_LE(first, 25000000);
    int64_t third = filter.Backoff(3);
    EXPECT_GE(third, 50000000);
    EXPECT_LE(third, 100000000);
    int64_t late = filter.Backoff(20);
    EXPECT_GE(late, 125000000);
    EXPECT_LE(late, 250000000);
  }
}

}  // namespace
}  // namespace sluice
