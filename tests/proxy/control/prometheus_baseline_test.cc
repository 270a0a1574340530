#include "proxy/control/prometheus_baseline.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

TEST(PrometheusMatrix, ParsesSeriesByRegionAndSkipsGaps) {
  auto m = ParsePrometheusMatrix(
      R"({"status":"success","data":{"resultType":"matrix","result":[
          {"metric":{"region":"us-east-1"},"values":[[1799999880,"50"],[1799999940,"NaN"],
                                                     [1800000000,"49.5"]]},
          {"metric":{"region":"eu-west-1","job":"sluice"},"values":[[1799999940.5,"0"]]}]}})",
      kNow);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ(m->at("us-east-1"),
            (std::vector<std::pair<int64_t, double>>{{1799999880, 50}, {1800000000, 49.5}}));
  EXPECT_EQ(m->at("eu-west-1").size(), 1u);
}

TEST(PrometheusMatrix, RefusesWhatIsNotAnAnswerWithAMessage) {
  struct Case {
    const char* body;
    const char* message;
  } cases[] = {
      {"<html>", "not a JSON object"},
      {R"({"status":"error","error":"parse error at char 5"})", "error: parse error at char 5"},
      {R"({"status":"success","data":{"resultType":"vector","result":[]}})", "expected matrix"},
      {R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[]}]}})",
       "metric.region"},
      {R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"region":"a b"},"values":[]}]}})",
       "metric.region"},
      {R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"region":"r"},"values":[[1800003600,"1"]]}]}})",
       "in the future"},
      {R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"region":"r"},"values":[[1799999940,"-3"]]}]}})",
       "not a rate"},
      {R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"region":"r"},"values":[[1799999940,"12abc"]]}]}})",
       "not a number"},
      {R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{"region":"r"},"values":[[1799999940,5]]}]}})",
       "pairs"},
  };
  for (const Case& c : cases) {
    auto m = ParsePrometheusMatrix(c.body, kNow);
    ASSERT_FALSE(m.ok()) << c.body;
    EXPECT_NE(m.status().message().find(c.message), std::string::npos) << m.status();
  }
}

TEST(PrometheusMatrix, PercentEncodesAQuery) {
  EXPECT_EQ(PercentEncode("sum by (region) (rate(x[60s]))"),
            "sum%20by%20%28region%29%20%28rate%28x%5B60s%5D%29%29");
}

}  // namespace
}  // namespace sluice
