#include "steering/decision.h"

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "steering/siphash.h"

namespace sluice {
namespace {

constexpr int kEast = 0, kWest = 1, kEu = 2;

// us-east-1 (local), us-west-2, eu-west-1; us-east-1 evacuating `bp` to eu 70 / west 30, and
// its latam cohort to us-west-2 only.
SteeringSpec Spec(uint32_t bp, MisroutedMode misrouted = MisroutedMode::kProxyHome) {
  SteeringSpec spec;
  spec.local_region = "us-east-1";
  spec.misrouted = misrouted;
  spec.cohorts = {"latam"};
  RegionSpec east;
  east.name = "us-east-1";
  east.evacuated_bp = bp;
  east.saviors = {{"eu-west-1", 70}, {"us-west-2", 30}};
  east.cohort_saviors["latam"] = {{"us-west-2", 100}};
  RegionSpec west;
  west.name = "us-west-2";
  west.saviors = {{"us-east-1", 50}, {"eu-west-1", 50}};
  RegionSpec eu;
  eu.name = "eu-west-1";
  eu.saviors = {{"us-east-1", 100}};
  spec.regions = {east, west, eu};
  return spec;
}

SteeringTablePtr Build(const SteeringSpec& spec) {
  auto table = BuildSteeringTable(spec, 1);
  EXPECT_TRUE(table.ok()) << table.status();
  return *table;
}

std::string Member(int i) { return absl::StrFormat("member-%d", i); }

SteeringDecision DecideFor(const SteeringTable& table, const std::string& member, int home = -1,
                           int cohort = -1, uint64_t unreachable = 0) {
  MemberRequest request;
  request.member = member;
  request.home = home;
  request.cohort = cohort;
  request.unreachable = unreachable;
  return Decide(table, request);
}

TEST(DecisionTest, LocalWhenNothingIsEvacuating) {
  SteeringTablePtr table = Build(Spec(0));
  for (int i = 0; i < 1000; ++i) {
    SteeringDecision d = DecideFor(*table, Member(i));
    EXPECT_EQ(d.region, kEast);
    EXPECT_FALSE(d.tunnel);
    EXPECT_EQ(d.reason, SteeringReason::kLocal);
  }
}

TEST(DecisionTest, ATunneledRequestIsNeverTunneledAgain) {
  SteeringTablePtr table = Build(Spec(10000));  // everyone would leave
  MemberRequest request;
  request.member = "alice";
  request.home = kEu;
  request.tunneled_in = true;
  SteeringDecision d = Decide(*table, request);
  EXPECT_EQ(d.region, kEast);
  EXPECT_FALSE(d.tunnel);
  EXPECT_EQ(d.reason, SteeringReason::kTunneledIn);
}

TEST(DecisionTest, RaisingTheFractionOnlyMovesMoreMembersAndNobodyChangesSavior) {
  const uint32_t steps[] = {100, 500, 1000, 2500, 5000, 10000};
  std::vector<int> previous(20000, kEast);
  for (uint32_t bp : steps) {
    SteeringTablePtr table = Build(Spec(bp));
    int moved = 0;
    for (int i = 0; i < 20000; ++i) {
      int region = DecideFor(*table, Member(i)).region;
      if (previous[static_cast<size_t>(i)] != kEast) {
        EXPECT_EQ(region, previous[static_cast<size_t>(i)]) << "member " << i << " at " << bp;
      }
      moved += region != kEast;
      previous[static_cast<size_t>(i)] = region;
    }
    EXPECT_NEAR(moved / 20000.0, bp / 10000.0, 0.015) << bp;
  }
}

TEST(DecisionTest, TheSplitFollowsTheWeightsOverAMillionMembers) {
  SteeringTablePtr quarter = Build(Spec(2500));
  SteeringTablePtr all = Build(Spec(10000));
  constexpr int kMembers = 1000000;
  int moved = 0;
  std::map<int, int> saviors;
  for (int i = 0; i < kMembers; ++i) {
    std::string member = Member(i);
    moved += DecideFor(*quarter, member).region != kEast;
    ++saviors[DecideFor(*all, member).region];
  }
  EXPECT_NEAR(moved / double{kMembers}, 0.25, 0.01);
  EXPECT_EQ(saviors[kEast], 0);
  EXPECT_NEAR(saviors[kEu] / double{kMembers}, 0.70, 0.01);
  EXPECT_NEAR(saviors[kWest] / double{kMembers}, 0.30, 0.01);
}

TEST(DecisionTest, ACohortRowSendsItsMembersToItsOwnSaviors) {
  SteeringTablePtr table = Build(Spec(10000));
  for (int i = 0; i < 2000; ++i) {
    EXPECT_EQ(DecideFor(*table, Member(i), -1, /*cohort=*/0).region, kWest);
  }
}

TEST(DecisionTest, EvacuatedUnhealthyAndUnreachableSaviorsAreSkipped) {
  SteeringSpec spec = Spec(10000);
  SteeringTablePtr base = Build(spec);
  spec.regions[kEu].evacuated_bp = 10000;  // wholly evacuated: takes nobody else's members
  SteeringTablePtr eu_evacuated = Build(spec);
  spec = Spec(10000);
  spec.regions[kEu].healthy = false;
  SteeringTablePtr eu_unhealthy = Build(spec);
  for (int i = 0; i < 2000; ++i) {
    std::string member = Member(i);
    EXPECT_EQ(DecideFor(*eu_evacuated, member).region, kWest);
    EXPECT_EQ(DecideFor(*eu_unhealthy, member).region, kWest);
    EXPECT_EQ(DecideFor(*base, member, -1, -1, RegionBit(kEu)).region, kWest);
    // With every other region out of reach the member stays home.
    SteeringDecision stuck = DecideFor(*base, member, -1, -1, RegionBit(kEu) | RegionBit(kWest));
    EXPECT_EQ(stuck.region, kEast);
    EXPECT_EQ(stuck.reason, SteeringReason::kStayed);
  }
}

TEST(DecisionTest, ASaviorEvacuatingAPartKeepsTheMembersSentToIt) {
  // eu-west-1 starts its own evacuation while us-east-1 is wholly evacuated: the members
  // us-east-1 sent to eu-west-1 stay there at any fraction short of 100%.
  SteeringSpec spec = Spec(10000);
  SteeringTablePtr before = Build(spec);
  for (uint32_t bp : {100u, 1000u, 5000u, 9999u}) {
    spec.regions[kEu].evacuated_bp = bp;
    SteeringTablePtr during = Build(spec);
    for (int i = 0; i < 2000; ++i) {
      std::string member = Member(i);
      EXPECT_EQ(DecideFor(*during, member).region, DecideFor(*before, member).region) << bp;
    }
  }
}

TEST(DecisionTest, NoUsableSaviorMeansAnotherRegionNeverTheEvacuatedOne) {
  // us-east-1 (dead, 100% evacuated) lists only eu-west-1, which is out of reach: its members
  // go to us-west-2, a usable region that is not its savior, rather than back home.
  SteeringSpec spec = Spec(10000);
  spec.regions[kEast].saviors = {{"eu-west-1", 100}};
  spec.regions[kEast].cohort_saviors.clear();
  SteeringTablePtr table = Build(spec);
  for (int i = 0; i < 2000; ++i) {
    SteeringDecision d = DecideFor(*table, Member(i), -1, -1, RegionBit(kEu));
    EXPECT_EQ(d.region, kWest);
    EXPECT_EQ(d.reason, SteeringReason::kEvacuated);
  }
  // The same when the savior is wholly evacuated itself, or marked unhealthy.
  spec.regions[kEu].evacuated_bp = 10000;
  SteeringTablePtr eu_gone = Build(spec);
  spec.regions[kEu].evacuated_bp = 0;
  spec.regions[kEu].healthy = false;
  SteeringTablePtr eu_sick = Build(spec);
  for (int i = 0; i < 2000; ++i) {
    EXPECT_EQ(DecideFor(*eu_gone, Member(i)).region, kWest);
    EXPECT_EQ(DecideFor(*eu_sick, Member(i)).region, kWest);
  }
  // us-west-2 wholly evacuated too: nobody can take them; they stay.
  spec.regions[kWest].evacuated_bp = 10000;
  SteeringTablePtr all_gone = Build(spec);
  EXPECT_EQ(DecideFor(*all_gone, "m").reason, SteeringReason::kStayed);
}

TEST(DecisionTest, SkippingASaviorMovesOnlyItsOwnMembers) {
  SteeringTablePtr table = Build(Spec(10000));
  int stayed_on_eu = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string member = Member(i);
    int before = DecideFor(*table, member).region;
    int after = DecideFor(*table, member, -1, -1, RegionBit(kWest)).region;
    if (before == kEu) {
      EXPECT_EQ(after, kEu) << member;  // nobody on eu-west-1 moves
      ++stayed_on_eu;
    }
  }
  EXPECT_GT(stayed_on_eu, 13000);
}

TEST(DecisionTest, ChangingAWeightMovesMembersOnlyTowardTheHeavierSavior) {
  SteeringSpec spec = Spec(10000);
  SteeringTablePtr before = Build(spec);
  spec.regions[kEast].saviors = {{"eu-west-1", 50}, {"us-west-2", 50}};
  SteeringTablePtr after = Build(spec);
  int moved = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string member = Member(i);
    int a = DecideFor(*before, member).region;
    int b = DecideFor(*after, member).region;
    if (a != b) {
      EXPECT_EQ(a, kEu);
      EXPECT_EQ(b, kWest);
      ++moved;
    }
  }
  EXPECT_NEAR(moved / 20000.0, 0.20, 0.015);  // 70/30 -> 50/50 moves a fifth
}

