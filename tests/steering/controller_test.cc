#include "steering/controller.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "steering/state_file.h"

namespace sluice {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1800000000);

SteeringSpec Spec() {
  SteeringSpec spec;
  spec.local_region = "us-east-1";
  RegionSpec east;
  east.name = "us-east-1";
  east.saviors = {{"eu-west-1", 70}, {"us-west-2", 30}};
  RegionSpec west;
  west.name = "us-west-2";
  RegionSpec eu;
  eu.name = "eu-west-1";
  spec.regions = {east, west, eu};
  return spec;
}

Controller Make(ControllerState state = Controller::StateFromSpec(Spec()), GateLimits limits = {}) {
  auto c = Controller::Create(Spec(), std::move(state), limits);
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

uint32_t Fraction(const Controller& c, const std::string& region) {
  const SteeringTable& t = *c.table();
  return t.region(t.FindRegion(region)).evacuated_bp;
}

// A gate that reports every region healthy except those in `sick`.
struct FakeGate {
  std::map<std::string, RegionHealth> sick;
  std::vector<std::string> asked;
  HealthGate Get() {
    return [this](const std::string& region) {
      asked.push_back(region);
      auto it = sick.find(region);
      return it == sick.end() ? RegionHealth{} : it->second;
    };
  }
};

PlanRequest Evacuate(std::vector<uint32_t> steps = {}, absl::Duration hold = absl::Seconds(10)) {
  PlanRequest r;
  r.region = "us-east-1";
  r.saviors = {{"eu-west-1", 70}, {"us-west-2", 30}};
  r.steps_bp = std::move(steps);
  r.hold = hold;
  r.inject_standbys = false;  // the ramp alone (ControllerCapacityTest covers the standbys)
  return r;
}

TEST(ControllerTest, TheDefaultRampTakesEachStepAfterItsHold) {
  Controller c = Make();
  FakeGate gate;
  auto id = c.StartPlan(Evacuate(), "alice", kStart);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(c.NextDue(), kStart);
  std::vector<uint32_t> seen;
  absl::Time now = kStart;
  // Each step is due exactly `hold` after the one before: one tick a second for 60 s.
  for (int s = 0; s <= 60; ++s, now += absl::Seconds(1)) {
    if (c.Tick(now, gate.Get())) seen.push_back(Fraction(c, "us-east-1"));
  }
  EXPECT_EQ(seen, (std::vector<uint32_t>{100, 500, 1000, 2500, 5000, 10000}));
  const RampPlan* plan = c.FindPlan(*id);
  ASSERT_NE(plan, nullptr);
  EXPECT_EQ(plan->state, RampPlan::State::kDone);
  EXPECT_EQ(plan->finished, kStart + absl::Seconds(50));
  EXPECT_EQ(c.NextDue(), absl::InfiniteFuture());
  EXPECT_EQ(c.table()->version(), 7u);  // six steps on top of version 1
  // Only the saviors with weight were asked, once per step.
  EXPECT_EQ(gate.asked.size(), 12u);
}

TEST(ControllerTest, EveryTransitionIsAnEventWithVersions) {
  Controller c = Make();
  FakeGate gate;
  // Steps small enough not to warn (25% of the region's members at a time, 70/30).
  ASSERT_TRUE(c.StartPlan(Evacuate({2500, 5000}, absl::Seconds(5)), "alice", kStart).ok());
  c.Tick(kStart, gate.Get());
  c.Tick(kStart + absl::Seconds(5), gate.Get());
  std::vector<ControllerEvent> events = c.TakeEvents();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].actor, "alice");
  EXPECT_EQ(events[0].version_before, events[0].version_after);
  EXPECT_EQ(events[1].action, "plan 1 step 1/2: us-east-1 25%");
  EXPECT_EQ(events[1].version_before, 1u);
  EXPECT_EQ(events[1].version_after, 2u);
  EXPECT_EQ(events[1].actor, "controller");
  EXPECT_EQ(events[3].action, "plan 1 done");
  EXPECT_TRUE(c.TakeEvents().empty());
}

TEST(ControllerTest, AFailingGateHoldsThenRollsBackOneStep) {
  GateLimits limits;
  limits.recheck = absl::Seconds(5);
  limits.rollback_after = 3;
  Controller c = Make(Controller::StateFromSpec(Spec()), limits);
  FakeGate gate;
  auto id = c.StartPlan(Evacuate({1000, 2500, 5000}, absl::Seconds(10)), "alice", kStart);
  ASSERT_TRUE(id.ok());
  c.Tick(kStart, gate.Get());
  c.Tick(kStart + absl::Seconds(10), gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 2500u);

  RegionHealth bad;
  bad.requests = 1000;
  bad.error_rate = 0.2;
  gate.sick["eu-west-1"] = bad;
  absl::Time now = kStart + absl::Seconds(20);
  EXPECT_FALSE(c.Tick(now, gate.Get()));
  const RampPlan* plan = c.FindPlan(*id);
  EXPECT_EQ(plan->state, RampPlan::State::kHolding);
  EXPECT_EQ(plan->held_since, now);
  EXPECT_NE(plan->gate_message.find("eu-west-1 error rate 20.00%"), std::string::npos)
      << plan->gate_message;
  EXPECT_EQ(c.NextDue(), now + absl::Seconds(5));
  EXPECT_FALSE(c.Tick(now + absl::Seconds(4), gate.Get()));  // not due yet
  EXPECT_FALSE(c.Tick(now + absl::Seconds(5), gate.Get()));
  EXPECT_EQ(Fraction(c, "us-east-1"), 2500u);
  EXPECT_TRUE(c.Tick(now + absl::Seconds(10), gate.Get()));  // third failure: step back
  EXPECT_EQ(Fraction(c, "us-east-1"), 1000u);
  plan = c.FindPlan(*id);
  EXPECT_EQ(plan->step, 0);
  EXPECT_EQ(plan->state, RampPlan::State::kHolding);
  // Re-checks and the rollback keep the time it started holding (how long it is stuck).
  EXPECT_EQ(plan->held_since, now);

  // The savior recovers: the ramp climbs again after the hold.
  gate.sick.clear();
  EXPECT_FALSE(c.Tick(now + absl::Seconds(15), gate.Get()));
  EXPECT_TRUE(c.Tick(now + absl::Seconds(20), gate.Get()));
  EXPECT_EQ(Fraction(c, "us-east-1"), 2500u);
  EXPECT_EQ(c.FindPlan(*id)->state, RampPlan::State::kRunning);
  EXPECT_EQ(c.FindPlan(*id)->held_since, absl::InfinitePast());
  EXPECT_TRUE(c.FindPlan(*id)->gate_message.empty());
}

