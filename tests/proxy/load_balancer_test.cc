#include "proxy/load_balancer.h"

#include <map>

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

std::vector<std::shared_ptr<UpstreamEndpoint>> Endpoints(LoopContext* context, int n) {
  std::vector<std::shared_ptr<UpstreamEndpoint>> out;
  for (int i = 0; i < n; ++i) {
    auto address = *SocketAddress::Parse("127.0.0.1:" + std::to_string(9000 + i));
    out.push_back(std::make_shared<UpstreamEndpoint>(context, address.ToString(), address,
                                                     PoolConfig{}, Http1Limits{}));
  }
  return out;
}

TEST(LoadBalancerTest, RoundRobinVisitsEachInTurn) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 3);
  LoadBalancer lb(BalancerKind::kRoundRobin, endpoints);
  std::map<UpstreamEndpoint*, int> seen;
  for (int i = 0; i < 300; ++i) ++seen[lb.Pick(0)];
  for (auto& e : endpoints) EXPECT_EQ(seen[e.get()], 100);
  EXPECT_NE(lb.Pick(0, endpoints[1].get()), endpoints[1].get());
}

TEST(LoadBalancerTest, LeastOutstandingPrefersTheIdleOne) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 2);
  LoadBalancer lb(BalancerKind::kLeastOutstanding, endpoints);
  for (int i = 0; i < 5; ++i) endpoints[0]->BeginRequest();
  for (uint64_t r = 0; r < 100; ++r)
    EXPECT_EQ(lb.Pick(r * 0x9e3779b97f4a7c15ULL), endpoints[1].get());
}

TEST(LoadBalancerTest, PowerOfTwoChoicesSpreadsEvenLoad) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 5);
  LoadBalancer lb(BalancerKind::kLeastOutstanding, endpoints);
  std::map<UpstreamEndpoint*, int> seen;
  for (int i = 0; i < 5000; ++i) ++seen[lb.Pick(loop.context()->Random())];
  for (auto& e : endpoints) EXPECT_NEAR(seen[e.get()], 1000, 150);
}

TEST(LoadBalancerTest, SingleEndpoint) {
  TestLoop loop;
  auto endpoints = Endpoints(loop.context(), 1);
  LoadBalancer lb(BalancerKind::kLeastOutstanding, endpoints);
  EXPECT_EQ(lb.Pick(7, endpoints[0].get()), endpoints[0].get());  // nothing else to pick
}

}  // namespace
}  // namespace sluice