TEST(DecisionTest, MisroutedMembersGoHomeOrStay) {
  SteeringTablePtr home = Build(Spec(0, MisroutedMode::kProxyHome));
  SteeringTablePtr local = Build(Spec(0, MisroutedMode::kServeLocal));
  SteeringDecision d = DecideFor(*home, "alice", kEu);
  EXPECT_EQ(d.region, kEu);
  EXPECT_TRUE(d.tunnel);
  EXPECT_EQ(d.reason, SteeringReason::kHome);
  EXPECT_EQ(DecideFor(*local, "alice", kEu).region, kEast);
  EXPECT_EQ(DecideFor(*home, "alice", kEast).region, kEast);  // at home already
  d = DecideFor(*home, "alice", kEu, -1, RegionBit(kEu));
  EXPECT_EQ(d.region, kEast);  // home out of reach: served here rather than failing
  EXPECT_EQ(d.reason, SteeringReason::kUnreachable);
}

TEST(DecisionTest, AnEvacuatingHomeRegionSendsItsMembersToItsSaviors) {
  // us-west-2 evacuating everyone to us-east-1 and eu-west-1 50/50: its members who land in
  // us-east-1 either stay here (their savior is us-east-1) or go on to eu-west-1.
  SteeringSpec spec = Spec(0);
  spec.regions[kWest].evacuated_bp = 10000;
  SteeringTablePtr table = Build(spec);
  std::map<int, int> seen;
  for (int i = 0; i < 4000; ++i) ++seen[DecideFor(*table, Member(i), kWest).region];
  EXPECT_EQ(seen[kWest], 0);
  EXPECT_NEAR(seen[kEast] / 4000.0, 0.5, 0.05);
  EXPECT_NEAR(seen[kEu] / 4000.0, 0.5, 0.05);
}