TEST(ControllerTest, RollingBackTheFirstStepReturnsToWhereTheRegionWas) {
  GateLimits limits;
  limits.rollback_after = 1;
  Controller c = Make(Controller::StateFromSpec(Spec()), limits);
  RegionChange set;
  set.region = "us-east-1";
  set.has_fraction = true;
  set.evacuated_bp = 300;
  ASSERT_TRUE(c.SetRegion(set, "bob", kStart).ok());
  FakeGate gate;
  ASSERT_TRUE(c.StartPlan(Evacuate({100, 500, 1000}), "alice", kStart).ok());
  c.Tick(kStart, gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 500u);  // 1% is below where it stood: skipped
  gate.sick["us-west-2"].p99 = absl::Seconds(9);
  EXPECT_TRUE(c.Tick(kStart + absl::Seconds(10), gate.Get()));
  EXPECT_EQ(Fraction(c, "us-east-1"), 300u);
}

TEST(ControllerTest, AnUnreachableSaviorHoldsTheRamp) {
  Controller c = Make();
  FakeGate gate;
  gate.sick["us-west-2"].reachable = false;
  gate.sick["us-west-2"].detail = "connection refused";
  auto id = c.StartPlan(Evacuate(), "alice", kStart);
  EXPECT_FALSE(c.Tick(kStart, gate.Get()));
  EXPECT_EQ(Fraction(c, "us-east-1"), 0u);
  EXPECT_EQ(c.FindPlan(*id)->gate_message, "us-west-2 unreachable (connection refused)");
}

TEST(ControllerTest, AbortStopsWhereItIsAndRestoreRampsDown) {
  Controller c = Make();
  FakeGate gate;
  auto id = c.StartPlan(Evacuate(), "alice", kStart);
  for (int s = 0; s <= 20; ++s) c.Tick(kStart + absl::Seconds(s), gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 1000u);
  ASSERT_TRUE(c.AbortPlan(*id, "bob", kStart + absl::Seconds(21)).ok());
  EXPECT_EQ(c.FindPlan(*id)->state, RampPlan::State::kAborted);
  for (int s = 21; s <= 60; ++s) c.Tick(kStart + absl::Seconds(s), gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 1000u);
  EXPECT_EQ(c.AbortPlan(*id, "bob", kStart).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(c.AbortPlan(99, "bob", kStart).code(), absl::StatusCode::kNotFound);

  PlanRequest restore;
  restore.kind = RampPlan::Kind::kRestore;
  restore.region = "us-east-1";
  restore.hold = absl::Seconds(1);
  auto rid = c.StartPlan(restore, "carol", kStart + absl::Seconds(60));
  ASSERT_TRUE(rid.ok()) << rid.status();
  EXPECT_EQ(c.FindPlan(*rid)->steps_bp, (std::vector<uint32_t>{500, 100, 0}));
  std::vector<uint32_t> seen;
  for (int s = 60; s <= 70; ++s) {
    if (c.Tick(kStart + absl::Seconds(s), gate.Get())) seen.push_back(Fraction(c, "us-east-1"));
  }
  EXPECT_EQ(seen, (std::vector<uint32_t>{500, 100, 0}));
  // A restore asks the region that takes its traffic back.
  EXPECT_EQ(gate.asked.back(), "us-east-1");
  restore.hold = absl::Seconds(1);
  EXPECT_EQ(c.StartPlan(restore, "carol", kStart).status().code(),
            absl::StatusCode::kInvalidArgument);  // nothing to restore
}

TEST(ControllerTest, DirectChangesAreRefusedDuringAPlanUnlessForced) {
  Controller c = Make();
  FakeGate gate;
  auto id = c.StartPlan(Evacuate(), "alice", kStart);
  c.Tick(kStart, gate.Get());
  RegionChange set;
  set.region = "us-east-1";
  set.has_fraction = true;
  set.evacuated_bp = 10000;
  absl::Status refused = c.SetRegion(set, "bob", kStart);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("active plan"), std::string::npos);
  EXPECT_EQ(Fraction(c, "us-east-1"), 100u);
  // Another region is free to change.
  RegionChange other;
  other.region = "us-west-2";
  other.has_healthy = true;
  other.healthy = false;
  EXPECT_TRUE(c.SetRegion(other, "bob", kStart).ok());
  set.force = true;
  ASSERT_TRUE(c.SetRegion(set, "bob", kStart).ok());
  EXPECT_EQ(Fraction(c, "us-east-1"), 10000u);
  EXPECT_EQ(c.FindPlan(*id)->state, RampPlan::State::kAborted);
  // A second plan on a region with an active one is refused too.
  PlanRequest restore;
  restore.kind = RampPlan::Kind::kRestore;
  restore.region = "us-east-1";
  restore.hold = absl::Seconds(1);
  c.StartPlan(restore, "a", kStart).IgnoreError();
  EXPECT_EQ(c.StartPlan(Evacuate(), "alice", kStart).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ControllerTest, AStaleVersionIsRefusedAndNothingIsHalfApplied) {
  Controller c = Make();
  RegionChange set;
  set.region = "us-east-1";
  set.has_fraction = true;
  set.evacuated_bp = 2500;
  set.expected_version = 1;
  ASSERT_TRUE(c.SetRegion(set, "bob", kStart).ok());
  EXPECT_EQ(c.state().version, 2u);
  set.evacuated_bp = 5000;
  EXPECT_EQ(c.SetRegion(set, "bob", kStart).code(), absl::StatusCode::kFailedPrecondition);
  // A bad savior in the same change as a good fraction: neither is applied.
  RegionChange bad;
  bad.region = "us-east-1";
  bad.has_fraction = true;
  bad.evacuated_bp = 7500;
  bad.has_saviors = true;
  bad.saviors = {{"mars-1", 100}};
  absl::Status s = c.SetRegion(bad, "bob", kStart);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("mars-1"), std::string::npos) << s;
  EXPECT_EQ(Fraction(c, "us-east-1"), 2500u);
  EXPECT_EQ(c.state().version, 2u);
  bad.region = "mars-1";
  EXPECT_EQ(c.SetRegion(bad, "bob", kStart).code(), absl::StatusCode::kNotFound);
}

