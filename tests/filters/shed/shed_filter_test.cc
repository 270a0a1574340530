#include "filters/shed/shed_filter.h"

#include "gtest/gtest.h"
#include "tests/filters/filter_test_util.h"

namespace sluice {
namespace {

class ShedFilterTest : public ::testing::Test {
 protected:
  ShedFilterTest() : limiter_(Config(), 1, clock_) {}
  static ConcurrencyConfig Config() {
    ConcurrencyConfig c;
    c.algorithm = ConcurrencyConfig::Algorithm::kFixed;
    c.initial_limit = c.min_limit = c.max_limit = 4;
    c.partitions = {{"critical", 0.75}, {"bulk", 0.25}};
    return c;
  }
  ShedConfig Shed() {
    ShedConfig config;
    config.partition = "bulk";
    config.classify = {{ShedRule::Source::kHeader, "x-priority", "critical", "critical"},
                       {ShedRule::Source::kClaim, "tier", "gold", "critical"}};
    return config;
  }
  FakeClock clock_;
  ConcurrencyLimiter limiter_;
};

TEST_F(ShedFilterTest, ClassifiesByHeaderClaimAndRoute) {
  ShedFilter filter(Shed(), &limiter_, clock_);
  TestRequest plain;
  EXPECT_EQ(filter.Classify(plain.get()), limiter_.PartitionIndex("bulk"));
  TestRequest header({{"X-Priority", "critical"}});
  // Any client could say it is critical: only a trusted proxy's (or a tunnel's) word counts.
  EXPECT_EQ(filter.Classify(header.get()), limiter_.PartitionIndex("bulk"));
  header.get().context.trusted_headers = true;
  EXPECT_EQ(filter.Classify(header.get()), limiter_.PartitionIndex("critical"));
  TestRequest gold;
  gold.get().context.identity.method = Identity::Method::kJwt;
  gold.get().context.identity.tier = "gold";
  EXPECT_EQ(filter.Classify(gold.get()), limiter_.PartitionIndex("critical"));
  TestRequest unverified;
  unverified.get().context.identity.tier = "gold";  // a claim nobody verified counts for nothing
  EXPECT_EQ(filter.Classify(unverified.get()), limiter_.PartitionIndex("bulk"));
}

TEST_F(ShedFilterTest, RejectsWith503AndRetryAfterAndReleasesOnComplete) {
  ShedFilter filter(Shed(), &limiter_, clock_);
  std::vector<std::unique_ptr<TestRequest>> admitted;
  std::vector<FilterSlot> slots(5);
  for (int i = 0; i < 4; ++i) {
    admitted.push_back(std::make_unique<TestRequest>());
    EXPECT_EQ(filter.OnRequestHead(admitted.back()->get(), slots[i]), FilterStatus::kContinue);
  }
  TestRequest shed;
  EXPECT_EQ(filter.OnRequestHead(shed.get(), slots[4]), FilterStatus::kRespond);
  EXPECT_EQ(shed.get().reply.status, 503);
  EXPECT_EQ(*shed.get().reply.headers.Get("Retry-After"), "1");
  EXPECT_EQ(limiter_.rejected(limiter_.PartitionIndex("bulk")), 1u);
  // Critical traffic still gets in: bulk borrowed, critical is within its share.
  TestRequest critical({{"x-priority", "critical"}});
  critical.get().context.trusted_headers = true;
  FilterSlot critical_slot;
  EXPECT_EQ(filter.OnRequestHead(critical.get(), critical_slot), FilterStatus::kContinue);
  clock_.AdvanceMillis(3);
  for (int i = 0; i < 4; ++i) {
    FilterOutcome outcome;
    outcome.status = 200;
    filter.OnComplete(admitted[i]->get(), outcome, slots[i]);
  }
  filter.OnComplete(critical.get(), FilterOutcome{}, critical_slot);
  EXPECT_EQ(limiter_.inflight(), 0);
}

TEST_F(ShedFilterTest, StatusAndRetryAfterAreConfigurable) {
  ShedConfig config = Shed();
  config.status = 429;
  config.retry_after_seconds = 7;
  ShedFilter filter(config, &limiter_, clock_);
  FilterSlot slots[5];
  std::vector<std::unique_ptr<TestRequest>> requests;
  for (int i = 0; i < 5; ++i) requests.push_back(std::make_unique<TestRequest>());
  for (int i = 0; i < 4; ++i) filter.OnRequestHead(requests[i]->get(), slots[i]);
  EXPECT_EQ(filter.OnRequestHead(requests[4]->get(), slots[4]), FilterStatus::kRespond);
  EXPECT_EQ(requests[4]->get().reply.status, 429);
  EXPECT_EQ(*requests[4]->get().reply.headers.Get("retry-after"), "7");
  for (int i = 0; i < 4; ++i) filter.OnComplete(requests[i]->get(), FilterOutcome{}, slots[i]);
}

}  // namespace
}  // namespace sluice
