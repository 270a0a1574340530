#include "ctl/health_table.h"

#include <sstream>

#include "gtest/gtest.h"

namespace sluice {
namespace {

using nlohmann::json;

// Trimmed answers of GET /v1/health and GET /v1/detection (proxy/server.cc,
// proxy/control/detection_control.cc).
const char kHealth[] = R"({
  "region": "us-east-1", "window_seconds": 10, "ready": true,
  "local": {"requests": 100, "error_rate": 0.01, "shed_rate": 0.002, "p99_ms": 42.0,
            "origins_down": false},
  "peers": {
    "eu-west-1": {"reachable": true, "error_rate": 0.0, "shed_rate": 0.0, "p99_ms": 80.5,
                  "origins_down": true},
    "us-west-2": {"reachable": false, "error": "connection refused"}
  },
  "regions_capacity": {
    "us-east-1": {"capacity_rps": 2000, "load_rps": 500, "utilization": 0.25},
    "eu-west-1": {"capacity_rps": null, "load_rps": 10, "utilization": null},
    "us-west-2": {"capacity_rps": 0, "load_rps": 0, "utilization": null}
  }
})";

const char kDetection[] = R"({
  "mode": "alert",
  "regions": {
    "us-east-1": {"verdict": "healthy", "sps": 120.5, "expected": 118.0, "ratio": 1.02},
    "us-west-2": {"verdict": "no_baseline", "sps": 3.0, "expected": null, "ratio": null}
  }
})";

TEST(HealthRowsTest, JoinsHealthCapacityAndDetectionByRegion) {
  json rows = HealthRows(json::parse(kHealth), json::parse(kDetection));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["region"], "eu-west-1");
  EXPECT_EQ(rows[1]["region"], "us-east-1");
  EXPECT_EQ(rows[2]["region"], "us-west-2");

  const json& local = rows[1];
  EXPECT_EQ(local["local"], true);
  EXPECT_EQ(local["verdict"], "healthy");
  EXPECT_EQ(local["sps"], 120.5);
  EXPECT_EQ(local["expected_sps"], 118.0);
  EXPECT_EQ(local["ratio"], 1.02);
  EXPECT_EQ(local["error_rate"], 0.01);
  EXPECT_EQ(local["shed_rate"], 0.002);
  EXPECT_EQ(local["p99_ms"], 42.0);
  EXPECT_EQ(local["capacity_rps"], 2000);
  EXPECT_EQ(local["utilization"], 0.25);

  const json& peer = rows[0];
  EXPECT_EQ(peer["local"], false);
  EXPECT_TRUE(peer["verdict"].is_null());  // the detector did not judge it: not invented
  EXPECT_EQ(peer["p99_ms"], 80.5);
  EXPECT_EQ(peer["origins_down"], true);
  EXPECT_TRUE(peer["capacity_rps"].is_null());
  EXPECT_EQ(peer["load_rps"], 10);

  const json& gone = rows[2];
  EXPECT_EQ(gone["reachable"], false);
  EXPECT_TRUE(gone["error_rate"].is_null());
  EXPECT_TRUE(gone["p99_ms"].is_null());
  EXPECT_EQ(gone["verdict"], "no_baseline");
  EXPECT_TRUE(gone["expected_sps"].is_null());
  EXPECT_TRUE(gone["capacity_rps"].is_null());  // 0: unknown
}

TEST(HealthRowsTest, WithoutADetectorOrPeers) {
  json rows = HealthRows(json::parse(R"({"region": "solo", "local": {"error_rate": 0}})"), json());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["region"], "solo");
  EXPECT_TRUE(rows[0]["sps"].is_null());
  EXPECT_EQ(rows[0]["error_rate"], 0);
  EXPECT_TRUE(HealthRows(json::object(), json()).empty());
  // No request in the window: no error rate, shed rate or p99 to speak of.
  rows = HealthRows(json::parse(R"({"region": "solo", "local": {"requests": 0, "error_rate": 0,
      "shed_rate": 0, "p99_ms": 0}})"),
                    json());
  EXPECT_TRUE(rows[0]["error_rate"].is_null());
  EXPECT_TRUE(rows[0]["shed_rate"].is_null());
  EXPECT_TRUE(rows[0]["p99_ms"].is_null());
}

TEST(RenderHealthRowsTest, DashesForWhatIsNotKnown) {
  std::ostringstream out;
  RenderHealthRows(HealthRows(json::parse(kHealth), json::parse(kDetection)), out);
  std::istringstream lines(out.str());
  std::string header, eu, us_east, us_west;
  std::getline(lines, header);
  std::getline(lines, eu);
  std::getline(lines, us_east);
  std::getline(lines, us_west);
  for (const char* column : {"REGION", "VERDICT", "SPS", "EXPECTED", "RATIO", "ERR", "SHED", "P99",
                             "CAPACITY", "UTIL"}) {
    EXPECT_NE(header.find(column), std::string::npos) << column;
  }
  EXPECT_NE(us_east.find("healthy"), std::string::npos) << us_east;
  EXPECT_NE(us_east.find("120.5"), std::string::npos) << us_east;
  EXPECT_NE(us_east.find("118.0"), std::string::npos) << us_east;
  EXPECT_NE(us_east.find("1.02"), std::string::npos) << us_east;
  EXPECT_NE(us_east.find("1.00%"), std::string::npos) << us_east;
  EXPECT_NE(us_east.find("0.20%"), std::string::npos) << us_east;
  EXPECT_NE(us_east.find("42ms"), std::string::npos) << us_east;
  EXPECT_NE(us_east.find("2000"), std::string::npos) << us_east;
  EXPECT_NE(us_east.find("25%"), std::string::npos) << us_east;
  EXPECT_NE(eu.find("origins down"), std::string::npos) << eu;
  EXPECT_NE(us_west.find("unreachable"), std::string::npos) << us_west;
  // eu-west-1: no verdict, no SPS, no capacity.
  EXPECT_EQ(eu.rfind("  eu-west-1        -  ", 0), 0u) << eu;
}

}  // namespace
}  // namespace sluice
