#include "steering/state_file.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

ControllerState Sample() {
  ControllerState state;
  state.version = 12;
  state.next_plan_id = 4;
  RegionSpec east;
  east.name = "us-east-1";
  east.evacuated_bp = 2500;
  east.saviors = {{"eu-west-1", 70}, {"us-west-2", 30}};
  east.cohort_saviors["latam"] = {{"us-west-2", 100}};
  RegionSpec west;
  west.name = "us-west-2";
  west.healthy = false;
  state.regions = {east, west};
  RampPlan plan;
  plan.id = 3;
  plan.region = "us-east-1";
  plan.state = RampPlan::State::kHolding;
  plan.saviors = east.saviors;
  plan.steps_bp = {100, 500, 2500, 10000};
  plan.step = 2;
  plan.hold = absl::Seconds(10);
  plan.next_at = absl::FromUnixMillis(1800000012345);
  plan.gate_failures = 2;
  plan.gate_message = "eu-west-1 p99 3s > 2s";
  plan.held_since = absl::FromUnixMillis(1800000002000);
  plan.actor = "ops";
  plan.created = absl::FromUnixMillis(1800000000000);
  state.plans = {plan};
  return state;
}

TEST(StateFileTest, RoundTrips) {
  std::string text = EncodeControllerState(Sample());
  auto decoded = DecodeControllerState(text);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(EncodeControllerState(*decoded), text);
  EXPECT_EQ(decoded->version, 12u);
  ASSERT_EQ(decoded->regions.size(), 2u);
  EXPECT_EQ(decoded->regions[0].cohort_saviors.at("latam").at("us-west-2"), 100u);
  EXPECT_FALSE(decoded->regions[1].healthy);
  const RampPlan& plan = decoded->plans.at(0);
  EXPECT_EQ(plan.state, RampPlan::State::kHolding);
  EXPECT_EQ(plan.next_at, absl::FromUnixMillis(1800000012345));
  EXPECT_EQ(plan.finished, absl::InfinitePast());
  EXPECT_EQ(plan.gate_message, "eu-west-1 p99 3s > 2s");
  EXPECT_EQ(plan.held_since, absl::FromUnixMillis(1800000002000));
}

TEST(StateFileTest, AFileWithoutHeldSinceLoads) {
  std::string text = EncodeControllerState(Sample());
  const std::string field = "\"held_since_ms\": 1800000002000,";
  size_t at = text.find(field);
  ASSERT_NE(at, std::string::npos) << text;
  text.erase(at, field.size());
  auto decoded = DecodeControllerState(text);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->plans.at(0).held_since, absl::InfinitePast());
}

TEST(StateFileTest, TheDetectionModeIsKeptOnceSet) {
  ControllerState state = Sample();
  EXPECT_EQ(EncodeControllerState(state).find("detection"), std::string::npos);
  state.detection_mode = "auto";
  state.detection_actor = "ops";
  state.detection_set = absl::FromUnixMillis(1800000000000);
  auto decoded = DecodeControllerState(EncodeControllerState(state));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->detection_mode, "auto");
  EXPECT_EQ(decoded->detection_actor, "ops");
  EXPECT_EQ(decoded->detection_set, state.detection_set);
  std::string bad = EncodeControllerState(state);
  bad.replace(bad.find("\"auto\""), 6, "\"on\"");
  auto refused = DecodeControllerState(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("detection.mode"), std::string::npos);
}

TEST(StateFileTest, DamageIsRefusedWithTheField) {
  std::string good = EncodeControllerState(Sample());
  struct Case {
    std::string from, to, message;
  };
  std::vector<Case> cases = {
      {"{", "[", "not valid JSON"},
      {"sluice-steering-state/1", "sluice-steering-state/9", "format: must be"},
      {"\"evacuated_bp\": 2500", "\"evacuated_bp\": 25000", "regions.us-east-1.evacuated_bp"},
      {"\"evacuated_bp\": 2500", "\"evacuated_bp\": \"25%\"", "regions.us-east-1.evacuated_bp"},
      {"\"eu-west-1\": 70", "\"eu-west-1\": 700", "plans[0].saviors.eu-west-1: weight"},
      {"\"healthy\": false", "\"healthy\": 0", "regions.us-west-2.healthy"},
      {"\"step\": 2", "\"step\": 4", "plans[0].step"},
      {"\"kind\": \"evacuate\"", "\"kind\": \"nuke\"", "plans[0].kind"},
      {"\"state\": \"holding\"", "\"state\": \"lost\"", "plans[0].state"},
      {"\"next_plan_id\": 4", "\"next_plan_id\": 3", "plans[0].id: must be below next_plan_id"},
      {"\"version\": 12", "\"version\": 0", "version: must be positive"},
      {"\"version\": 12", "\"version\": -3", "version: must be an integer"},
      {"\"hold_ms\": 10000", "\"hold_ms\": 1e99", "plans[0].hold_ms"},
  };
  for (const Case& c : cases) {
    std::string text = good;
    size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    auto decoded = DecodeControllerState(text);
    ASSERT_FALSE(decoded.ok()) << c.to;
    EXPECT_NE(decoded.status().message().find(c.message), std::string::npos)
        << c.to << " -> " << decoded.status();
  }
  EXPECT_FALSE(DecodeControllerState(good.substr(0, good.size() / 2)).ok());
  EXPECT_FALSE(DecodeControllerState("").ok());
  EXPECT_EQ(DecodeControllerState("[]").status().message(), "not a JSON object");
}

}  // namespace
}  // namespace sluice