TEST(DecisionTest, RegionOrderDoesNotChangeAnyAnswer) {
  SteeringSpec spec = Spec(5000);
  SteeringTablePtr a = Build(spec);
  std::swap(spec.regions[1], spec.regions[2]);
  SteeringTablePtr b = Build(spec);
  for (int i = 0; i < 5000; ++i) {
    std::string member = Member(i);
    EXPECT_EQ(a->region(DecideFor(*a, member).region).name,
              b->region(DecideFor(*b, member).region).name);
  }
}

TEST(DecisionTest, MatchesTheDocumentedModel) {
  // Values from tests/integration/steering_model.py, an independent implementation of the
  // definition in decision.h and the README.
  SteeringTablePtr table = Build(Spec(2500));
  EXPECT_EQ(MemberBucket(*table, kEast, "alice"), 2339u);
  EXPECT_EQ(MemberBucket(*table, kEast, "bob"), 9519u);
  EXPECT_EQ(DecideFor(*table, "alice").region, kEu);
  EXPECT_EQ(DecideFor(*table, "bob").region, kEast);
}

// The definition in decision.h, one savior at a time: what PickSavior (which hashes two
// candidates at once) must agree with for every member and any number of saviors.
int ReferenceSavior(const SteeringTable& table, int region, const std::string& member) {
  int best = -1;
  double best_score = 0;
  for (const SaviorWeight& s : table.SaviorsFor(region, -1)) {
    const RegionRow& row = table.region(s.region);
    if (s.region == region || !row.healthy || row.evacuated_bp >= kBasisPoints) continue;
    double u = (static_cast<double>(SipHash24(row.savior_key, member) >> 11) + 0.5) * 0x1.0p-53;
    double score = s.weight / -std::log(u);
    if (best < 0 || score > best_score) {
      best = s.region;
      best_score = score;
    }
  }
  return best;
}

