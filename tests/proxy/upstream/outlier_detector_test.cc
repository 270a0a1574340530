#include "proxy/upstream/outlier_detector.h"

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

constexpr int64_t kSecond = 1000000000;

class OutlierDetectorTest : public ::testing::Test {
 protected:
  OutlierDetectorTest() {
    for (int i = 0; i < 4; ++i) {
      auto address = *SocketAddress::Parse("127.0.0.1:" + std::to_string(9000 + i));
      cluster_.push_back(std::make_shared<UpstreamEndpoint>(loop_.context(), address.ToString(),
                                                            address, PoolConfig{}, Http1Limits{}));
    }
    config_.consecutive_failures = 3;
    config_.base_ejection = absl::Seconds(10);
    config_.max_ejection = absl::Seconds(25);
    config_.max_ejection_percent = 50;
  }
  bool Fail(OutlierDetector& d, int i, int64_t now) {
    return d.OnFailure(*cluster_[i], cluster_, now);
  }

  TestLoop loop_;
  std::vector<std::shared_ptr<UpstreamEndpoint>> cluster_;
  OutlierConfig config_;
};

TEST_F(OutlierDetectorTest, EjectsAfterConsecutiveFailuresForGrowingTimes) {
  OutlierDetector d(config_);
  int64_t now = 100 * kSecond;
  EXPECT_FALSE(Fail(d, 0, now));
  EXPECT_FALSE(Fail(d, 0, now));
  d.OnSuccess(*cluster_[0], now);  // a success breaks the run
  EXPECT_FALSE(Fail(d, 0, now));
  EXPECT_FALSE(Fail(d, 0, now));
  EXPECT_TRUE(Fail(d, 0, now));
  EXPECT_TRUE(cluster_[0]->ejected(now + 10 * kSecond - 1));
  EXPECT_FALSE(cluster_[0]->ejected(now + 10 * kSecond));
  // Back, fails again: twice as long; then capped.
  now += 10 * kSecond;
  for (int i = 0; i < 3; ++i) Fail(d, 0, now);
  EXPECT_TRUE(cluster_[0]->ejected(now + 20 * kSecond - 1));
  now += 20 * kSecond;
  for (int i = 0; i < 3; ++i) Fail(d, 0, now);
  EXPECT_TRUE(cluster_[0]->ejected(now + 25 * kSecond - 1));
  EXPECT_FALSE(cluster_[0]->ejected(now + 25 * kSecond));
  EXPECT_EQ(d.ejections(), 3u);
}

TEST_F(OutlierDetectorTest, ReadmittedEndpointRampsUpBySlowStart) {
  OutlierDetector d(config_, absl::Seconds(10));
  int64_t now = 100 * kSecond;
  for (int i = 0; i < 3; ++i) Fail(d, 0, now);
  int64_t back = now + 10 * kSecond;
  ASSERT_TRUE(cluster_[0]->ejected(back - 1));
  EXPECT_DOUBLE_EQ(cluster_[0]->Weight(back), 0.1);  // a trickle when it returns
  EXPECT_NEAR(cluster_[0]->Weight(back + 5 * kSecond), 0.55, 1e-9);
  EXPECT_DOUBLE_EQ(cluster_[0]->Weight(back + 10 * kSecond), 1.0);
  // Without slow start it is back at full weight at once.
  OutlierDetector plain(config_);
  for (int i = 0; i < 3; ++i) Fail(plain, 1, now);
  EXPECT_DOUBLE_EQ(cluster_[1]->Weight(back), 1.0);
}

TEST_F(OutlierDetectorTest, NeverEjectsMoreThanTheAllowedShare) {
  OutlierDetector d(config_);
  int64_t now = kSecond;
  for (int e = 0; e < 4; ++e) {
    for (int i = 0; i < 3; ++i) Fail(d, e, now);
  }
  int ejected = 0;
  for (auto& e : cluster_) ejected += e->ejected(now) ? 1 : 0;
  EXPECT_EQ(ejected, 2);  // 50% of 4
}

TEST_F(OutlierDetectorTest, OffWhenThresholdIsZero) {
  config_.consecutive_failures = 0;
  OutlierDetector d(config_);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(Fail(d, 0, kSecond));
}

}  // namespace
}  // namespace sluice
