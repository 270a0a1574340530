#include "steering/rendezvous.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

double ExactNegLog(uint64_t hash) { return -std::log(RendezvousUnit(hash)); }

// Each test runs for every arithmetic this CPU has (plain everywhere, FMA on most x86-64).
class RendezvousTest : public testing::TestWithParam<RendezvousArithmetic> {
 protected:
  void SetUp() override {
    if (!RendezvousArithmeticAvailable(GetParam())) GTEST_SKIP() << "not on this CPU";
  }
  // The relative error of the approximation against -log of the same u.
  double RelativeError(uint64_t hash) const {
    const double exact = ExactNegLog(hash);
    return std::fabs(ApproxNegLogWith(GetParam(), hash) - exact) / exact;
  }
  int Highest(std::span<const SaviorWeight> candidates, const uint64_t* hashes,
              uint64_t skip) const {
    return HighestRendezvousWith(GetParam(), candidates, hashes, skip);
  }
};

std::string ArithmeticName(const testing::TestParamInfo<RendezvousArithmetic>& param) {
  return param.param == RendezvousArithmetic::kFma ? "Fma" : "Plain";
}

INSTANTIATE_TEST_SUITE_P(Arithmetic, RendezvousTest,
                         testing::Values(RendezvousArithmetic::kPlain, RendezvousArithmetic::kFma),
                         ArithmeticName);

TEST_P(RendezvousTest, TheApproximationIsWithinItsBoundAtEveryExponent) {
  std::mt19937_64 random(1);
  double worst = 0;
  // u's top bit at every place the 53 bits allow (hash >> 11 from 1 to 2^53 - 1), and the
  // significand drawn at random below it.
  for (int top = 0; top < 53; ++top) {
    for (int i = 0; i < 20000; ++i) {
      const uint64_t below = top == 0 ? 0 : random() >> (64 - top);
      const uint64_t hash = ((uint64_t{1} << top) | below) << 11 | (random() & 0x7ff);
      if ((hash >> 11) == (uint64_t{1} << 53) - 1) continue;  // u = 1: the next test's
      const double error = RelativeError(hash);
      worst = std::max(worst, error);
      ASSERT_LE(error, kNegLogError) << std::hex << hash;
    }
  }
  // The ends: u = 2^-54 (hash 0), and u up to the last double below 1, where -ln(u) is tiny and
  // a wrong rounding of u would be a large relative error.
  EXPECT_LE(RelativeError(0), kNegLogError);
  for (uint64_t j = 2; j < 100000; ++j) {
    const uint64_t hash = ~uint64_t{0} - (j << 10);
    ASSERT_LE(RelativeError(hash), kNegLogError) << std::hex << hash;
  }
  // Across the split at sqrt(1/2) and every power of two, where the fit's interval ends: 129
  // values of hash >> 11 on both sides of each point, a few parts in 10^6 apart at most.
  for (int exponent = 1; exponent <= 53; ++exponent) {
    for (double at : {0.70710678118654752, 1.0}) {
      const auto point = static_cast<int64_t>(std::ldexp(at, 54 - exponent));
      const int64_t step = std::max<int64_t>(1, point >> 24);
      for (int64_t d = -64; d <= 64; ++d) {
        const int64_t h = point + d * step;
        if (h <= 0 || h >= (int64_t{1} << 53) - 1) continue;
        const uint64_t hash = static_cast<uint64_t>(h) << 11;
        ASSERT_LE(RelativeError(hash), kNegLogError) << std::hex << hash;
      }
    }
  }
  EXPECT_GT(worst, kNegLogError / 4);  // the bound is near what the fit gives, not loose
}

TEST_P(RendezvousTest, AUnitOfOneScoresLowest) {
  // The top 53 bits all ones: u rounds to 1, the exact score is -inf, the approximation 0.
  const uint64_t ones = ~uint64_t{0};
  EXPECT_EQ(RendezvousUnit(ones), 1.0);
  EXPECT_EQ(ApproxNegLogWith(GetParam(), ones), 0.0);
  EXPECT_EQ(RendezvousScore(ones, 10), -std::numeric_limits<double>::infinity());
  const std::vector<SaviorWeight> two = {{3, 100}, {5, 1}};
  const uint64_t hashes[] = {ones, 0x8000000000000000ULL};
  EXPECT_EQ(Highest(two, hashes, 0), 5);
  EXPECT_EQ(Highest(two, hashes, RegionBit(5)), 3);  // the only one left
  const uint64_t both_one[] = {ones, ones};
  EXPECT_EQ(Highest(two, both_one, 0), 3);  // equal (-inf): the first
}

