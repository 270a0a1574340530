#include "steering/decision.h"

#include <bit>

#include "steering/rendezvous.h"

namespace sluice {
namespace {

// Enough room for the hashes of every lane of any plan: the bucket and up to kMaxRegions - 1
// candidates, in groups of four.
constexpr size_t kMaxLanes = (kMaxRegions + SipLanes::kLanes) / SipLanes::kLanes * SipLanes::kLanes;

// From this evacuated fraction on, Decide hashes a member's bucket and its first scores in one
// four-lane pass (and with at most three candidates ranks them whether the member moves or not).
// Below it most members stay: the bucket alone (one scalar hash, about 3/4 of the pass) costs
// less on average, and the pass and the ranking follow only for those who move.
constexpr uint32_t kOnePassFrom = kBasisPoints / 4;

// `yes` if `condition`, else `no`, by masks: the compiler may turn a ?: (or an if) into a branch
// where it judges one cheaper (GCC did, in one version of Decide), and a branch on a coin toss
// is mispredicted half of the time.
inline int SelectWithoutBranch(bool condition, int yes, int no) {
  const int all_if = -static_cast<int>(condition);  // every bit set when `condition`
  return no ^ ((yes ^ no) & all_if);
}

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
  return HighestRendezvous(plan.candidates, lanes + 1, skip);
}

}  // namespace

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
  // The target is one this node cannot reach (only a member's home can be another region).
  const bool target_unreachable = target != local && (request.unreachable & RegionBit(target)) != 0;
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
      // From a quarter to nearly all members moving, whether this one does is hard to predict:
      // a branch on it would be mispredicted for up to every other request (at 50 %), after the
      // whole hash. So when that one pass holds every candidate's hash (at most three), the
      // savior is ranked either way and the answer taken without a branch. With more
      // candidates, ranking those who stay would cost another pass: the branch is cheaper. A
      // member with no savior, or a target this node cannot reach, is rare and decided below
      // (the ranking done again).
      if (plan.lanes.size() == 1) {
        const int savior = HighestScore(plan, request.member, request.unreachable, 1, lanes);
        if (savior >= 0 && !target_unreachable) {
          const int region = SelectWithoutBranch(moves, savior, target);
          const auto why = static_cast<SteeringReason>(SelectWithoutBranch(
              moves, static_cast<int>(SteeringReason::kEvacuated), static_cast<int>(reason)));
          return {region, region != local, why};
        }
      }
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
  if (target_unreachable) return {local, false, SteeringReason::kUnreachable};
  return {target, target != local, reason};
}

}  // namespace sluice
