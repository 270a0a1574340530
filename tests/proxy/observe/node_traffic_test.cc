#include "proxy/observe/node_traffic.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(NodeTrafficTest, SumsWhatEachCellWasCreatedAs) {
  WorkerMetrics a, b;
  // Requests by route are not what it counts (a request may make several attempts, or none).
  a.Exchange("/", "app")->requests[1][0].Add(10);
  b.Exchange("/", "app")->requests[4][0].Add(2);
  a.Exchange("/", "region:eu-west-1")->requests[1][3].Add(7);  // tunneled
  a.Exchange("none", "none")->requests[3][0].Add(4);           // no route
  ClusterCell* app = a.Cluster("app");
  app->responses[1].Add(9);
  app->responses[kStatusClass5xx].Add(2);
  app->failures[static_cast<int>(UpstreamFailure::kReset)].Add(1);
  app->latency.Observe(3'000'000);
  ClusterCell* tunnel = b.Cluster("region:eu-west-1", "eu-west-1");
  tunnel->responses[1].Add(5);
  tunnel->failures[static_cast<int>(UpstreamFailure::kConnect)].Add(1);
  // A cluster of origins that happens to be named like a tunnel is still origins.
  a.Cluster("region:lookalike")->responses[kStatusClass5xx].Add(1);
  a.Reject("/", "shed", /*counts_as_shed=*/true)->requests.Add(3);
  b.Reject("/", "rate_limit", true)->requests.Add(1);
  a.Reject("/", "auth", false)->requests.Add(50);
  a.Region("us-east-1")->stream_starts.Add(6);
  b.Region("us-east-1")->stream_starts.Add(1);

  NodeTraffic t = SampleNodeTraffic({&a, &b});
  // Attempts at the origins (app: 9 + 2 answers and a reset; the lookalike: one 5xx), and the
  // failed ones among them: a rate over the same events.
  EXPECT_EQ(t.local.requests, 13u);
  EXPECT_EQ(t.local.errors, 4u);  // 2 + 1 5xx and one reset
  EXPECT_EQ(t.local.sheds, 4u);
  ASSERT_EQ(t.tunnels.count("eu-west-1"), 1u);
  EXPECT_EQ(t.tunnels["eu-west-1"].requests, 6u);
  EXPECT_EQ(t.tunnels["eu-west-1"].errors, 1u);
  EXPECT_EQ(t.tunnels.size(), 1u);
  EXPECT_EQ(t.starts["us-east-1"], 7u);
  uint64_t observed = 0;
  for (uint64_t n : t.local.latency) observed += n;
  EXPECT_EQ(observed, 1u);
}

}  // namespace
}  // namespace sluice
