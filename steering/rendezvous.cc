#include "steering/rendezvous.h"

#include <algorithm>
#include <limits>

namespace sluice {
namespace {

// A skipped candidate's key, and the keys before any candidate: higher than any real one.
constexpr double kNoKey = std::numeric_limits<double>::infinity();

// A best key (the lowest -ln(u) / w, the highest score) ahead of the next by more than this
// factor is ahead in the exact scores too, and strictly: the approximate keys are off by at most
// kNegLogError (and an ulp or two) each, the exact scores by a few ulps.
constexpr double kClearLead = 1 + 5 * kNegLogError;

}  // namespace

int HighestRendezvous(std::span<const SaviorWeight> candidates, const uint64_t* hashes,
                      uint64_t skip) {
  int best = -1;
  double best_key = kNoKey;
  double second_key = kNoKey;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const SaviorWeight& c = candidates[i];
    const double key =
        (skip & RegionBit(c.region)) != 0 ? kNoKey : ApproxNegLog(hashes[i]) * (1.0 / c.weight);
    second_key = std::min(second_key, std::max(best_key, key));
    if (key < best_key) {
      best_key = key;
      best = c.region;
    }
  }
  // A key of 0 (u = 1, an exact score of -inf) or a lead too narrow: the exact scores decide.
  if (best_key > 0 && second_key > best_key * kClearLead) return best;
  return HighestRendezvousExact(candidates, hashes, skip);
}

int HighestRendezvousExact(std::span<const SaviorWeight> candidates, const uint64_t* hashes,
                           uint64_t skip) {
  int best = -1;
  double best_score = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const SaviorWeight& c = candidates[i];
    if ((skip & RegionBit(c.region)) != 0) continue;
    const double score = RendezvousScore(hashes[i], c.weight);
    if (best < 0 || score > best_score) {
      best = c.region;
      best_score = score;
    }
  }
  return best;
}

}  // namespace sluice