TEST_P(RendezvousTest, EqualScoresGoToTheFirstAndSkipsCount) {
  const std::vector<SaviorWeight> three = {{1, 7}, {2, 7}, {4, 7}};
  const uint64_t same[] = {0x123456789abcdef0ULL, 0x123456789abcdef0ULL, 0x123456789abcdef0ULL};
  EXPECT_EQ(Highest(three, same, 0), 1);
  EXPECT_EQ(Highest(three, same, RegionBit(1)), 2);
  EXPECT_EQ(Highest(three, same, RegionBit(1) | RegionBit(2)), 4);
  EXPECT_EQ(Highest(three, same, RegionBit(1) | RegionBit(2) | RegionBit(4)), -1);
  EXPECT_EQ(Highest({}, same, 0), -1);
}

// A hash whose u is near `u` (its low bits random).
uint64_t HashNear(double u, std::mt19937_64& random) {
  const double h = std::floor(u * 0x1.0p53 - 0.5);
  const double clamped = std::min(std::max(h, 0.0), 0x1.0p53 - 2);
  return static_cast<uint64_t>(clamped) << 11 | (random() & 0x7ff);
}

// Candidates whose exact scores are equal to within a few parts in 10^9 or less: the
// approximation cannot rank them, so these are the cases the exact scores must decide.
TEST_P(RendezvousTest, NearTiesAreDecidedByTheExactScores) {
  std::mt19937_64 random(2);
  std::uniform_int_distribution<uint32_t> weight(1, kMaxSaviorWeight);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int cases = 0;
  for (int round = 0; round < 200000; ++round) {
    const size_t n = 2 + random() % 5;
    std::vector<SaviorWeight> candidates;
    std::vector<uint64_t> hashes;
    // The first candidate's score sets the level; the others are placed on it.
    const uint32_t w0 = weight(random);
    const double l0 = -std::log(0.001 + 0.998 * unit(random));
    for (size_t i = 0; i < n; ++i) {
      const uint32_t w = i == 0 ? w0 : weight(random);
      const double spread = std::ldexp(unit(random) - 0.5, -(static_cast<int>(random() % 40)));
      const double l = l0 * w / w0 * (1 + spread);
      candidates.push_back({static_cast<uint8_t>(i), w});
      hashes.push_back(HashNear(std::exp(-l), random));
    }
    const uint64_t skip = random() % 8 == 0 ? RegionBit(static_cast<int>(random() % n)) : 0;
    const int exact = HighestRendezvousExact(candidates, hashes.data(), skip);
    ASSERT_EQ(Highest(candidates, hashes.data(), skip), exact) << "round " << round;
    // And as the decision calls it (the best arithmetic this CPU has).
    ASSERT_EQ(HighestRendezvous(candidates, hashes.data(), skip), exact) << "round " << round;
    ++cases;
  }
  EXPECT_EQ(cases, 200000);
}

TEST_P(RendezvousTest, RandomCandidatesAgreeWithTheExactScores) {
  std::mt19937_64 random(3);
  for (int round = 0; round < 300000; ++round) {
    const size_t n = 1 + random() % 8;
    std::vector<SaviorWeight> candidates;
    std::vector<uint64_t> hashes;
    for (size_t i = 0; i < n; ++i) {
      candidates.push_back(
          {static_cast<uint8_t>(random() % 64), static_cast<uint32_t>(1 + random() % 100)});
      hashes.push_back(random());
    }
    const uint64_t skip = random() % 4 == 0 ? random() : 0;
    const int exact = HighestRendezvousExact(candidates, hashes.data(), skip);
    ASSERT_EQ(Highest(candidates, hashes.data(), skip), exact) << "round " << round;
    // And as the decision calls it (the best arithmetic this CPU has).
    ASSERT_EQ(HighestRendezvous(candidates, hashes.data(), skip), exact) << "round " << round;
  }
}

}  // namespace
}  // namespace sluice
