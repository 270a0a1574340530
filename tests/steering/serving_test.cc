#include "steering/serving.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

SteeringTablePtr EastEvacuated(uint32_t bp) {
  SteeringSpec spec;
  spec.local_region = "us-east-1";
  RegionSpec east;
  east.name = "us-east-1";
  east.evacuated_bp = bp;
  east.saviors = {{"us-west-2", 100}};
  RegionSpec west;
  west.name = "us-west-2";
  spec.regions = {east, west};
  absl::StatusOr<SteeringTablePtr> table = BuildSteeringTable(spec, 1);
  EXPECT_TRUE(table.ok()) << table.status();
  return *table;
}

TEST(ServingTest, ServesUntilTheLocalRegionIsWhollyEvacuated) {
  for (uint32_t bp : {0u, 1u, 5000u, 9999u}) {
    SteeringTablePtr table = EastEvacuated(bp);
    ServingState state = DecideServing(table.get(), false);
    EXPECT_EQ(state.status(), 200) << bp;
    EXPECT_EQ(state.reason, ServingReason::kServing) << bp;
    EXPECT_EQ(state.evacuated_bp, bp);
  }
  SteeringTablePtr table = EastEvacuated(kBasisPoints);
  ServingState state = DecideServing(table.get(), false);
  EXPECT_EQ(state.status(), 503);
  EXPECT_EQ(ServingJson(state),
            "{\"serving\": false, \"region\": \"us-east-1\", \"evacuated\": \"100%\", "
            "\"reason\": \"evacuated\"}\n");
}

TEST(ServingTest, OnlyTheLocalRegionCounts) {
  SteeringSpec spec;
  spec.local_region = "us-west-2";
  RegionSpec east;
  east.name = "us-east-1";
  east.evacuated_bp = kBasisPoints;
  east.saviors = {{"us-west-2", 100}};
  RegionSpec west;
  west.name = "us-west-2";
  spec.regions = {east, west};
  absl::StatusOr<SteeringTablePtr> table = BuildSteeringTable(spec, 1);
  ASSERT_TRUE(table.ok()) << table.status();
  ServingState state = DecideServing(table->get(), false);
  EXPECT_EQ(state.status(), 200);
  EXPECT_EQ(state.region, "us-west-2");
}

TEST(ServingTest, DrainingWinsOverEverything) {
  SteeringTablePtr table = EastEvacuated(kBasisPoints);
  EXPECT_EQ(DecideServing(table.get(), true).reason, ServingReason::kDraining);
  table = EastEvacuated(0);
  ServingState state = DecideServing(table.get(), true);
  EXPECT_EQ(state.status(), 503);
  EXPECT_EQ(ServingJson(state),
            "{\"serving\": false, \"region\": \"us-east-1\", \"evacuated\": \"0%\", "
            "\"reason\": \"draining\"}\n");
}

TEST(ServingTest, WithoutSteeringOnlyTheDrainCounts) {
  ServingState state = DecideServing(nullptr, false);
  EXPECT_EQ(state.status(), 200);
  EXPECT_EQ(
      ServingJson(state),
      "{\"serving\": true, \"region\": null, \"evacuated\": null, \"reason\": \"serving\"}\n");
  EXPECT_EQ(DecideServing(nullptr, true).status(), 503);
}

}  // namespace
}  // namespace sluice
