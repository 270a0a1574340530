// The steering decision (DESIGN.md, "The steering decision"): serve a request locally or tunnel
// it to a peer region's sluice. A pure function of the member id, its home region and cohort,
// the table, and which regions this node cannot reach right now: a member gets the same answer
// on every node that has the same table. It allocates nothing, and hashes a member once per
// group of four keys (SaviorPlan in steering_table.h, SipHash24x4); rendezvous.h picks
// the savior.
//
//   bucket(member, R)  = SipHash-2-4(R.bucket_key, member) mod 10000
//   R moves a member   when bucket(member, R) < R.evacuated_bp (so raising the fraction only
//                      ever moves more members; nobody flaps back and forth during a ramp)
//   savior             = the candidate with the highest weight / -ln(u), where
//                      u = ((SipHash-2-4(S.savior_key, member) >> 11) + 0.5) / 2^53
//                      (weighted rendezvous hashing: skipping a savior or changing a weight
//                      moves only the members that must move)
//   usable             a candidate other than R, reachable from this node, marked healthy and
//                      not wholly evacuated (100%): one evacuating a part of its members still
//                      takes the members already sent to it
//   no usable savior   the same rendezvous with weight 1 over every usable region; none
//                      either: the member stays with R (reason "stayed")
#ifndef SLUICE_STEERING_DECISION_H_
#define SLUICE_STEERING_DECISION_H_

#include <cstdint>
#include <string_view>

#include "steering/steering_table.h"

namespace sluice {

// What the decision knows about one request.
struct MemberRequest {
  std::string_view member;   // never empty: the client address is the last resort
  int home = -1;             // region index of the member's home region; -1: unknown
  int cohort = -1;           // cohort id; -1: none
  bool tunneled_in = false;  // arrived through a verified tunnel from a peer region
  uint64_t unreachable = 0;  // bit per region index: this node cannot reach it now
};

enum class SteeringReason : uint8_t {
  kLocal,        // the local region serves its own members
  kTunneledIn,   // a peer region sent it here: served locally, never tunneled again
  kHome,         // misrouted: tunneled to the member's home region
  kEvacuated,    // its region is evacuating this member to a savior (may be the local region)
  kStayed,       // its region is evacuating it but no savior can take it
  kUnreachable,  // its home region cannot be reached from here: served locally
  kFailover,     // (not from Decide) the local region cannot serve it: a savior does (Isthmus)
  kCount,        // not a reason: the number of values above (new values go before it)
};
inline constexpr int kSteeringReasons = static_cast<int>(SteeringReason::kCount);

const char* SteeringReasonName(SteeringReason reason);

struct SteeringDecision {
  int region = 0;  // the region that serves the request
  bool tunnel = false;
  SteeringReason reason = SteeringReason::kLocal;
};

SteeringDecision Decide(const SteeringTable& table, const MemberRequest& request);

// bucket(member, region) above: 0..9999.
uint32_t MemberBucket(const SteeringTable& table, int region, std::string_view member);

// The savior for `member` leaving `region` among the weighted row for `cohort`, skipping the
// region itself, regions wholly evacuated or unhealthy, and those in `skip`. -1: none.
int PickSavior(const SteeringTable& table, int region, std::string_view member, int cohort,
               uint64_t skip);

// Where a request that the local region cannot serve (Isthmus) goes: the local region's savior
// row when it has one, otherwise every other region with equal weight; same skips. -1: none.
int PickFailoverRegion(const SteeringTable& table, std::string_view member, int cohort,
                       uint64_t skip);

}  // namespace sluice

#endif  // SLUICE_STEERING_DECISION_H_
