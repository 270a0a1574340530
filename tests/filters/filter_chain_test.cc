#include "filters/filter_chain.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/filters/filter_test_util.h"

namespace sluice {
namespace {

// A filter that records its hooks and answers as scripted.
class Scripted : public Filter {
 public:
  Scripted(std::string name, std::vector<std::string>* log, FilterStatus on_head,
           FilterStatus on_response = FilterStatus::kContinue)
      : name_(std::move(name)), log_(log), on_head_(on_head), on_response_(on_response) {}
  std::string_view name() const override { return name_; }
  FilterStatus OnRequestHead(FilterRequest& request, FilterSlot& slot) override {
    log_->push_back(name_ + ".head");
    slot.value = 42;
    if (on_head_ == FilterStatus::kRespond) request.reply.status = 401;
    return on_head_;
  }
  FilterStatus OnResponseHead(FilterRequest&, ResponseHead&, FilterSlot& slot) override {
    log_->push_back(name_ + ".response");
    EXPECT_EQ(slot.value, 42);  // each filter keeps its own slot
    return on_response_;
  }
  FilterStatus OnUpstreamError(FilterRequest&, FilterSlot&) override {
    log_->push_back(name_ + ".error");
    return on_response_;
  }
  void OnComplete(FilterRequest&, const FilterOutcome& outcome, FilterSlot&) override {
    log_->push_back(name_ + (outcome.cancelled ? ".cancelled" : ".complete"));
  }

 private:
  std::string name_;
  std::vector<std::string>* log_;
  FilterStatus on_head_;
  FilterStatus on_response_;
};

TEST(FilterChainTest, RequestInOrderResponseAndCompleteInReverse) {
  std::vector<std::string> log;
  FilterChain chain;
  chain.Add(std::make_unique<Scripted>("a", &log, FilterStatus::kContinue));
  chain.Add(std::make_unique<Scripted>("b", &log, FilterStatus::kContinue));
  TestRequest request;
  FilterRun run;
  run.Start(&chain);
  EXPECT_EQ(run.RunRequestHead(request.get()), FilterStatus::kContinue);
  ResponseHeadPtr response = MakeResponseHead();
  EXPECT_EQ(run.RunResponseHead(request.get(), *response), FilterStatus::kContinue);
  run.Complete(request.get(), FilterOutcome{});
  run.Complete(request.get(), FilterOutcome{});  // once only
  EXPECT_EQ(log, (std::vector<std::string>{"a.head", "b.head", "b.response", "a.response",
                                           "b.complete", "a.complete"}));
}

TEST(FilterChainTest, RespondStopsTheChainAndOnlyStartedFiltersComplete) {
  std::vector<std::string> log;
  FilterChain chain;
  chain.Add(std::make_unique<Scripted>("a", &log, FilterStatus::kContinue));
  chain.Add(std::make_unique<Scripted>("auth", &log, FilterStatus::kRespond));
  chain.Add(std::make_unique<Scripted>("never", &log, FilterStatus::kContinue));
  TestRequest request;
  FilterRun run;
  run.Start(&chain);
  EXPECT_EQ(run.RunRequestHead(request.get()), FilterStatus::kRespond);
  EXPECT_EQ(request.get().reply.status, 401);
  run.Complete(request.get(), FilterOutcome{});
  EXPECT_EQ(log, (std::vector<std::string>{"a.head", "auth.head", "auth.complete", "a.complete"}));
}

TEST(FilterChainTest, PauseResumesWhereItStopped) {
  std::vector<std::string> log;
  FilterChain chain;
  chain.Add(std::make_unique<Scripted>("async", &log, FilterStatus::kPause));
  chain.Add(std::make_unique<Scripted>("b", &log, FilterStatus::kContinue));
  TestRequest request;
  FilterRun run;
  run.Start(&chain);
  EXPECT_EQ(run.RunRequestHead(request.get()), FilterStatus::kPause);
  EXPECT_TRUE(run.paused());
  EXPECT_EQ(run.Resume(request.get(), FilterStatus::kContinue), FilterStatus::kContinue);
  EXPECT_EQ(log, (std::vector<std::string>{"async.head", "b.head"}));
  // A pause that never resumes ends as cancelled.
  FilterRun stuck;
  stuck.Start(&chain);
  stuck.RunRequestHead(request.get());
  stuck.Complete(request.get(), FilterOutcome{});
  EXPECT_EQ(log.back(), "async.cancelled");
}

TEST(FilterChainTest, RetryFromResponseOrErrorWins) {
  std::vector<std::string> log;
  FilterChain chain;
  chain.Add(
      std::make_unique<Scripted>("retry", &log, FilterStatus::kContinue, FilterStatus::kRetry));
  chain.Add(std::make_unique<Scripted>("b", &log, FilterStatus::kContinue));
  TestRequest request;
  FilterRun run;
  run.Start(&chain);
  run.RunRequestHead(request.get());
  ResponseHeadPtr response = MakeResponseHead();
  EXPECT_EQ(run.RunResponseHead(request.get(), *response), FilterStatus::kRetry);
  EXPECT_EQ(run.RunUpstreamError(request.get()), FilterStatus::kRetry);
}

TEST(FilterChainTest, ARetryThatCannotHappenStillReachesTheSkippedFilters) {
  std::vector<std::string> log;
  FilterChain chain;
  chain.Add(std::make_unique<Scripted>("a", &log, FilterStatus::kContinue));
  chain.Add(
      std::make_unique<Scripted>("retry", &log, FilterStatus::kContinue, FilterStatus::kRetry));
  chain.Add(std::make_unique<Scripted>("c", &log, FilterStatus::kContinue));
  TestRequest request;
  FilterRun run;
  run.Start(&chain);
  run.RunRequestHead(request.get());
  log.clear();
  ResponseHeadPtr response = MakeResponseHead();
  EXPECT_EQ(run.RunResponseHead(request.get(), *response), FilterStatus::kRetry);
  EXPECT_EQ(log, (std::vector<std::string>{"c.response", "retry.response"}));
  run.FinishResponseHead(request.get(), *response);  // e.g. the retry budget said no
  EXPECT_EQ(log, (std::vector<std::string>{"c.response", "retry.response", "a.response"}));
  log.clear();
  EXPECT_EQ(run.RunUpstreamError(request.get()), FilterStatus::kRetry);
  run.FinishUpstreamError(request.get());
  EXPECT_EQ(log, (std::vector<std::string>{"c.error", "retry.error", "a.error"}));
}

TEST(FilterChainTest, EmptyChainPasses) {
  FilterChain chain;
  TestRequest request;
  FilterRun run;
  run.Start(&chain);
  EXPECT_EQ(run.RunRequestHead(request.get()), FilterStatus::kContinue);
  run.Complete(request.get(), FilterOutcome{});
}

}  // namespace
}  // namespace sluice
