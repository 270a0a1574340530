#include "steering/steering_table.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

SteeringSpec ThreeRegions() {
  SteeringSpec spec;
  spec.local_region = "us-east-1";
  spec.cohorts = {"latam"};
  RegionSpec east;
  east.name = "us-east-1";
  east.evacuated_bp = 2500;
  east.saviors = {{"eu-west-1", 70}, {"us-west-2", 30}};
  east.cohort_saviors["latam"] = {{"us-west-2", 100}};
  RegionSpec west;
  west.name = "us-west-2";
  RegionSpec eu;
  eu.name = "eu-west-1";
  spec.regions = {east, west, eu};
  return spec;
}

std::string BuildError(const SteeringSpec& spec) {
  auto table = BuildSteeringTable(spec, 1);
  return table.ok() ? "" : std::string(table.status().message());
}

TEST(SteeringTableTest, BuildsRowsByIndex) {
  auto table = BuildSteeringTable(ThreeRegions(), 7);
  ASSERT_TRUE(table.ok()) << table.status();
  const SteeringTable& t = **table;
  EXPECT_EQ(t.version(), 7u);
  EXPECT_EQ(t.local(), 0);
  EXPECT_EQ(t.FindRegion("eu-west-1"), 2);
  EXPECT_EQ(t.FindRegion("nowhere"), -1);
  EXPECT_TRUE(t.evacuating(0));
  EXPECT_FALSE(t.evacuating(1));
  ASSERT_EQ(t.SaviorsFor(0, -1).size(), 2u);
  ASSERT_EQ(t.SaviorsFor(0, 0).size(), 1u);
  EXPECT_EQ(t.SaviorsFor(0, 0)[0].region, 1);
  EXPECT_TRUE(t.SaviorsFor(1, 0).empty());  // no row for latam: the (empty) default row
}

TEST(SteeringTableTest, ErrorsNameThePlace) {
  SteeringSpec spec = ThreeRegions();
  spec.regions[0].saviors["eu-west-1"] = 140;
  EXPECT_EQ(BuildError(spec),
            "steering.regions.us-east-1.saviors.eu-west-1: weight must be "
            "0..100, got 140");
  spec = ThreeRegions();
  spec.regions[0].saviors["mars-1"] = 10;
  EXPECT_EQ(BuildError(spec),
            "steering.regions.us-east-1.saviors.mars-1: not one of "
            "steering.regions");
  spec = ThreeRegions();
  spec.regions[0].saviors["us-east-1"] = 10;
  EXPECT_NE(BuildError(spec).find("its own savior"), std::string::npos);
  spec = ThreeRegions();
  spec.regions[0].saviors.clear();
  EXPECT_NE(BuildError(spec).find("needs at least one savior"), std::string::npos);
  spec = ThreeRegions();
  spec.regions[0].cohort_saviors["vip"] = {{"us-west-2", 1}};
  EXPECT_NE(BuildError(spec).find("cohorts.vip: not a cohort"), std::string::npos);
  spec = ThreeRegions();
  spec.local_region = "ap-south-1";
  EXPECT_NE(BuildError(spec).find("steering.local_region"), std::string::npos);
  spec = ThreeRegions();
  spec.regions[2].name = "us-west-2";
  EXPECT_NE(BuildError(spec).find("listed twice"), std::string::npos);
  spec = ThreeRegions();
  spec.regions[2].name = "EU West";
  EXPECT_NE(BuildError(spec).find("a region name is"), std::string::npos);
  spec = ThreeRegions();
  spec.regions[0].evacuated_bp = 10001;
  EXPECT_NE(BuildError(spec).find("0% to 100%"), std::string::npos);
}

TEST(SteeringTableTest, RegionNames) {
  EXPECT_TRUE(ValidRegionName("us-east-1"));
  EXPECT_TRUE(ValidRegionName("eu_west.2"));
  EXPECT_FALSE(ValidRegionName(""));
  EXPECT_FALSE(ValidRegionName("-east"));
  EXPECT_FALSE(ValidRegionName("US-EAST-1"));
  EXPECT_FALSE(ValidRegionName("a;b"));
  EXPECT_FALSE(ValidRegionName(std::string(64, 'a')));
}

TEST(SteeringTableTest, BasisPoints) {
  uint32_t bp = 0;
  EXPECT_TRUE(ParseBasisPoints("25%", &bp));
  EXPECT_EQ(bp, 2500u);
  EXPECT_TRUE(ParseBasisPoints("0.5%", &bp));
  EXPECT_EQ(bp, 50u);
  EXPECT_TRUE(ParseBasisPoints("0.01%", &bp));
  EXPECT_EQ(bp, 1u);
  EXPECT_TRUE(ParseBasisPoints("100%", &bp));
  EXPECT_EQ(bp, 10000u);
  EXPECT_TRUE(ParseBasisPoints("2500bp", &bp));
  EXPECT_EQ(bp, 2500u);
  for (const char* bad :
       {"25", "101%", "0.001%", "%", ".5%", "5.%", "-1%", "1e2%", "10001bp", "bp", " 5%"}) {
    EXPECT_FALSE(ParseBasisPoints(bad, &bp)) << bad;
  }
  EXPECT_EQ(FormatBasisPoints(2500), "25%");
  EXPECT_EQ(FormatBasisPoints(50), "0.5%");
  EXPECT_EQ(FormatBasisPoints(1), "0.01%");
}

}  // namespace
}  // namespace sluice
