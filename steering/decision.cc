#include "steering/decision.h"

#include <cmath>

namespace sluice {
namespace {

// u in (0, 1) from the top 53 bits: never 0 (log would be -inf) and never 1 (log would be 0).
double RendezvousScore(uint64_t hash, uint32_t weight) {
  double u = (static_cast<double>(hash >> 11) + 0.5) * 0x1.0p-53;
  return static_cast<double>(weight) / -std::log(u);
}

// A region that may take another region's members: not that region, reachable from this node,
// marked healthy, and not wholly evacuated. One evacuating part of its own members still
// serves the rest, and keeps the members already sent to it (they do not move at every step).
bool Usable(const SteeringTable& table, int candidate, int from, uint64_t skip) {
  const RegionRow& row = table.region(candidate);
  return candidate != from && (skip & RegionBit(candidate)) == 0 && row.healthy &&
         row.evacuated_bp < kBasisPoints;
}

// The usable regions a member may go to, in the order they are considered (on the stack: a
// table has at most kMaxRegions regions).
struct Candidates {
  int count = 0;
  int region[kMaxRegions];
  uint32_t weight[kMaxRegions];

  void Add(int r, uint32_t w) {
    region[count] = r;
    weight[count] = w;
    ++count;
  }
};

// The candidate with the highest rendezvous score for `member` (the first of equal ones); -1
// when there is none. The candidates' hashes are computed two at a time (SipHash24Pair).
int HighestScore(const SteeringTable& table, const Candidates& c, std::string_view member) {
  int best = -1;
  double best_score = 0;
  auto consider = [&](int i, uint64_t hash) {
    double score = RendezvousScore(hash, c.weight[i]);
    if (best < 0 || score > best_score) {
      best = c.region[i];
      best_score = score;
    }
  };
  int i = 0;
  for (; i + 1 < c.count; i += 2) {
    uint64_t a = 0;
    uint64_t b = 0;
    SipHash24Pair(table.region(c.region[i]).savior_key, table.region(c.region[i + 1]).savior_key,
                  member, &a, &b);
    consider(i, a);
    consider(i + 1, b);
  }
  if (i < c.count) consider(i, SipHash24(table.region(c.region[i]).savior_key, member));
  return best;
}

// Among every usable region other than `from`, with equal weights: where a member goes when
// none of its region's saviors can take it.
int PickAnyRegion(const SteeringTable& table, int from, std::string_view member, uint64_t skip) {
  Candidates c;
  for (int r = 0; r < table.region_count(); ++r) {
    if (Usable(table, r, from, skip)) c.Add(r, 1);
  }
  return HighestScore(table, c, member);
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
  Candidates c;
  for (const SaviorWeight& s : table.SaviorsFor(region, cohort)) {
    if (Usable(table, s.region, region, skip)) c.Add(s.region, s.weight);
  }
  return HighestScore(table, c, member);
}

int PickFailoverRegion(const SteeringTable& table, std::string_view member, int cohort,
                       uint64_t skip) {
  const int local = table.local();
  if (!table.SaviorsFor(local, cohort).empty()) {
    int savior = PickSavior(table, local, member, cohort, skip);
    if (savior >= 0) return savior;
  }
  return PickAnyRegion(table, local, member, skip);
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
  const RegionRow& row = table.region(target);
  // At 100% every bucket moves: no need to hash for it.
  if (row.evacuated_bp >= kBasisPoints ||
      (row.evacuated_bp > 0 && MemberBucket(table, target, request.member) < row.evacuated_bp)) {
    int savior = PickSavior(table, target, request.member, request.cohort, request.unreachable);
    // No savior can take it: any other usable region rather than back into the one being
    // evacuated (which may be dead). Only when none can does the member stay.
    if (savior < 0) savior = PickAnyRegion(table, target, request.member, request.unreachable);
    if (savior >= 0) return {savior, savior != local, SteeringReason::kEvacuated};
    reason = SteeringReason::kStayed;
  }
  if (target != local && (request.unreachable & RegionBit(target)) != 0) {
    return {local, false, SteeringReason::kUnreachable};
  }
  return {target, target != local, reason};
}

}  // namespace sluice
