#include "steering/decision.h"

#include <bit>
#include <cmath>

namespace sluice {
namespace {

// Enough room for the hashes of every lane of any plan: the bucket and up to kMaxRegions - 1
// candidates, in groups of four.
constexpr size_t kMaxLanes = (kMaxRegions + SipLanes::kLanes) / SipLanes::kLanes * SipLanes::kLanes;

// From this evacuated fraction on, Decide hashes a member's bucket and its first scores in one
// four-lane pass. Below it most members stay: the bucket alone (one scalar hash, about 3/4 of
// the pass) costs less on average, and the pass follows only for those who move.
constexpr uint32_t kOnePassFrom = kBasisPoints / 4;

// The one candidate of `plan` that `skip` leaves usable; -1: none; -2: several (they need
// their scores). A lone candidate needs no hash: it has the highest score whatever it is.
int OnlyUsable(const SaviorPlan& plan, uint64_t skip) {
  const uint64_t usable = plan.candidate_mask & ~skip;
  if (usable == 0) return -1;
  if ((usable & (usable - 1)) == 0) return std::countr_zero(usable);
  return -2;
}

// The candidate of `plan` with the highest rendezvous score for `member` (the first of equal
// ones) among those `skip` leaves usable; -1 when there is none. `lanes` receives the member's
// hashes by the plan's lanes (lane 0 the bucket, lane 1 + i candidate i); its first
// `hashed_groups` groups are there already.
int HighestScore(const SaviorPlan& plan, std::string_view member, uint64_t skip,
                 size_t hashed_groups, uint64_t* lanes) {
  const int only = OnlyUsable(plan, skip);
  if (only != -2) return only;
  for (size_t g = hashed_groups; g < plan.lanes.size(); ++g) {
    SipHash24x4(plan.lanes[g], member, lanes + g * SipLanes::kLanes);
  }
  const int best =
      rendezvous::Highest(plan.candidates.data(), lanes + 1, plan.candidates.size(), skip);
  return best < 0 ? -1 : plan.candidates[static_cast<size_t>(best)].region;
}

}  // namespace

namespace rendezvous {

double ExactScore(uint64_t hash, uint32_t weight) {
  // u in (0, 1) from the top 53 bits: never 0 (log would be -inf) and never 1 (log would be 0).
  const double u = (static_cast<double>(hash >> 11) + 0.5) * 0x1.0p-53;
  return static_cast<double>(weight) / -std::log(u);
}

double ApproxNegLog(uint64_t hash) {
  // u = 2^e f with f in [sqrt(1/2), sqrt(2)); ln f = 2 atanh(s), s = (f - 1) / (f + 1),
  // |s| <= 0.1716, summed to s^11 (what is left is below 1e-11 of it). Near u = 1 the
  // exponent is 0 and ln f keeps its relative accuracy; elsewhere e ln 2 and ln f can cancel
  // at most to a third of the larger. u is never subnormal (at least 2^-54).
  const double u = (static_cast<double>(hash >> 11) + 0.5) * 0x1.0p-53;
  const auto bits = std::bit_cast<uint64_t>(u);
  int e = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  double f = std::bit_cast<double>((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
  if (f > 1.4142135623730951) {
    f *= 0.5;
    ++e;
  }
  const double s = (f - 1) / (f + 1);
  const double s2 = s * s;
  const double atanh =
      s * (1 + s2 * (1.0 / 3 + s2 * (1.0 / 5 + s2 * (1.0 / 7 + s2 * (1.0 / 9 + s2 / 11)))));
  return -(e * 0.6931471805599453 + 2 * atanh);
}

int Highest(const SaviorWeight* candidates, const uint64_t* hashes, size_t count, uint64_t skip,
            bool* exact) {
  if (exact) *exact = false;
  // Ranked by cross products (weight_a / L_a > weight_b / L_b, L = -ln u > 0) of the
  // approximations: no log call and no division.
  double logs[kMaxRegions];
  int best = -1;
  double best_weight = 0;
  double best_log = 1;
  for (size_t i = 0; i < count; ++i) {
    if ((skip & RegionBit(candidates[i].region)) != 0) continue;
    const double weight = candidates[i].weight;
    logs[i] = ApproxNegLog(hashes[i]);
    if (best < 0 || weight * best_log > best_weight * logs[i]) {
      best = static_cast<int>(i);
      best_weight = weight;
      best_log = logs[i];
    }
  }
  if (best < 0) return -1;
  // Certain when every other score is below the best by more than both computations' errors
  // (1e-10 here, a few units in the last place with std::log): then std::log's scores rank
  // them the same. Otherwise (about once in a billion), those scores decide.
  bool certain = true;
  for (size_t i = 0; i < count && certain; ++i) {
    if ((skip & RegionBit(candidates[i].region)) != 0 || static_cast<int>(i) == best) continue;
    certain = best_weight * logs[i] > candidates[i].weight * best_log * (1 + kScoreMargin);
  }
  if (certain) return best;
  if (exact) *exact = true;
  best = -1;
  double best_score = 0;
  for (size_t i = 0; i < count; ++i) {
    if ((skip & RegionBit(candidates[i].region)) != 0) continue;
    const double score = ExactScore(hashes[i], candidates[i].weight);
    if (best < 0 || score > best_score) {
      best = static_cast<int>(i);
      best_score = score;
    }
  }
  return best;
}

}  // namespace rendezvous

const char* SteeringReasonName(SteeringReason reason) {
  switch (reason) {
    case SteeringReason::kLocal:
      return "local";
    case SteeringReason::kTunneledIn:
      return "tunneled_in";
    case SteeringReason::kHome:
      return "home";
    case SteeringReason::kEvacuated:
      return "evacuated";
    case SteeringReason::kStayed:
      return "stayed";
    case SteeringReason::kUnreachable:
      return "unreachable";
    case SteeringReason::kFailover:
      return "failover";
    case SteeringReason::kCount:
      break;
  }
  return "unknown";
}

uint32_t MemberBucket(const SteeringTable& table, int region, std::string_view member) {
  return static_cast<uint32_t>(SipHash24(table.region(region).bucket_key, member) % kBasisPoints);
}

int PickSavior(const SteeringTable& table, int region, std::string_view member, int cohort,
               uint64_t skip) {
  uint64_t lanes[kMaxLanes];
  return HighestScore(table.SaviorPlanFor(region, cohort), member, skip, 0, lanes);
}

int PickFailoverRegion(const SteeringTable& table, std::string_view member, int cohort,
                       uint64_t skip) {
  const int local = table.local();
  if (!table.SaviorsFor(local, cohort).empty()) {
    int savior = PickSavior(table, local, member, cohort, skip);
    if (savior >= 0) return savior;
  }
  uint64_t lanes[kMaxLanes];
  return HighestScore(table.AnyRegionPlanFor(local), member, skip, 0, lanes);
}

SteeringDecision Decide(const SteeringTable& table, const MemberRequest& request) {
  const int local = table.local();
  if (request.tunneled_in) return {local, false, SteeringReason::kTunneledIn};
  int target = local;
  SteeringReason reason = SteeringReason::kLocal;
  if (table.misrouted() == MisroutedMode::kProxyHome && request.home >= 0 &&
      request.home < table.region_count() && request.home != local) {
    target = request.home;
    reason = SteeringReason::kHome;
  }
  const uint32_t evacuated_bp = table.region(target).evacuated_bp;
  if (evacuated_bp > 0) {
    const SaviorPlan& plan = table.SaviorPlanFor(target, request.cohort);
    uint64_t lanes[kMaxLanes];
    size_t hashed_groups = 0;
    bool moves = true;  // at 100% every bucket moves: no need to hash for it
    if (evacuated_bp < kOnePassFrom) {
      moves = MemberBucket(table, target, request.member) < evacuated_bp;
    } else if (evacuated_bp < kBasisPoints) {
      // One pass gives the bucket (MemberBucket) and the first three candidates' scores, which
      // most members (those who move) need next.
      SipHash24x4(plan.lanes[0], request.member, lanes);
      hashed_groups = 1;
      moves = lanes[0] % kBasisPoints < evacuated_bp;
    }
    if (moves) {
      int savior = HighestScore(plan, request.member, request.unreachable, hashed_groups, lanes);
      // No savior can take it: any other usable region rather than back into the one being
      // evacuated (which may be dead). Only when none can does the member stay.
      if (savior < 0) {
        savior = HighestScore(table.AnyRegionPlanFor(target), request.member, request.unreachable,
                              0, lanes);
      }
      if (savior >= 0) return {savior, savior != local, SteeringReason::kEvacuated};
      reason = SteeringReason::kStayed;
    }
  }
  if (target != local && (request.unreachable & RegionBit(target)) != 0) {
    return {local, false, SteeringReason::kUnreachable};
  }
  return {target, target != local, reason};
}

}  // namespace sluice
