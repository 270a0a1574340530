#include "proxy/observe/metric_families.h"

#include <cctype>
#include <set>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(MetricFamiliesTest, WorkersAreSummedPerSeries) {
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

TEST(MetricFamiliesTest, NamesFollowPrometheusConventions) {
  std::set<std::string_view> names;
  for (const MetricFamily& f : MetricFamilies()) {
    SCOPED_TRACE(std::string(f.name));
    EXPECT_TRUE(names.insert(f.name).second) << "declared twice";
    EXPECT_EQ(f.name.substr(0, 7), "sluice_");
    const bool total = f.name.size() > 6 && f.name.substr(f.name.size() - 6) == "_total";
    EXPECT_EQ(total, f.type == MetricType::kCounter);
    if (f.type == MetricType::kHistogram) {
      EXPECT_EQ(f.name.substr(f.name.size() - 8), "_seconds");
    }
    EXPECT_FALSE(f.help.empty());
    EXPECT_EQ(f.help.back(), '.');
    std::set<std::string_view> labels;
    for (std::string_view label : f.labels) {
      EXPECT_TRUE(labels.insert(label).second) << label;
      for (char c : label) EXPECT_TRUE(std::islower(c) || c == '_') << label;
    }
    EXPECT_NE(f.collect, nullptr);
  }
}

// Every family renders with its HELP and TYPE, and each of its series carries exactly the
// labels its row declares, whatever cells exist.
TEST(MetricFamiliesTest, EveryFamilyRendersWithItsDeclaredLabels) {
  WorkerMetrics w;
  ExchangeCell* exchange = w.Exchange("/", "app");
  for (int c = 0; c < kStatusClasses; ++c) {
    for (int d = 0; d < kDecisionLabels; ++d) exchange->requests[c][d].Add(1);
  }
  w.Route("/")->latency.Observe(1'000'000);
  ClusterCell* cluster = w.Cluster("app");
  for (int c = 0; c < kStatusClasses; ++c) cluster->responses[c].Add(1);
  for (int f = 0; f < kUpstreamFailures; ++f) {
    cluster->failures[f].Add(1);
    cluster->retries[f].Add(1);
  }
  w.Reject("/", "auth")->requests.Add(1);
  w.Region("us-east-1")->stream_starts.Add(1);
  w.steering.tunneled_out[0].Add(1);
  NodeGauges node;
  node.evacuated_bp = {{"us-east-1", 100}};
  node.region_healthy = {{"us-east-1", true}};
  node.fleet = true;
  node.fleet_writes = {{"written", 1}, {"conflict", 0}, {"unavailable", 0}};
  node.detection = {{"us-east-1", true, 100, true, 0.5, "dipping"}};
  node.local_region = "us-east-1";
  node.detection_evacuations = {{"serving", 1}};
  node.has_capacity = true;
  node.capacity_rps = 2000;
  node.load_rps = 800;
  node.standby_endpoints = 1;
  node.active_plans = 1;
  node.plans = {{7, "us-east-1", "evacuate", 42.5}};
  node.edges = {{"us-west-2", "dead"}};
  node.has_heap = true;
  node.heap_allocated_bytes = 5'000'000;
  node.heap_bytes = 7'000'000;
  const std::string text = RenderMetrics({&w}, node, {"us-east-1"});
  EXPECT_TRUE(Has(text, "sluice_capacity_requests_per_second 2000")) << text;
  EXPECT_TRUE(Has(text, "sluice_standby_endpoints{state=\"waiting\"} 1")) << text;
  EXPECT_TRUE(Has(text, "sluice_heap_allocated_bytes 5000000")) << text;
  EXPECT_TRUE(Has(text, "sluice_heap_bytes 7000000")) << text;
  EXPECT_TRUE(Has(text,
                  "sluice_steering_plan_held_seconds{plan=\"7\",region=\"us-east-1\","
                  "kind=\"evacuate\"} 42.5"))
      << text;
  EXPECT_TRUE(Has(text, "sluice_detection_edge_state{region=\"us-west-2\",state=\"dead\"} 1"))
      << text;
  EXPECT_TRUE(Has(text, "sluice_detection_edge_state{region=\"us-west-2\",state=\"alive\"} 0"))
      << text;

  for (const MetricFamily& f : MetricFamilies()) {
    SCOPED_TRACE(std::string(f.name));
    const std::string name(f.name);
    const char* type = f.type == MetricType::kCounter ? "counter"
                       : f.type == MetricType::kGauge ? "gauge"
                                                      : "histogram";
    EXPECT_TRUE(Has(text, "# TYPE " + name + " " + type)) << text;
    EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos);
    std::istringstream lines(text);
    int series = 0;
    for (std::string line; std::getline(lines, line);) {
      std::string series_name = line.substr(0, line.find_first_of("{ "));
      if (series_name != name && series_name != name + "_bucket" &&
          series_name != name + "_count" && series_name != name + "_sum") {
        continue;
      }
      ++series;
      std::set<std::string> seen;
      size_t brace = line.find('{');
      if (brace != std::string::npos) {
        std::string labels = line.substr(brace + 1, line.find('}') - brace - 1);
        std::istringstream parts(labels);
        for (std::string part; std::getline(parts, part, ',');) {
          seen.insert(part.substr(0, part.find('=')));
        }
      }
      std::set<std::string> declared(f.labels.begin(), f.labels.end());
      if (series_name == name + "_bucket") declared.insert("le");
      EXPECT_EQ(seen, declared) << line;
    }
    EXPECT_GT(series, 0) << "no series rendered";
  }
}

TEST(MetricFamiliesTest, FleetFamiliesOnlyWithAFleet) {
  WorkerMetrics w;
  NodeGauges node;
  std::string text = RenderMetrics({&w}, node, {});
  EXPECT_EQ(text.find("sluice_fleet_"), std::string::npos);
  node.fleet = true;
  text = RenderMetrics({&w}, node, {});
  EXPECT_NE(text.find("# TYPE sluice_fleet_connected gauge"), std::string::npos);
}

}  // namespace
}  // namespace sluice