TEST(ControllerTest, BadPlansAreRefused) {
  Controller c = Make();
  EXPECT_EQ(c.StartPlan(Evacuate({500, 100}), "a", kStart).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.StartPlan(Evacuate({500, 20000}), "a", kStart).status().code(),
            absl::StatusCode::kInvalidArgument);
  PlanRequest no_saviors = Evacuate();
  no_saviors.region = "us-west-2";
  no_saviors.saviors.clear();
  EXPECT_EQ(c.StartPlan(no_saviors, "a", kStart).status().code(),
            absl::StatusCode::kInvalidArgument);
  PlanRequest self = Evacuate();
  self.saviors = {{"us-east-1", 100}};
  EXPECT_EQ(c.StartPlan(self, "a", kStart).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(c.state().plans.empty());
}

TEST(ControllerTest, AnEvacuationNoSaviorCanTakeIsRefusedUnlessForced) {
  Controller c = Make();
  FakeGate gate;
  // eu-west-1 wholly evacuated, us-west-2 unreachable: nobody could take us-east-1's members.
  RegionChange eu_gone;
  eu_gone.region = "eu-west-1";
  eu_gone.has_fraction = true;
  eu_gone.evacuated_bp = 10000;
  eu_gone.has_saviors = true;
  eu_gone.saviors = {{"us-west-2", 100}};
  ASSERT_TRUE(c.SetRegion(eu_gone, "a", kStart, gate.Get()).ok());
  gate.sick["us-west-2"].reachable = false;
  gate.sick["us-west-2"].detail = "connect refused";
  auto refused = c.StartPlan(Evacuate(), "a", kStart, gate.Get());
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("eu-west-1: evacuated itself"), std::string::npos)
      << refused.status();
  EXPECT_NE(refused.status().message().find("us-west-2: unreachable (connect refused)"),
            std::string::npos)
      << refused.status();
  RegionChange set;
  set.region = "us-east-1";
  set.has_fraction = true;
  set.evacuated_bp = 2500;
  EXPECT_EQ(c.SetRegion(set, "a", kStart, gate.Get()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Fraction(c, "us-east-1"), 0u);
  // Its origins down counts the same.
  gate.sick["us-west-2"] = RegionHealth{};
  gate.sick["us-west-2"].origins_down = true;
  EXPECT_EQ(c.StartPlan(Evacuate(), "a", kStart, gate.Get()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Forced, it goes (members then stay: the decision has nowhere else to send them).
  PlanRequest forced = Evacuate();
  forced.force = true;
  EXPECT_TRUE(c.StartPlan(forced, "a", kStart, gate.Get()).ok());
  // One usable savior is enough.
  Controller fresh = Make();
  FakeGate one_sick;
  one_sick.sick["us-west-2"].reachable = false;
  EXPECT_TRUE(fresh.StartPlan(Evacuate(), "a", kStart, one_sick.Get()).ok());
}

TEST(ControllerTest, ARestoreIntoDeadOriginsIsRefusedAndNeverCompletes) {
  ControllerState state = Controller::StateFromSpec(Spec());
  state.regions[0].evacuated_bp = 10000;
  Controller c = Make(state);
  FakeGate gate;
  gate.sick["us-east-1"].origins_down = true;
  gate.sick["us-east-1"].detail = "every endpoint of app fails its health checks";
  PlanRequest restore;
  restore.kind = RampPlan::Kind::kRestore;
  restore.region = "us-east-1";
  restore.hold = absl::Seconds(1);
  auto refused = c.StartPlan(restore, "a", kStart, gate.Get());
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("origins are down"), std::string::npos);
  // Started while they looked fine, it holds (and rolls back) once they are down, whatever
  // the request count: no step is taken into a region that cannot serve.
  gate.sick.clear();
  auto id = c.StartPlan(restore, "a", kStart, gate.Get());
  ASSERT_TRUE(id.ok()) << id.status();
  c.Tick(kStart, gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 5000u);
  gate.sick["us-east-1"].origins_down = true;
  gate.sick["us-east-1"].detail = "all 40 attempts at its origins in the last 30s failed";
  for (int s = 1; s <= 120; ++s) c.Tick(kStart + absl::Seconds(s), gate.Get());
  const RampPlan* plan = c.FindPlan(*id);
  EXPECT_NE(plan->state, RampPlan::State::kDone);
  EXPECT_GE(Fraction(c, "us-east-1"), 5000u);
  EXPECT_NE(plan->gate_message.find("us-east-1 origins down"), std::string::npos)
      << plan->gate_message;
}

TEST(ControllerTest, ARestoreGivesBackTheSaviorsTheEvacuationReplaced) {
  Controller c = Make();
  FakeGate gate;
  PlanRequest evacuate = Evacuate({10000}, absl::Seconds(1));
  evacuate.saviors = {{"us-west-2", 100}};
  ASSERT_TRUE(c.StartPlan(evacuate, "a", kStart, gate.Get()).ok());
  c.Tick(kStart, gate.Get());
  const SteeringTable& during = *c.table();
  EXPECT_EQ(during.region(0).saviors.size(), 1u);  // the plan's
  PlanRequest restore;
  restore.kind = RampPlan::Kind::kRestore;
  restore.region = "us-east-1";
  restore.steps_bp = {0};
  restore.hold = absl::Seconds(1);
  ASSERT_TRUE(c.StartPlan(restore, "a", kStart + absl::Seconds(5), gate.Get()).ok());
  c.Tick(kStart + absl::Seconds(5), gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 0u);
  // The configured failover row is back: eu-west-1 70, us-west-2 30.
  const RegionSpec& east = c.spec().regions[0];
  EXPECT_EQ(east.saviors, (std::map<std::string, uint32_t>{{"eu-west-1", 70}, {"us-west-2", 30}}));
  // It survives the state file.
  auto decoded = DecodeControllerState(EncodeControllerState(c.state()));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  // A restore of another region touches nobody else's saviors.
  RegionChange west;
  west.region = "us-west-2";
  west.has_fraction = true;
  west.evacuated_bp = 500;
  west.has_saviors = true;
  west.saviors = {{"eu-west-1", 100}};
  ASSERT_TRUE(c.SetRegion(west, "a", kStart + absl::Seconds(10), gate.Get()).ok());
  restore.region = "us-west-2";
  ASSERT_TRUE(c.StartPlan(restore, "a", kStart + absl::Seconds(10), gate.Get()).ok());
  c.Tick(kStart + absl::Seconds(10), gate.Get());
  EXPECT_EQ(c.spec().regions[1].saviors, (std::map<std::string, uint32_t>{{"eu-west-1", 100}}));
  EXPECT_EQ(c.spec().regions[0].saviors,
            (std::map<std::string, uint32_t>{{"eu-west-1", 70}, {"us-west-2", 30}}));
}

TEST(ControllerTest, SettingTheFractionToZeroByHandAlsoGivesBackTheReplacedSaviors) {
  Controller c = Make();
  FakeGate gate;
  PlanRequest evacuate = Evacuate({10000}, absl::Seconds(1));
  evacuate.saviors = {{"us-west-2", 100}};
  ASSERT_TRUE(c.StartPlan(evacuate, "a", kStart, gate.Get()).ok());
  c.Tick(kStart, gate.Get());
  ASSERT_EQ(Fraction(c, "us-east-1"), 10000u);
  // Not to 0%: the plan's saviors stay (the region still evacuates some members to them).
  RegionChange down;
  down.region = "us-east-1";
  down.has_fraction = true;
  down.evacuated_bp = 1000;
  ASSERT_TRUE(c.SetRegion(down, "a", kStart + absl::Seconds(2), gate.Get()).ok());
  EXPECT_EQ(c.spec().regions[0].saviors, (std::map<std::string, uint32_t>{{"us-west-2", 100}}));
  down.evacuated_bp = 0;
  ASSERT_TRUE(c.SetRegion(down, "a", kStart + absl::Seconds(3), gate.Get()).ok());
  EXPECT_EQ(c.spec().regions[0].saviors,
            (std::map<std::string, uint32_t>{{"eu-west-1", 70}, {"us-west-2", 30}}));
  std::vector<ControllerEvent> events = c.TakeEvents();
  ASSERT_FALSE(events.empty());
  EXPECT_NE(events.back().action.find("saviors are {eu-west-1=70,us-west-2=30} again"),
            std::string::npos)
      << events.back().action;
  // Saviors given with the change win: nothing is put back.
  ASSERT_TRUE(c.StartPlan(evacuate, "a", kStart + absl::Seconds(4), gate.Get()).ok());
  c.Tick(kStart + absl::Seconds(4), gate.Get());
  down.has_saviors = true;
  down.saviors = {{"eu-west-1", 100}};
  ASSERT_TRUE(c.SetRegion(down, "a", kStart + absl::Seconds(6), gate.Get()).ok());
  EXPECT_EQ(c.spec().regions[0].saviors, (std::map<std::string, uint32_t>{{"eu-west-1", 100}}));
}

std::vector<std::string> Warnings(Controller* c) {
  std::vector<std::string> warnings;
  for (const ControllerEvent& e : c->TakeEvents()) {
    if (e.warning) warnings.push_back(e.action);
  }
  return warnings;
}

TEST(ControllerTest, AStepThatMovesTooManyMembersOntoOneRegionIsAWarning) {
  // The default ramp to 70/30 moves at most 35% of us-east-1 onto eu-west-1 at once: quiet.
  Controller c = Make();
  FakeGate gate;
  ASSERT_TRUE(c.StartPlan(Evacuate(), "a", kStart, gate.Get()).ok());
  for (int s = 0; s <= 60; ++s) c.Tick(kStart + absl::Seconds(s), gate.Get());
  ASSERT_EQ(Fraction(c, "us-east-1"), 10000u);
  EXPECT_EQ(Warnings(&c), std::vector<std::string>{});

  // us-east-1 wholly evacuated 70/30; then us-west-2 goes from 0 to 100% in one step onto
  // eu-west-1: its own members and the 30% of us-east-1's it was serving arrive together.
  PlanRequest west;
  west.region = "us-west-2";
  west.saviors = {{"eu-west-1", 100}};
  west.steps_bp = {1000, 10000};
  west.hold = absl::Seconds(1);
  west.force = true;  // a second region evacuated: only when forced
  ASSERT_TRUE(c.StartPlan(west, "a", kStart + absl::Seconds(100), gate.Get()).ok());
  c.Tick(kStart + absl::Seconds(100), gate.Get());
  // At 10% it still serves the members it took for us-east-1: only 10% of its own move.
  EXPECT_EQ(Warnings(&c), std::vector<std::string>{});
  c.Tick(kStart + absl::Seconds(101), gate.Get());
  std::vector<std::string> warnings = Warnings(&c);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("about 120% of a region's members onto eu-west-1"), std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[0].find("30% of us-east-1's, 90% of us-west-2's"), std::string::npos)
      << warnings[0];

  // A direct set is one step too.
  Controller d = Make();
  RegionChange all;
  all.region = "us-east-1";
  all.has_fraction = true;
  all.evacuated_bp = 10000;
  all.has_saviors = true;
  all.saviors = {{"us-west-2", 1}};
  ASSERT_TRUE(d.SetRegion(all, "a", kStart, gate.Get()).ok());
  warnings = Warnings(&d);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("setting us-east-1 moves about 100% of a region's members onto "
                             "us-west-2 at once (100% of us-east-1's)"),
            std::string::npos)
      << warnings[0];
}

