#include "proxy/config/detection_config_loader.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "proxy/config/config_loader.h"

namespace sluice {
namespace {

constexpr char kBase[] = R"(
listeners: [{address: 127.0.0.1:1}]
clusters:
  - name: app
    endpoints: [127.0.0.1:2]
routes:
  - cluster: app
steering:
  local_region: us-east-1
  tunnel: {insecure: true, key_file: KEYFILE}
  regions:
    us-east-1: {tunnel: [127.0.0.1:3], saviors: {us-west-2: 100}}
    us-west-2: {tunnel: [127.0.0.1:4], saviors: {us-east-1: 100}}
controller:
  state_file: state.json
)";

class DetectionConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/sluice-detection-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
    std::ofstream(dir_ + "/k.key") << std::string("0123456789abcdef0123456789abcdef") << "\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<ConfigPtr> Parse(const std::string& detection) const {
    std::string yaml = kBase;
    yaml.replace(yaml.find("KEYFILE"), 7, dir_ + "/k.key");
    return ParseConfig(yaml + detection, dir_ + "/sluice.yaml");
  }

  std::string dir_;
};

TEST_F(DetectionConfigLoaderTest, DefaultsAreOffWithHistoryBesideTheStateFile) {
  auto config = Parse("");
  ASSERT_TRUE(config.ok()) << config.status();
  const DetectionConfig& d = (*config)->detection;
  EXPECT_EQ(d.mode, DetectionMode::kOff);
  EXPECT_EQ(d.history_file, dir_ + "/state.json.history.db");
  EXPECT_DOUBLE_EQ(d.options.dip_ratio, 0.6);
  EXPECT_EQ(d.steps_bp, (std::vector<uint32_t>{1000, 2500, 5000, 10000}));
  EXPECT_EQ(d.hold, absl::Seconds(5));
}

TEST_F(DetectionConfigLoaderTest, ParsesEverything) {
  auto config = Parse(R"(detection:
  mode: auto
  history_file: h.db
  dip_ratio: 0.5
  dip_for: 10s
  other_dip_ratio: 0.7
  min_expected_sps: 2
  surge_ratio: 3
  window: 4s
  smooth: 3m
  shift: 0s
  cooldown: 1h
  evacuate: {saviors: {us-west-2: 100}, steps: [5%, 50%, 100%], hold: 2s}
  baseline: prometheus
  prometheus: {url: "http://127.0.0.1:9090", rate: 2m, timeout: 3s}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const DetectionConfig& d = (*config)->detection;
  EXPECT_EQ(d.mode, DetectionMode::kAuto);
  EXPECT_EQ(d.history_file, dir_ + "/h.db");
  EXPECT_DOUBLE_EQ(d.options.dip_ratio, 0.5);
  EXPECT_EQ(d.options.dip_for, absl::Seconds(10));
  EXPECT_DOUBLE_EQ(d.options.other_dip_ratio, 0.7);
  EXPECT_DOUBLE_EQ(d.options.min_expected_sps, 2);
  EXPECT_DOUBLE_EQ(d.options.surge_ratio, 3);
  EXPECT_EQ(d.options.window, absl::Seconds(4));
  EXPECT_EQ(d.options.smooth, absl::Minutes(3));
  EXPECT_EQ(d.options.shift, absl::ZeroDuration());
  EXPECT_EQ(d.options.cooldown, absl::Hours(1));
  EXPECT_EQ(d.saviors, (std::map<std::string, uint32_t>{{"us-west-2", 100}}));
  EXPECT_EQ(d.steps_bp, (std::vector<uint32_t>{500, 5000, 10000}));
  EXPECT_EQ(d.hold, absl::Seconds(2));
  EXPECT_TRUE(d.prometheus);
  EXPECT_EQ(d.prometheus_url.address.ToString(), "127.0.0.1:9090");
  EXPECT_EQ(d.prometheus_rate, absl::Minutes(2));
  EXPECT_EQ(d.prometheus_timeout, absl::Seconds(3));
}

TEST_F(DetectionConfigLoaderTest, BadValuesNameTheKey) {
  struct Case {
    std::string yaml;
    std::string message;
  } cases[] = {
      {"detection: {mode: on}\n", "detection.mode: expected off, alert or auto"},
      {"detection: {dip_ratio: 1.5}\n", "detection.dip_ratio: must be a number"},
      {"detection: {dip_ratio: 0.7, other_dip_ratio: 0.6}\n", "must be at least dip_ratio"},
      {"detection: {surge_ratio: 1}\n", "detection.surge_ratio"},
      {"detection: {window: 2m}\n", "detection.window: must be at most 1m"},
      {"detection: {nope: 1}\n", "nope"},
      {"detection: {evacuate: {saviors: {mars-1: 100}}}\n", "no region named \"mars-1\""},
      {"detection: {evacuate: {steps: [50%, 25%, 100%]}}\n", "steps must rise"},
      {"detection: {evacuate: {steps: [10%, 50%]}}\n", "the last step must be 100%"},
      {"detection: {evacuate: {steps: [0%, 100%]}}\n", "a fraction above 0"},
      {"detection: {history_file: \"\"}\n", "must name a file"},
      {"detection: {baseline: remote}\n", "expected local or prometheus"},
      {"detection: {baseline: prometheus}\n", "detection.prometheus: required"},
      {"detection: {prometheus: {url: \"https://p:9090\"}}\n", "https is not supported"},
      {"detection: {prometheus: {url: \"ftp://p\"}}\n", "detection.prometheus.url"},
  };
  for (const Case& c : cases) {
    auto config = Parse(c.yaml);
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_NE(config.status().message().find(c.message), std::string::npos)
        << config.status() << " for " << c.yaml;
  }
}

}  // namespace
}  // namespace sluice
