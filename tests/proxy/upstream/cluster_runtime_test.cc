#include "proxy/upstream/cluster_runtime.h"

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

ClusterConfig Cluster() {
  ClusterConfig c;
  c.name = "app";
  c.breakers.max_requests = 4;
  c.breakers.max_pending = 2;
  c.retry_budget.ratio = 0.2;
  c.retry_budget.min_retries = 3;
  return c;
}

TEST(ClusterRuntimeTest, RetryBudgetFollowsActiveRequestsWithAFloor) {
  TestLoop loop;
  ClusterConfig config = Cluster();
  config.breakers = BreakerConfig{};
  ClusterRuntime cluster(config, {}, /*workers=*/1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cluster.AdmitRetry()) << i;  // the floor: 3 even with nothing in flight
    cluster.RetryStarted();
  }
  EXPECT_FALSE(cluster.AdmitRetry());
  EXPECT_EQ(cluster.budget_denials(), 1u);
  for (int i = 0; i < 50; ++i) cluster.RequestStarted();  // 20% of 50 = 10
  for (int i = 3; i < 10; ++i) {
    ASSERT_TRUE(cluster.AdmitRetry()) << i;
    cluster.RetryStarted();
  }
  EXPECT_FALSE(cluster.AdmitRetry());
  cluster.RetryEnded();
  EXPECT_TRUE(cluster.AdmitRetry());
}

TEST(ClusterRuntimeTest, ASlotIsGivenBackOnceWhereItWasTaken) {
  TestLoop loop;
  ClusterConfig config = Cluster();
  ClusterRuntime east(config, {}, 1);
  ClusterRuntime west(config, {}, 1);
  {
    ClusterSlot request(ClusterSlot::kRequest);
    ClusterSlot retry(ClusterSlot::kRetry);
    ClusterSlot connect(ClusterSlot::kConnect);
    EXPECT_FALSE(request.held());
    request.Take(&east);
    retry.Take(&east);
    connect.Take(&east);
    EXPECT_TRUE(request.held());
    EXPECT_EQ(east.active_requests(), 1);
    EXPECT_EQ(east.active_retries(), 1);
    EXPECT_EQ(east.pending_connects(), 1);
    // Taken again elsewhere (a request moving to another region): it leaves the first.
    request.Take(&west);
    EXPECT_EQ(east.active_requests(), 0);
    EXPECT_EQ(west.active_requests(), 1);
    connect.Release();
    connect.Release();  // twice: once only
    EXPECT_EQ(east.pending_connects(), 0);
    EXPECT_FALSE(connect.held());
  }  // the rest go back with the slots
  EXPECT_EQ(west.active_requests(), 0);
  EXPECT_EQ(east.active_retries(), 0);
  EXPECT_EQ(east.pending_connects(), 0);
}

TEST(ClusterRuntimeTest, FloorIsDividedAmongWorkers) {
  TestLoop loop;
  ClusterRuntime cluster(Cluster(), {}, /*workers=*/2);  // ceil(3 / 2) = 2 per worker
  cluster.RetryStarted();
  EXPECT_TRUE(cluster.AdmitRetry());
  cluster.RetryStarted();
  EXPECT_FALSE(cluster.AdmitRetry());
}

TEST(ClusterRuntimeTest, Breakers) {
  TestLoop loop;
  ClusterRuntime cluster(Cluster(), {}, 1);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(cluster.AdmitRequest(), nullptr);
    cluster.RequestStarted();
  }
  EXPECT_NE(cluster.AdmitRequest(), nullptr);
  cluster.ConnectStarted();
  cluster.ConnectStarted();
  EXPECT_NE(cluster.AdmitConnect(), nullptr);
  EXPECT_EQ(cluster.breaker_rejections(), 2u);
  cluster.ConnectEnded();
  EXPECT_EQ(cluster.AdmitConnect(), nullptr);
}

}  // namespace
}  // namespace sluice
