#include "proxy/observe/metrics.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(MetricsTest, WorkersAreSummedPerSeries) {
  WorkerMetrics a, b;
  a.Exchange("/", "app")->requests[1][0].Add(3);  // 2xx, local
  b.Exchange("/", "app")->requests[1][0].Add(4);
  b.Exchange("/", "region:eu-west-1")->requests[4][3].Add(1);  // 5xx, evacuated
  a.Route("/")->latency.Observe(2'000'000);                    // 2 ms
  b.Route("/")->latency.Observe(300'000'000);                  // 300 ms
  a.Cluster("app")->retries[1].Add(2);                         // after connect failures
  a.Cluster("app")->connections.Add(3);
  b.Cluster("app")->connections.Add(1);
  a.Reject("/", "shed")->requests.Add(5);
  b.Region("eu-west-1")->stream_starts.Add(9);
  a.connections_open.Set(2);
  b.connections_open.Set(3);
  a.steering.tunneled_out[2].Add(6);
  NodeGauges node;
  node.table_version = 7;
  node.evacuated_bp = {{"us-east-1", 2500}};
  node.ready = true;
  std::string text = RenderMetrics({&a, &b}, node, {"us-east-1", "us-west-2", "eu-west-1"});

  EXPECT_TRUE(Has(text, "# TYPE sluice_requests_total counter")) << text;
  EXPECT_TRUE(Has(
      text, "sluice_requests_total{route=\"/\",cluster=\"app\",code=\"2xx\",decision=\"local\"} 7"))
      << text;
  EXPECT_TRUE(Has(text,
                  "sluice_requests_total{route=\"/\",cluster=\"region:eu-west-1\",code=\"5xx\","
                  "decision=\"evacuated\"} 1"))
      << text;
  EXPECT_TRUE(Has(text, "sluice_request_duration_seconds_bucket{route=\"/\",le=\"0.0025\"} 1"));
  EXPECT_TRUE(Has(text, "sluice_request_duration_seconds_bucket{route=\"/\",le=\"0.25\"} 1"));
  EXPECT_TRUE(Has(text, "sluice_request_duration_seconds_bucket{route=\"/\",le=\"0.5\"} 2"));
  EXPECT_TRUE(Has(text, "sluice_request_duration_seconds_bucket{route=\"/\",le=\"+Inf\"} 2"));
  EXPECT_TRUE(Has(text, "sluice_request_duration_seconds_count{route=\"/\"} 2"));
  EXPECT_TRUE(Has(text, "sluice_retries_total{cluster=\"app\",reason=\"connect\"} 2"));
  EXPECT_TRUE(Has(text, "sluice_upstream_connections_total{cluster=\"app\"} 4"));
  EXPECT_TRUE(Has(text, "sluice_rejected_requests_total{route=\"/\",filter=\"shed\"} 5"));
  EXPECT_TRUE(Has(text, "sluice_stream_starts_total{region=\"eu-west-1\"} 9"));
  EXPECT_TRUE(Has(text, "sluice_downstream_connections 5"));
  EXPECT_TRUE(
      Has(text, "sluice_steering_requests_total{outcome=\"tunneled_out\",region=\"eu-west-1\"} 6"));
  EXPECT_TRUE(Has(text, "sluice_steering_table_version 7"));
  EXPECT_TRUE(Has(text, "sluice_steering_evacuated_ratio{region=\"us-east-1\"} 0.25"));
  EXPECT_TRUE(Has(text, "sluice_ready 1"));
}

TEST(MetricsTest, CellsAreStableAcrossLookups) {
  WorkerMetrics m;
  ExchangeCell* first = m.Exchange("/", "app");
  m.Exchange("/x", "app");
  EXPECT_EQ(m.Exchange("/", "app"), first);
  EXPECT_EQ(StatusClassIndex(204), 1);
  EXPECT_EQ(StatusClassIndex(0), 5);
  EXPECT_EQ(StatusClassIndex(700), 5);
}

}  // namespace
}  // namespace sluice
