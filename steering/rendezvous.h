// Weighted rendezvous hashing, the savior choice of the steering decision (decision.h): among
// candidates with weights w and per-member hashes, the one with the highest w / -ln(u), u the
// hash's top 53 bits as a number in (0, 1). That exact score is what every node's answer is held
// to. HighestRendezvous ranks by a fast approximation of -ln(u) first (no call to log, no
// division, the candidates side by side) and takes the exact scores only when the approximation
// cannot tell who leads: the answer is always the exact formula's, and 3 to 7 members in 10^6
// pay for the exact scores (measured over random hashes with two and three candidates).
#ifndef SLUICE_STEERING_RENDEZVOUS_H_
#define SLUICE_STEERING_RENDEZVOUS_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <span>

#include "steering/steering_table.h"

namespace sluice {

// u from a hash: ((hash >> 11) + 0.5) / 2^53. Never 0; 1 only when the top 53 bits are all ones
// (the half rounds the sum up to 2^53), and then the score is -inf: lower than any other.
inline double RendezvousUnit(uint64_t hash) {
  return (static_cast<double>(hash >> 11) + 0.5) * 0x1.0p-53;
}

// The exact score, as decision.h and the README ("Steering between regions") define it.
inline double RendezvousScore(uint64_t hash, uint32_t weight) {
  return static_cast<double>(weight) / -std::log(RendezvousUnit(hash));
}

// ApproxNegLog's largest relative error (tested over every exponent u can have).
inline constexpr double kNegLogError = 2e-6;

// -ln(RendezvousUnit(hash)) to within a relative kNegLogError (-0 when that u is 1).
//
// u = H / 2^54 with H = 2 (hash >> 11) + 1, and the double nearest H is what RendezvousUnit
// rounds u to, times 2^54 (both round the same real number to 53 bits, to even on a tie): the
// same u without the add and the multiply. Then u = 2^k m with m in [sqrt(1/2), sqrt(2)) (k from
// the exponent, m from the significand, split as musl's log splits it), and
// ln u = k ln 2 + f P(f) with f = m - 1, P the degree-6 polynomial through ln(1 + f) / f at the
// 7 Chebyshev nodes of [sqrt(1/2) - 1, sqrt(2) - 1] (largest relative error 1.3e-6 there). With
// k <= -1 the sum adds at least ln 2 to at most ln(2) / 2 of the other sign: no cancellation.
// Always inlined, so that each of HighestRendezvous's variants compiles it for its own
// instructions (with FMA, the polynomial's steps are fused).
[[gnu::always_inline]] inline double ApproxNegLog(uint64_t hash) {
  constexpr uint64_t kSqrtHalfBits = 0x3fe6a09e00000000;  // just under sqrt(1/2)
  constexpr uint64_t kOneBits = 0x3ff0000000000000;
  const double h = static_cast<double>(static_cast<int64_t>((hash >> 10) | 1));
  const uint64_t shifted = std::bit_cast<uint64_t>(h) + (kOneBits - kSqrtHalfBits);
  const int k = static_cast<int>(shifted >> 52) - 0x3ff - 54;
  const double m = std::bit_cast<double>((shifted & 0x000fffffffffffff) + kSqrtHalfBits);
  const double f = m - 1;
  const double f2 = f * f;
  const double f4 = f2 * f2;
  // Estrin's scheme: three short chains instead of one of six steps.
  const double low = 1.0000010273533488 + -0.50000877394819754 * f;
  const double mid = 0.33313563286166059 + -0.2492033626466395 * f;
  const double high = (0.20525443619694228 + -0.18573840134017477 * f) + 0.11657806143449854 * f2;
  const double p = (low + mid * f2) + high * f4;
  return -(static_cast<double>(k) * 0.69314718055994531 + f * p);
}

// The region of the candidate with the highest exact score, hashes[i] being candidate i's (the
// first of equal ones), among those whose region `skip` does not name; -1 when there is none.
// Ranks with fused multiply-adds where the CPU has them (checked at the first call).
int HighestRendezvous(std::span<const SaviorWeight> candidates, const uint64_t* hashes,
                      uint64_t skip);

// The arithmetic the approximation is compiled for: plain (any x86-64 or other CPU) or with FMA
// instructions (x86-64 CPUs that have them). Both are held to kNegLogError and to the exact
// scores by the tests; HighestRendezvous takes the best the CPU has.
enum class RendezvousArithmetic : uint8_t { kPlain, kFma };
bool RendezvousArithmeticAvailable(RendezvousArithmetic arithmetic);
// HighestRendezvous and ApproxNegLog as compiled for `arithmetic` (which must be available).
int HighestRendezvousWith(RendezvousArithmetic arithmetic, std::span<const SaviorWeight> candidates,
                          const uint64_t* hashes, uint64_t skip);
double ApproxNegLogWith(RendezvousArithmetic arithmetic, uint64_t hash);

// The same from the exact scores alone: what HighestRendezvous falls back to.
int HighestRendezvousExact(std::span<const SaviorWeight> candidates, const uint64_t* hashes,
                           uint64_t skip);

}  // namespace sluice

#endif  // SLUICE_STEERING_RENDEZVOUS_H_
