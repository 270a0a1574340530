#include "proxy/upstream/load_balancer.h"

#include <map>

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

constexpr int64_t kNow = 1000000000000;

std::vector<std::shared_ptr<UpstreamEndpoint>> Endpoints(LoopContext* context, int n) {
  std::vector<std::shared_ptr<UpstreamEndpoint>> out;
  for (int i = 0; i < n; ++i) {
    auto address = *SocketAddress::Parse("127.0.0.1:" + std::to_string(9000 + i));
    out.push_back(std::make_shared<UpstreamEndpoint>(context, address.ToString(), address,
                                                     PoolConfig{}, Http1Limits{}));
  }
  return out;
}

std::map<UpstreamEndpoint*, int> Spread(LoadBalancer& lb, LoopContext* context, int picks,
                                        int64_t now = kNow) {
  std::map<UpstreamEndpoint*, int> seen;
  for (int i = 0; i < picks; ++i) ++seen[lb.Pick(context->Random(), now)];
  return seen;
}

TEST(LoadBalancerTest, RoundRobinVisitsEachInTurn) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 3);
  LoadBalancer lb(BalancerKind::kRoundRobin, endpoints);
  std::map<UpstreamEndpoint*, int> seen;
  for (int i = 0; i < 300; ++i) ++seen[lb.Pick(0, kNow)];
  for (auto& e : endpoints) EXPECT_EQ(seen[e.get()], 100);
  EXPECT_NE(lb.Pick(0, kNow, endpoints[1].get()), endpoints[1].get());
}

TEST(LoadBalancerTest, LeastOutstandingPrefersTheIdleOne) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 2);
  LoadBalancer lb(BalancerKind::kLeastOutstanding, endpoints);
  for (int i = 0; i < 5; ++i) endpoints[0]->BeginRequest();
  for (uint64_t r = 0; r < 100; ++r) {
    EXPECT_EQ(lb.Pick(r * 0x9e3779b97f4a7c15ULL, kNow), endpoints[1].get());
  }
}

TEST(LoadBalancerTest, PowerOfTwoChoicesSpreadsEvenLoad) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 5);
  LoadBalancer lb(BalancerKind::kLeastOutstanding, endpoints);
  auto seen = Spread(lb, loop.context(), 5000);
  for (auto& e : endpoints) EXPECT_NEAR(seen[e.get()], 1000, 150);
}

TEST(LoadBalancerTest, EjectedAndUnhealthyEndpointsAreSkipped) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 4);
  for (BalancerKind kind : {BalancerKind::kRoundRobin, BalancerKind::kLeastOutstanding}) {
    LoadBalancer lb(kind, endpoints);
    endpoints[0]->ejected_until_ns_ = kNow + 1;
    endpoints[1]->set_healthy(false);
    auto seen = Spread(lb, loop.context(), 400);
    EXPECT_EQ(seen[endpoints[0].get()], 0);
    EXPECT_EQ(seen[endpoints[1].get()], 0);
    EXPECT_FALSE(lb.panicking());
    // Ejection ends on its own.
    auto later = Spread(lb, loop.context(), 400, kNow + 2);
    EXPECT_GT(later[endpoints[0].get()], 0);
    endpoints[0]->ejected_until_ns_ = 0;
    endpoints[1]->set_healthy(true);
  }
}

TEST(LoadBalancerTest, AnyAvailableUntilTheLastGoes) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 3);
  LoadBalancer lb(BalancerKind::kRoundRobin, endpoints);
  EXPECT_TRUE(lb.AnyAvailable(kNow));
  endpoints[0]->ejected_until_ns_ = kNow + 1;
  endpoints[1]->set_healthy(false);
  EXPECT_TRUE(lb.AnyAvailable(kNow));
  endpoints[2]->set_healthy(false);
  EXPECT_FALSE(lb.AnyAvailable(kNow));
  EXPECT_TRUE(lb.AnyAvailable(kNow + 1));  // the ejection ran out
}

TEST(LoadBalancerTest, PassingHealthChecksAgainStartsASlowStart) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 2);
  endpoints[0]->SetHealthy(false, kNow, 10);
  EXPECT_FALSE(endpoints[0]->available(kNow));
  endpoints[0]->SetHealthy(true, kNow + 100, 1000);
  EXPECT_TRUE(endpoints[0]->available(kNow + 100));
  EXPECT_DOUBLE_EQ(endpoints[0]->Weight(kNow + 100), 0.1);
  EXPECT_DOUBLE_EQ(endpoints[0]->Weight(kNow + 1100), 1.0);
  endpoints[1]->SetHealthy(true, kNow, 1000);  // healthy all along: no ramp
  EXPECT_DOUBLE_EQ(endpoints[1]->Weight(kNow), 1.0);
}

TEST(LoadBalancerTest, PanicModeUsesEveryoneWhenTooFewAreLeft) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 4);
  LoadBalancer lb(BalancerKind::kRoundRobin, endpoints, /*panic_threshold_percent=*/50);
  for (int i = 0; i < 3; ++i) endpoints[i]->set_healthy(false);  // 25% left: below 50%
  auto seen = Spread(lb, loop.context(), 400);
  EXPECT_TRUE(lb.panicking());
  for (auto& e : endpoints) EXPECT_EQ(seen[e.get()], 100);
}

TEST(LoadBalancerTest, StandbysTakeNothingUntilInjectedThenRampUp) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 2);
  endpoints[1]->SetStandby(true, kNow, 0);
  LoadBalancer lb(BalancerKind::kLeastOutstanding, endpoints);
  EXPECT_EQ(Spread(lb, loop.context(), 200)[endpoints[1].get()], 0);
  const int64_t window = 10000000000;  // 10 s of slow start
  endpoints[1]->SetStandby(false, kNow, window);
  EXPECT_DOUBLE_EQ(endpoints[1]->Weight(kNow), 0.1);
  EXPECT_DOUBLE_EQ(endpoints[1]->Weight(kNow + window / 2), 0.55);
  EXPECT_DOUBLE_EQ(endpoints[1]->Weight(kNow + window), 1.0);
  // Early on the new endpoint gets a small share; once ramped, its full share.
  auto early = Spread(lb, loop.context(), 2000, kNow);
  auto late = Spread(lb, loop.context(), 2000, kNow + window);
  EXPECT_LT(early[endpoints[1].get()], 700);
  EXPECT_GT(early[endpoints[1].get()], 0);
  EXPECT_NEAR(late[endpoints[1].get()], 1000, 150);
}

TEST(LoadBalancerTest, OnlyStandbysMeansNoEndpoint) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 1);
  endpoints[0]->SetStandby(true, kNow, 0);
  LoadBalancer lb(BalancerKind::kRoundRobin, endpoints);
  EXPECT_EQ(lb.Pick(1, kNow), nullptr);
}

}  // namespace
}  // namespace sluice