TEST(ControllerTest, ARestartInTheMiddleOfARampResumesWhereItWas) {
  Controller before = Make();
  FakeGate gate;
  auto id = before.StartPlan(Evacuate(), "alice", kStart);
  for (int s = 0; s <= 25; ++s) before.Tick(kStart + absl::Seconds(s), gate.Get());
  EXPECT_EQ(Fraction(before, "us-east-1"), 1000u);

  // The state goes through the file format, as across a restart.
  auto decoded = DecodeControllerState(EncodeControllerState(before.state()));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  Controller after = Make(*decoded);
  EXPECT_EQ(after.table()->version(), before.table()->version());
  EXPECT_EQ(Fraction(after, "us-east-1"), 1000u);
  EXPECT_EQ(after.NextDue(), kStart + absl::Seconds(30));
  std::vector<uint32_t> seen;
  for (int s = 26; s <= 60; ++s) {
    if (after.Tick(kStart + absl::Seconds(s), gate.Get())) {
      seen.push_back(Fraction(after, "us-east-1"));
    }
  }
  EXPECT_EQ(seen, (std::vector<uint32_t>{2500, 5000, 10000}));
  EXPECT_EQ(after.FindPlan(*id)->state, RampPlan::State::kDone);
}

TEST(ControllerTest, SavedValuesWinOverTheConfigurationAndUnknownRegionsAreDropped) {
  ControllerState state = Controller::StateFromSpec(Spec());
  state.version = 41;
  state.regions[0].evacuated_bp = 5000;
  RegionSpec gone;
  gone.name = "ap-south-1";
  gone.evacuated_bp = 10000;
  state.regions.push_back(gone);
  Controller c = Make(state);
  EXPECT_EQ(c.table()->version(), 41u);
  EXPECT_EQ(Fraction(c, "us-east-1"), 5000u);
  EXPECT_EQ(c.table()->FindRegion("ap-south-1"), -1);
  // A saved savior the configuration no longer has makes the state unusable: refused.
  state.regions[0].saviors = {{"ap-south-1", 100}};
  EXPECT_FALSE(Controller::Create(Spec(), state, {}).ok());
}

