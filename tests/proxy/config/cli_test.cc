#include "proxy/config/cli.h"

#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

absl::StatusOr<CommandLine> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "sluice");
  return ParseCommandLine(static_cast<int>(args.size()), args.data());
}

TEST(CliTest, ConfigAndCheck) {
  auto cli = Parse({"--check", "--config", "x.yaml"});
  ASSERT_TRUE(cli.ok());
  EXPECT_TRUE(cli->check);
  EXPECT_EQ(cli->config_path, "x.yaml");
  auto eq = Parse({"--config=y.yaml"});
  ASSERT_TRUE(eq.ok());
  EXPECT_EQ(eq->config_path, "y.yaml");
}

TEST(CliTest, DefaultsToConfSluiceYaml) {
  auto cli = Parse({});
  ASSERT_TRUE(cli.ok());
  EXPECT_EQ(cli->config_path, kDefaultConfigPath);
}

TEST(CliTest, QuickStart) {
  auto cli = Parse({"--listen", "127.0.0.1:8080", "--origin", "127.0.0.1:9000,127.0.0.1:9001",
                    "--workers", "3"});
  ASSERT_TRUE(cli.ok()) << cli.status();
  auto config = ConfigFromCommandLine(*cli);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->workers, 3);
  ASSERT_EQ((*config)->clusters.size(), 1u);
  EXPECT_EQ((*config)->clusters[0].endpoints.size(), 2u);
  EXPECT_EQ((*config)->routes[0].host, "*");
  EXPECT_EQ((*config)->listeners[0].address.ToString(), "127.0.0.1:8080");
}

TEST(CliTest, Errors) {
  EXPECT_FALSE(Parse({"--bogus"}).ok());
  EXPECT_FALSE(Parse({"--config"}).ok());
  EXPECT_FALSE(Parse({"--listen", "127.0.0.1:1"}).ok());
  EXPECT_FALSE(Parse({"--config", "a", "--origin", "127.0.0.1:1"}).ok());
  EXPECT_FALSE(Parse({"--workers", "-1"}).ok());
  auto bad_origin = Parse({"--origin", "nowhere"});
  ASSERT_TRUE(bad_origin.ok());
  EXPECT_FALSE(ConfigFromCommandLine(*bad_origin).ok());
}

}  // namespace
}  // namespace sluice
