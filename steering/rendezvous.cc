#include "steering/rendezvous.h"

#include <algorithm>
#include <atomic>
#include <limits>

namespace sluice {
namespace {

// A skipped candidate's key, and the keys before any candidate: higher than any real one.
constexpr double kNoKey = std::numeric_limits<double>::infinity();

// A best key (the lowest -ln(u) / w, the highest score) ahead of the next by more than this
// factor is ahead in the exact scores too, and strictly: the approximate keys are off by at most
// kNegLogError (and an ulp or two) each, the exact scores by a few ulps.
constexpr double kClearLead = 1 + 5 * kNegLogError;

// HighestRendezvous's ranking, inlined into each arithmetic's variant below.
[[gnu::always_inline]] inline int Highest(std::span<const SaviorWeight> candidates,
                                          const uint64_t* hashes, uint64_t skip) {
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

int HighestPlain(std::span<const SaviorWeight> candidates, const uint64_t* hashes, uint64_t skip) {
  return Highest(candidates, hashes, skip);
}

double ApproxNegLogPlain(uint64_t hash) { return ApproxNegLog(hash); }

using HighestFunction = int (*)(std::span<const SaviorWeight>, const uint64_t*, uint64_t);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SLUICE_RENDEZVOUS_FMA 1

__attribute__((target("fma"))) int HighestFma(std::span<const SaviorWeight> candidates,
                                              const uint64_t* hashes, uint64_t skip) {
  return Highest(candidates, hashes, skip);
}

__attribute__((target("fma"))) double ApproxNegLogFma(uint64_t hash) { return ApproxNegLog(hash); }

bool CpuHasFma() {
  __builtin_cpu_init();  // in case this runs before the constructor that does it
  return __builtin_cpu_supports("fma");
}

int ResolveHighest(std::span<const SaviorWeight> candidates, const uint64_t* hashes, uint64_t skip);

// The first call picks the variant for this CPU (whichever thread gets there first: they all
// pick the same one).
constinit std::atomic<HighestFunction> g_highest{ResolveHighest};

int ResolveHighest(std::span<const SaviorWeight> candidates, const uint64_t* hashes,
                   uint64_t skip) {
  const HighestFunction chosen = CpuHasFma() ? HighestFma : HighestPlain;
  g_highest.store(chosen, std::memory_order_relaxed);
  return chosen(candidates, hashes, skip);
}
#endif

}  // namespace

int HighestRendezvous(std::span<const SaviorWeight> candidates, const uint64_t* hashes,
                      uint64_t skip) {
#ifdef SLUICE_RENDEZVOUS_FMA
  return g_highest.load(std::memory_order_relaxed)(candidates, hashes, skip);
#else
  return HighestPlain(candidates, hashes, skip);
#endif
}

bool RendezvousArithmeticAvailable(RendezvousArithmetic arithmetic) {
  if (arithmetic == RendezvousArithmetic::kPlain) return true;
#ifdef SLUICE_RENDEZVOUS_FMA
  return CpuHasFma();
#else
  return false;
#endif
}

int HighestRendezvousWith(RendezvousArithmetic arithmetic, std::span<const SaviorWeight> candidates,
                          const uint64_t* hashes, uint64_t skip) {
#ifdef SLUICE_RENDEZVOUS_FMA
  if (arithmetic == RendezvousArithmetic::kFma) return HighestFma(candidates, hashes, skip);
#endif
  return HighestPlain(candidates, hashes, skip);
}

double ApproxNegLogWith(RendezvousArithmetic arithmetic, uint64_t hash) {
#ifdef SLUICE_RENDEZVOUS_FMA
  if (arithmetic == RendezvousArithmetic::kFma) return ApproxNegLogFma(hash);
#endif
  return ApproxNegLogPlain(hash);
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