TEST(ControllerTest, FinishedPlansAreKeptUpToALimit) {
  Controller c = Make();
  FakeGate gate;
  absl::Time now = kStart;
  for (int i = 0; i < 30; ++i) {
    auto id = c.StartPlan(Evacuate({100}), "a", now);
    ASSERT_TRUE(id.ok()) << id.status();
    c.Tick(now, gate.Get());
    RegionChange back;
    back.region = "us-east-1";
    back.has_fraction = true;
    back.evacuated_bp = 0;
    ASSERT_TRUE(c.SetRegion(back, "a", now).ok());
    now += absl::Seconds(1);
  }
  EXPECT_EQ(c.state().plans.size(), 20u);
  EXPECT_EQ(c.state().plans.front().id, 30u);
}

const RegionSpec& Region(const Controller& c, const std::string& name) {
  for (const RegionSpec& r : c.spec().regions) {
    if (r.name == name) return r;
  }
  ADD_FAILURE() << "no region " << name;
  return c.spec().regions[0];
}

TEST(ControllerCapacityTest, OneRegionAtATime) {
  Controller c = Make();
  FakeGate gate;
  ASSERT_TRUE(c.StartPlan(Evacuate({10000}), "a", kStart).ok());
  PlanRequest west;
  west.region = "us-west-2";
  west.saviors = {{"eu-west-1", 1}};
  absl::Status second = c.StartPlan(west, "a", kStart).status();
  EXPECT_EQ(second.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.message().find("us-east-1 is being evacuated (plan 1)"), std::string::npos)
      << second;
  c.Tick(kStart, gate.Get());
  ASSERT_EQ(Fraction(c, "us-east-1"), 10000u);  // done: evacuated, no active plan
  second = c.StartPlan(west, "a", kStart).status();
  EXPECT_NE(second.message().find("us-east-1 is evacuated 100%"), std::string::npos) << second;
  RegionChange set;
  set.region = "us-west-2";
  set.has_fraction = true;
  set.evacuated_bp = 100;
  set.has_saviors = true;
  set.saviors = {{"eu-west-1", 1}};
  EXPECT_EQ(c.SetRegion(set, "a", kStart).code(), absl::StatusCode::kFailedPrecondition);
  west.force = true;
  EXPECT_TRUE(c.StartPlan(west, "a", kStart).ok());
}

TEST(ControllerCapacityTest, APlanInjectsItsSaviorsStandbysAndARestoreTakesThemOut) {
  Controller c = Make();
  FakeGate gate;
  ASSERT_TRUE(c.SetStandbys("us-west-2", "api", true, "bob", kStart).ok());
  PlanRequest evacuate = Evacuate({5000, 10000}, absl::Seconds(1));
  evacuate.inject_standbys = true;
  ASSERT_TRUE(c.StartPlan(evacuate, "a", kStart).ok());
  EXPECT_EQ(Region(c, "eu-west-1").standbys, std::set<std::string>{"*"});
  EXPECT_EQ(Region(c, "us-west-2").standbys, (std::set<std::string>{"*", "api"}));
  EXPECT_EQ(c.state().plans[0].injected, (std::vector<std::string>{"eu-west-1", "us-west-2"}));
  for (int s = 0; s <= 3; ++s) c.Tick(kStart + absl::Seconds(s), gate.Get());
  ASSERT_EQ(Fraction(c, "us-east-1"), 10000u);
  PlanRequest restore;
  restore.kind = RampPlan::Kind::kRestore;
  restore.region = "us-east-1";
  restore.steps_bp = {0};
  ASSERT_TRUE(c.StartPlan(restore, "a", kStart + absl::Seconds(5)).ok());
  EXPECT_EQ(Region(c, "eu-west-1").standbys, std::set<std::string>{"*"});  // still ramping
  c.Tick(kStart + absl::Seconds(5), gate.Get());
  c.Tick(kStart + absl::Seconds(20), gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 0u);
  EXPECT_TRUE(Region(c, "eu-west-1").standbys.empty());
  EXPECT_EQ(Region(c, "us-west-2").standbys, std::set<std::string>{"api"});  // by hand: stays
  // An evacuation aborted before it moved anyone takes its standbys out too.
  evacuate.steps_bp = {};
  auto id = c.StartPlan(evacuate, "a", kStart + absl::Seconds(30));
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(Region(c, "eu-west-1").standbys.empty());
  ASSERT_TRUE(c.AbortPlan(*id, "a", kStart + absl::Seconds(30)).ok());
  EXPECT_TRUE(Region(c, "eu-west-1").standbys.empty());
  EXPECT_EQ(c.SetStandbys("nowhere", "api", true, "a", kStart).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c.SetStandbys("eu-west-1", "bad name", true, "a", kStart).code(),
            absl::StatusCode::kInvalidArgument);
}

