#include "steering/rendezvous.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

double ExactNegLog(uint64_t hash) { return -std::log(RendezvousUnit(hash)); }

// The relative error of ApproxNegLog against -log of the same u.
double RelativeError(uint64_t hash) {
  const double exact = ExactNegLog(hash);
  return std::fabs(ApproxNegLog(hash) - exact) / exact;
}

TEST(RendezvousTest, TheApproximationIsWithinItsBoundAtEveryExponent) {
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
  // Around the split at sqrt(1/2) and at every power of two, where the fit's interval ends.
  for (int exponent = 1; exponent <= 53; ++exponent) {
    for (double at : {0.70710678118654752, 1.0}) {
      const double u = std::ldexp(at, -exponent + 1) * 0.999999;
      const uint64_t h = static_cast<uint64_t>(u * 0x1.0p53);
      for (uint64_t d = 0; d < 64; ++d) {
        const uint64_t hash = (h + d * 1024) << 11;
        if ((hash >> 11) == 0) continue;
        ASSERT_LE(RelativeError(hash), kNegLogError) << std::hex << hash;
      }
    }
  }
  EXPECT_GT(worst, kNegLogError / 4);  // the bound is near what the fit gives, not loose
}

TEST(RendezvousTest, AUnitOfOneScoresLowest) {
  // The top 53 bits all ones: u rounds to 1, the exact score is -inf, the approximation 0.
  const uint64_t ones = ~uint64_t{0};
  EXPECT_EQ(RendezvousUnit(ones), 1.0);
  EXPECT_EQ(ApproxNegLog(ones), 0.0);
  EXPECT_EQ(RendezvousScore(ones, 10), -std::numeric_limits<double>::infinity());
  const std::vector<SaviorWeight> two = {{3, 100}, {5, 1}};
  const uint64_t hashes[] = {ones, 0x8000000000000000ULL};
  EXPECT_EQ(HighestRendezvous(two, hashes, 0), 5);
  EXPECT_EQ(HighestRendezvous(two, hashes, RegionBit(5)), 3);  // the only one left
  const uint64_t both_one[] = {ones, ones};
  EXPECT_EQ(HighestRendezvous(two, both_one, 0), 3);  // equal (-inf): the first
}

TEST(RendezvousTest, EqualScoresGoToTheFirstAndSkipsCount) {
  const std::vector<SaviorWeight> three = {{1, 7}, {2, 7}, {4, 7}};
  const uint64_t same[] = {0x123456789abcdef0ULL, 0x123456789abcdef0ULL, 0x123456789abcdef0ULL};
  EXPECT_EQ(HighestRendezvous(three, same, 0), 1);
  EXPECT_EQ(HighestRendezvous(three, same, RegionBit(1)), 2);
  EXPECT_EQ(HighestRendezvous(three, same, RegionBit(1) | RegionBit(2)), 4);
  EXPECT_EQ(HighestRendezvous(three, same, RegionBit(1) | RegionBit(2) | RegionBit(4)), -1);
  EXPECT_EQ(HighestRendezvous({}, same, 0), -1);
}

// A hash whose u is near `u` (its low bits random).
uint64_t HashNear(double u, std::mt19937_64& random) {
  const double h = std::floor(u * 0x1.0p53 - 0.5);
  const double clamped = std::min(std::max(h, 0.0), 0x1.0p53 - 2);
  return static_cast<uint64_t>(clamped) << 11 | (random() & 0x7ff);
}

// Candidates whose exact scores are equal to within a few parts in 10^9 or less: the
// approximation cannot rank them, so these are the cases the exact scores must decide.
TEST(RendezvousTest, NearTiesAreDecidedByTheExactScores) {
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
    ASSERT_EQ(HighestRendezvous(candidates, hashes.data(), skip),
              HighestRendezvousExact(candidates, hashes.data(), skip))
        << "round " << round;
    ++cases;
  }
  EXPECT_EQ(cases, 200000);
}

TEST(RendezvousTest, RandomCandidatesAgreeWithTheExactScores) {
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
    ASSERT_EQ(HighestRendezvous(candidates, hashes.data(), skip),
              HighestRendezvousExact(candidates, hashes.data(), skip))
        << "round " << round;
  }
}

}  // namespace
}  // namespace sluice
