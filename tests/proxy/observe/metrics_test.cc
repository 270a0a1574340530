#include "proxy/observe/metrics.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(MetricsTest, CellsAreStableAcrossLookups) {
  WorkerMetrics m;
  ExchangeCell* first = m.Exchange("/", "app");
  m.Exchange("/x", "app");
  EXPECT_EQ(m.Exchange("/", "app"), first);
  EXPECT_EQ(StatusClassIndex(204), 1);
  EXPECT_EQ(StatusClassIndex(0), 5);
  EXPECT_EQ(StatusClassIndex(700), 5);
  EXPECT_STREQ(StatusClassName(kStatusClass5xx), "5xx");
}

TEST(MetricsTest, LabelNamesCoverEveryEnumValue) {
  EXPECT_STREQ(DecisionLabel(kDecisionOff), "off");
  std::set<std::string> decisions;
  for (int d = 0; d < kDecisionLabels; ++d) decisions.insert(DecisionLabel(d));
  EXPECT_EQ(decisions.size(), static_cast<size_t>(kDecisionLabels));  // no two values alike
  EXPECT_EQ(decisions.count("unknown"), 0u);
  std::set<std::string> failures(std::begin(kFailureLabels), std::end(kFailureLabels));
  EXPECT_EQ(failures.size(), static_cast<size_t>(kUpstreamFailures));
}

TEST(MetricsTest, CellsKeepWhatTheyWereCreatedAs) {
  WorkerMetrics m;
  ClusterCell* tunnel = m.Cluster("region:eu-west-1", "eu-west-1");
  EXPECT_EQ(m.Cluster("region:eu-west-1", "eu-west-1"), tunnel);
  EXPECT_EQ(tunnel->tunnel_region, "eu-west-1");
  EXPECT_TRUE(m.Reject("/", "shed", true)->counts_as_shed);
  EXPECT_FALSE(m.Reject("/", "auth", false)->counts_as_shed);
  ClusterCell* app = m.Cluster("app");
  app->responses[kStatusClass5xx].Add(2);
  app->responses[1].Add(5);
  app->failures[static_cast<int>(UpstreamFailure::kConnect)].Add(3);
  EXPECT_EQ(app->Responses(), 7u);
  EXPECT_EQ(app->Failures(), 3u);
  EXPECT_EQ(app->Errors(), 5u);
}

}  // namespace
}  // namespace sluice