struct FakeAdvisor : PlanAdvisor {
  CapacityCheck check;
  std::optional<std::map<std::string, uint32_t>> weights;
  int asked = 0;
  CapacityCheck CheckCapacity(const RampPlan&) override {
    ++asked;
    return check;
  }
  std::optional<std::map<std::string, uint32_t>> Rebalance(const RampPlan&) override {
    return weights;
  }
};

TEST(ControllerCapacityTest, TheRampWaitsForTheSaviorsAndNeverStartsShortOfCapacity) {
  Controller c = Make();
  FakeGate gate;
  FakeAdvisor advisor;
  advisor.check = {false, false, "eu-west-1: 2 of 3 nodes serve their standbys"};
  PlanRequest r = Evacuate({5000, 10000}, absl::Seconds(1));
  r.inject_standbys = true;
  r.prepare_timeout = absl::Seconds(10);
  auto id = c.StartPlan(r, "a", kStart);
  ASSERT_TRUE(id.ok());
  c.Tick(kStart, gate.Get(), &advisor);
  EXPECT_EQ(Fraction(c, "us-east-1"), 0u);
  const RampPlan* plan = c.FindPlan(*id);
  EXPECT_TRUE(plan->preparing);
  EXPECT_EQ(plan->state, RampPlan::State::kHolding);
  EXPECT_NE(plan->gate_message.find("2 of 3 nodes"), std::string::npos) << plan->gate_message;
  EXPECT_EQ(plan->held_since, kStart);
  // Past the timeout and still short: it holds, since it started preparing.
  c.Tick(kStart + absl::Seconds(11), gate.Get(), &advisor);
  EXPECT_EQ(Fraction(c, "us-east-1"), 0u);
  EXPECT_NE(c.FindPlan(*id)->gate_message.find("capacity is short"), std::string::npos);
  EXPECT_EQ(c.FindPlan(*id)->held_since, kStart);
  // Enough capacity though one node lags: it ramps, with a warning.
  advisor.check = {false, true, "eu-west-1: 2 of 3 nodes"};
  c.Tick(kStart + absl::Seconds(20), gate.Get(), &advisor);
  EXPECT_EQ(Fraction(c, "us-east-1"), 5000u);
  EXPECT_FALSE(c.FindPlan(*id)->preparing);
  EXPECT_EQ(c.FindPlan(*id)->held_since, absl::InfinitePast());
}

TEST(ControllerCapacityTest, AFailedHookHoldsThePlanWithItsOutput) {
  Controller c = Make();
  FakeGate gate;
  PlanRequest r = Evacuate({10000});
  r.hook = true;
  auto id = c.StartPlan(r, "a", kStart);
  ASSERT_TRUE(id.ok());
  c.Tick(kStart, gate.Get());
  EXPECT_EQ(c.FindPlan(*id)->gate_message, "waiting for the scale hook");
  ASSERT_TRUE(c.HookDone(*id, false, "exited with status 3: quota exceeded", "hook", kStart).ok());
  for (int s = 0; s < 100; ++s) c.Tick(kStart + absl::Minutes(s * 10), gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 0u);
  EXPECT_NE(c.FindPlan(*id)->gate_message.find("quota exceeded"), std::string::npos);
  EXPECT_EQ(c.HookDone(*id, true, "", "hook", kStart).code(),
            absl::StatusCode::kFailedPrecondition);
  // A hook that succeeds lets the ramp start.
  ASSERT_TRUE(c.AbortPlan(*id, "a", kStart).ok());
  auto again = c.StartPlan(r, "a", kStart);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(c.HookDone(*again, true, "scaled", "hook", kStart).ok());
  c.Tick(kStart, gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 10000u);
}

TEST(ControllerCapacityTest, AutoSplitPlansRebalanceAndCohortRowsFollowThePlan) {
  SteeringSpec spec = Spec();
  spec.cohorts = {"south-america"};
  ControllerState state = Controller::StateFromSpec(spec);
  auto made = Controller::Create(spec, state, {});
  ASSERT_TRUE(made.ok());
  Controller c = *std::move(made);
  FakeGate gate;
  FakeAdvisor advisor;
  PlanRequest r = Evacuate({5000, 10000}, absl::Seconds(1));
  r.auto_split = true;
  r.cohort_saviors = {{"south-america", {{"us-west-2", 1}}}};
  ASSERT_TRUE(c.StartPlan(r, "a", kStart).ok());
  c.Tick(kStart, gate.Get(), &advisor);
  EXPECT_EQ(Region(c, "us-east-1").cohort_saviors.at("south-america"),
            (std::map<std::string, uint32_t>{{"us-west-2", 1}}));
  advisor.weights = std::map<std::string, uint32_t>{{"eu-west-1", 100}, {"us-west-2", 10}};
  c.Tick(kStart + absl::Seconds(1), gate.Get(), &advisor);
  EXPECT_EQ(Region(c, "us-east-1").saviors, *advisor.weights);
  RegionChange back;
  back.region = "us-east-1";
  back.has_fraction = true;
  back.evacuated_bp = 0;
  ASSERT_TRUE(c.SetRegion(back, "a", kStart + absl::Seconds(2)).ok());
  EXPECT_TRUE(Region(c, "us-east-1").cohort_saviors.empty());  // the rows it replaced
  EXPECT_EQ(Region(c, "us-east-1").saviors, Spec().regions[0].saviors);
  // An unknown cohort is refused with its name.
  r.cohort_saviors = {{"mars", {{"us-west-2", 1}}}};
  absl::Status bad = c.StartPlan(r, "a", kStart).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("mars"), std::string::npos) << bad;
}