TEST(DecisionTest, EveryNumberOfSaviorsPicksAsTheDefinitionSays) {
  for (int saviors = 1; saviors <= 6; ++saviors) {
    SteeringSpec spec;
    spec.local_region = "r0";
    for (int r = 0; r <= saviors; ++r) {
      RegionSpec region;
      region.name = absl::StrFormat("r%d", r);
      spec.regions.push_back(region);
    }
    spec.regions[0].evacuated_bp = 10000;
    for (int r = 1; r <= saviors; ++r) {
      spec.regions[0].saviors[absl::StrFormat("r%d", r)] = static_cast<uint32_t>(10 * r);
    }
    if (saviors >= 3) {  // one savior is evacuated itself: skipped among the rest
      spec.regions[2].evacuated_bp = 10000;
      spec.regions[2].saviors = {{"r1", 1}};
    }
    SteeringTablePtr table = Build(spec);
    for (int i = 0; i < 3000; ++i) {
      std::string member = Member(i);
      ASSERT_EQ(PickSavior(*table, 0, member, -1, 0), ReferenceSavior(*table, 0, member))
          << saviors << " saviors, " << member;
    }
  }
}

TEST(DecisionTest, FailoverUsesTheLocalSaviorRowOrEveryPeer) {
  SteeringTablePtr table = Build(Spec(0));
  std::map<int, int> seen;
  for (int i = 0; i < 10000; ++i) ++seen[PickFailoverRegion(*table, Member(i), -1, 0)];
  EXPECT_NEAR(seen[kEu] / 10000.0, 0.70, 0.02);
  EXPECT_EQ(PickFailoverRegion(*table, "alice", -1, RegionBit(kEu) | RegionBit(kWest)), -1);
  // A local region without saviors fails over to any peer, evenly.
  SteeringSpec spec = Spec(0);
  spec.local_region = "eu-west-1";
  spec.regions[kEu].saviors.clear();
  SteeringTablePtr eu = Build(spec);
  seen.clear();
  for (int i = 0; i < 10000; ++i) ++seen[PickFailoverRegion(*eu, Member(i), -1, 0)];
  EXPECT_EQ(seen[kEu], 0);
  EXPECT_NEAR(seen[kEast] / 10000.0, 0.5, 0.02);
}

}  // namespace
}  // namespace sluice