TEST(ControllerCapacityTest, CohortRowsAndMisroutedModeAreLiveAndPersist) {
  SteeringSpec spec = Spec();
  spec.cohorts = {"south-america"};
  auto made = Controller::Create(spec, Controller::StateFromSpec(spec), {});
  ASSERT_TRUE(made.ok());
  Controller c = *std::move(made);
  EXPECT_EQ(c.table()->misrouted(), MisroutedMode::kProxyHome);
  RegionChange change;
  change.region = "us-east-1";
  change.has_cohorts = true;
  change.cohort_saviors = {{"south-america", {{"us-west-2", 1}}}};
  change.has_misrouted = true;
  change.misrouted = MisroutedMode::kServeLocal;
  ASSERT_TRUE(c.SetRegion(change, "a", kStart).ok());
  EXPECT_EQ(c.table()->misrouted(), MisroutedMode::kServeLocal);  // the local region's
  const int east = c.table()->FindRegion("us-east-1");
  ASSERT_EQ(c.table()->SaviorsFor(east, 0).size(), 1u);
  // Through the state file and back.
  auto decoded = DecodeControllerState(EncodeControllerState(c.state()));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  auto again = Controller::Create(spec, *decoded, {});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->table()->misrouted(), MisroutedMode::kServeLocal);
  EXPECT_EQ(Region(*again, "us-east-1").cohort_saviors, change.cohort_saviors);
  change.cohort_saviors = {{"atlantis", {{"us-west-2", 1}}}};
  change.has_misrouted = false;
  EXPECT_EQ(c.SetRegion(change, "a", kStart).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ControllerCapacityTest, StandbysNeverOutliveTheirPlans) {
  Controller c = Make();
  FakeGate gate;
  // A forced direct change during a preparing plan that leaves the region at 0%.
  PlanRequest r = Evacuate({10000});
  r.inject_standbys = true;
  r.hook = true;
  ASSERT_TRUE(c.StartPlan(r, "a", kStart).ok());
  ASSERT_EQ(Region(c, "eu-west-1").standbys, std::set<std::string>{"*"});
  RegionChange healthy;
  healthy.region = "us-east-1";
  healthy.has_healthy = true;
  healthy.force = true;
  ASSERT_TRUE(c.SetRegion(healthy, "a", kStart).ok());
  EXPECT_TRUE(Region(c, "eu-west-1").standbys.empty());
  EXPECT_TRUE(Region(c, "us-west-2").standbys.empty());
  // A plan that injects and is aborted before its first step while the region is partly
  // evacuated: the restore to 0% takes them out.
  RegionChange quarter;
  quarter.region = "us-east-1";
  quarter.has_fraction = true;
  quarter.evacuated_bp = 2500;
  ASSERT_TRUE(c.SetRegion(quarter, "a", kStart).ok());
  auto id = c.StartPlan(r, "a", kStart);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(c.AbortPlan(*id, "a", kStart).ok());
  EXPECT_FALSE(Region(c, "eu-west-1").standbys.empty());  // still 25% there
  PlanRequest restore;
  restore.kind = RampPlan::Kind::kRestore;
  restore.region = "us-east-1";
  restore.steps_bp = {0};
  ASSERT_TRUE(c.StartPlan(restore, "a", kStart).ok());
  c.Tick(kStart, gate.Get());
  c.Tick(kStart + absl::Seconds(20), gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 0u);
  EXPECT_TRUE(Region(c, "eu-west-1").standbys.empty());
}

TEST(ControllerCapacityTest, AForcedPlanRampsOnceItsStandbysServeThoughCapacityIsShort) {
  Controller c = Make();
  FakeGate gate;
  FakeAdvisor advisor;
  advisor.check = {false, false, "eu-west-1: 140% predicted"};
  PlanRequest r = Evacuate({10000});
  r.inject_standbys = true;
  r.force = true;
  auto id = c.StartPlan(r, "a", kStart);
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(c.FindPlan(*id)->forced);
  c.Tick(kStart, gate.Get(), &advisor);
  EXPECT_EQ(Fraction(c, "us-east-1"), 0u);  // within the wait: it waits for the standbys
  c.Tick(kStart + absl::Seconds(31), gate.Get(), &advisor);
  EXPECT_EQ(Fraction(c, "us-east-1"), 10000u);  // past it, forced: it ramps
  auto decoded = DecodeControllerState(EncodeControllerState(c.state()));
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->plans[0].forced);
}

TEST(ControllerCapacityTest, ARestorePutsBackOnlyTheCohortRowsThePlanSet) {
  SteeringSpec spec = Spec();
  spec.cohorts = {"south-america", "emea"};
  auto made = Controller::Create(spec, Controller::StateFromSpec(spec), {});
  ASSERT_TRUE(made.ok());
  Controller c = *std::move(made);
  FakeGate gate;
  PlanRequest r = Evacuate({10000}, absl::Seconds(1));
  r.cohort_saviors = {{"south-america", {{"us-west-2", 1}}}};
  ASSERT_TRUE(c.StartPlan(r, "a", kStart).ok());
  c.Tick(kStart, gate.Get());
  RegionChange emea;
  emea.region = "us-east-1";
  emea.has_cohorts = true;
  emea.cohort_saviors = {{"south-america", {{"us-west-2", 1}}}, {"emea", {{"eu-west-1", 1}}}};
  ASSERT_TRUE(c.SetRegion(emea, "a", kStart).ok());
  RegionChange back;
  back.region = "us-east-1";
  back.has_fraction = true;
  back.evacuated_bp = 0;
  ASSERT_TRUE(c.SetRegion(back, "a", kStart).ok());
  EXPECT_EQ(Region(c, "us-east-1").cohort_saviors,
            (std::map<std::string, std::map<std::string, uint32_t>>{{"emea", {{"eu-west-1", 1}}}}));
}

// --- The DNS step (DESIGN.md, step 4) ---------------------------------------------------------

const RampPlan* PlanById(const Controller& c, uint64_t id) { return c.FindPlan(id); }

TEST(ControllerDnsTest, TheDnsStepFollowsTheLastStepGatedAndTheRestorePutsRecordsBackFirst) {
  Controller c = Make();
  FakeGate gate;
  PlanRequest evacuate = Evacuate({5000, 10000}, absl::Seconds(1));
  evacuate.dns = true;
  auto id = c.StartPlan(evacuate, "a", kStart);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(PlanById(c, *id)->dns, RampPlan::Dns::kWaiting);
  c.Tick(kStart, gate.Get());
  c.Tick(kStart + absl::Seconds(1), gate.Get());
  ASSERT_EQ(Fraction(c, "us-east-1"), 10000u);
  // At 100%, but the DNS step waits its hold and is gated like a step.
  EXPECT_TRUE(PlanById(c, *id)->active());
  EXPECT_FALSE(Region(c, "us-east-1").dns_out);
  gate.sick["eu-west-1"].error_rate = 0.5;
  c.Tick(kStart + absl::Seconds(2), gate.Get());
  EXPECT_EQ(PlanById(c, *id)->state, RampPlan::State::kHolding);
  EXPECT_NE(PlanById(c, *id)->gate_message.find("DNS step"), std::string::npos);
  EXPECT_FALSE(Region(c, "us-east-1").dns_out);
  EXPECT_EQ(Fraction(c, "us-east-1"), 10000u);  // never rolled back for DNS
  gate.sick.clear();
  c.Tick(kStart + absl::Seconds(10), gate.Get());
  EXPECT_TRUE(Region(c, "us-east-1").dns_out);
  EXPECT_EQ(PlanById(c, *id)->state, RampPlan::State::kDone);
  EXPECT_EQ(PlanById(c, *id)->dns, RampPlan::Dns::kPending);
  // The runtime reports; a done plan takes its DNS outcome.
  ASSERT_TRUE(c.DnsReport(*id, RampPlan::Dns::kApplied, "-api A 192.0.2.1", "dns",
                          kStart + absl::Seconds(11))
                  .ok());
  EXPECT_EQ(PlanById(c, *id)->dns, RampPlan::Dns::kApplied);
  EXPECT_EQ(PlanById(c, *id)->dns_message, "-api A 192.0.2.1");
  // The state carries it all.
  absl::StatusOr<ControllerState> back = DecodeControllerState(EncodeControllerState(c.state()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(EncodeControllerState(*back), EncodeControllerState(c.state()));
  // A restore puts the records back with its start, before any step.
  PlanRequest restore;
  restore.kind = RampPlan::Kind::kRestore;
  restore.region = "us-east-1";
  restore.steps_bp = {5000, 0};
  restore.hold = absl::Seconds(1);
  auto back_id = c.StartPlan(restore, "a", kStart + absl::Seconds(20));
  ASSERT_TRUE(back_id.ok());
  EXPECT_FALSE(Region(c, "us-east-1").dns_out);
  EXPECT_EQ(Fraction(c, "us-east-1"), 10000u);
  EXPECT_EQ(PlanById(c, *back_id)->dns, RampPlan::Dns::kPending);
  // A failure is shown and holds nothing: the ramp goes on.
  ASSERT_TRUE(
      c.DnsReport(*back_id, RampPlan::Dns::kFailed, "REFUSED", "dns", kStart + absl::Seconds(20))
          .ok());
  c.Tick(kStart + absl::Seconds(20), gate.Get());
  c.Tick(kStart + absl::Seconds(21), gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 0u);
  EXPECT_EQ(PlanById(c, *back_id)->dns, RampPlan::Dns::kFailed);
}

TEST(ControllerDnsTest, ADeadEdgeTakesItsRecordsOutFirstAndBadRequestsAreRefused) {
  Controller c = Make();
  FakeGate gate;
  PlanRequest dead = Evacuate({10000}, absl::ZeroDuration());
  dead.dns_first = true;
  auto id = c.StartPlan(dead, "detector", kStart);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(Region(c, "us-east-1").dns_out);  // before any step
  EXPECT_EQ(PlanById(c, *id)->dns, RampPlan::Dns::kPending);
  c.Tick(kStart, gate.Get());
  EXPECT_EQ(Fraction(c, "us-east-1"), 10000u);
  EXPECT_EQ(PlanById(c, *id)->state, RampPlan::State::kDone);
  // A DNS step needs a plan that ends at 100%.
  Controller other = Make();
  PlanRequest half = Evacuate({2500, 5000});
  half.dns = true;
  EXPECT_EQ(other.StartPlan(half, "a", kStart).status().code(), absl::StatusCode::kInvalidArgument);
  // Reports: only for a plan with a DNS change under way, with a real state.
  EXPECT_EQ(c.DnsReport(999, RampPlan::Dns::kApplied, "", "dns", kStart).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(c.DnsReport(*id, RampPlan::Dns::kWaiting, "", "dns", kStart).code(),
            absl::StatusCode::kInvalidArgument);
  PlanRequest plain = Evacuate({10000}, absl::ZeroDuration());
  plain.region = "us-west-2";
  plain.saviors = {{"eu-west-1", 1}};
  plain.force = true;
  auto plain_id = c.StartPlan(plain, "a", kStart);
  ASSERT_TRUE(plain_id.ok()) << plain_id.status();
  EXPECT_EQ(c.DnsReport(*plain_id, RampPlan::Dns::kApplied, "", "dns", kStart).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ControllerDnsTest, BackAtZeroByHandPutsTheRecordsBack) {
  Controller c = Make();
  FakeGate gate;
  PlanRequest dead = Evacuate({10000}, absl::ZeroDuration());
  dead.dns_first = true;
  ASSERT_TRUE(c.StartPlan(dead, "detector", kStart).ok());
  c.Tick(kStart, gate.Get());
  ASSERT_TRUE(Region(c, "us-east-1").dns_out);
  RegionChange change;
  change.region = "us-east-1";
  change.has_fraction = true;
  change.evacuated_bp = 0;
  ASSERT_TRUE(c.SetRegion(change, "bob", kStart + absl::Seconds(1)).ok());
  EXPECT_FALSE(Region(c, "us-east-1").dns_out);
}

}  // namespace
}  // namespace sluice
