#include "proxy/config/steering_config_loader.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proxy/config/config_loader.h"

namespace sluice {
namespace {

constexpr char kRegions[] = R"(
listeners: [{address: 127.0.0.1:1}]
clusters:
  - name: app
    endpoints: [127.0.0.1:2]
routes:
  - cluster: app
steering:
  local_region: us-east-1
  misrouted: serve_local
  member_id: [claim, {cookie: member}, {header: X-Member-Id}]
  home_region: [claim, {header: x-home-region}, map]
  home_region_map:
    salt: homes
    prefixes: {"eu-": eu-west-1, "eu-us-": us-east-1}
    hash_ranges:
      - {from: 0%, to: 50%, region: us-east-1}
      - {from: 50%, to: 100%, region: us-west-2}
  cohorts:
    - {header: x-client-country, values: {BR: latam, AR: latam}}
    - {claim: tier, values: {gold: vip}}
  tunnel:
    key_file: KEYFILE
    insecure: true
    max_skew: 10s
    connect_timeout: 300ms
  failover: false
  replay_buffer: 16KiB
  regions:
    us-east-1:
      tunnel: [127.0.0.1:8081]
      evacuate: 25%
      saviors: {eu-west-1: 70, us-west-2: 30}
      cohorts: {latam: {us-west-2: 100}}
    us-west-2:
      tunnel: [127.0.0.1:8082, 127.0.0.1:8092]
      salt: west-salt
    eu-west-1:
      tunnel: [edge.eu.internal:8083]
)";

const std::string kKey = "3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d";

class SteeringConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // ctest runs every test in its own process, in parallel: each gets its
    // own directory so no test reads a key file another is rewriting.
    std::string pattern = ::testing::TempDir() + "/sluice-steering-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
    key_file_ = dir_ + "/steering-test.key";
    std::ofstream(key_file_) << kKey << "\n";
    short_key_file_ = dir_ + "/steering-short.key";
    std::ofstream(short_key_file_) << "tooshort\n";
    guessable_key_file_ = dir_ + "/steering-guessable.key";
    std::ofstream(guessable_key_file_) << std::string(64, 'a') << "\n";
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Yaml(std::string_view text = kRegions) const {
    std::string yaml(text);
    yaml.replace(yaml.find("KEYFILE"), 7, key_file_);
    return yaml;
  }

  absl::StatusOr<ConfigPtr> Parse(const std::string& yaml) const {
    return ParseConfig(yaml, dir_ + "/steering.yaml");
  }

  std::string dir_, key_file_, short_key_file_, guessable_key_file_;
};

TEST_F(SteeringConfigLoaderTest, ParsesEverything) {
  auto config = Parse(Yaml());
  ASSERT_TRUE(config.ok()) << config.status();
  const SteeringConfig& s = (*config)->steering;
  ASSERT_TRUE(s.enabled);
  const SteeringTable& table = *s.table;
  EXPECT_EQ(table.region(table.local()).name, "us-east-1");
  EXPECT_EQ(table.misrouted(), MisroutedMode::kServeLocal);
  EXPECT_EQ(table.region(0).evacuated_bp, 2500u);
  ASSERT_EQ(table.cohorts(), (std::vector<std::string>{"latam", "vip"}));
  EXPECT_EQ(table.SaviorsFor(0, 0).size(), 1u);
  ASSERT_EQ(s.member_id.size(), 3u);
  EXPECT_EQ(s.member_id[2].kind, MemberIdSource::Kind::kHeader);
  EXPECT_EQ(s.member_id[2].name, "x-member-id");  // lower-cased once, here
  ASSERT_EQ(s.home_region.size(), 3u);
  EXPECT_EQ(s.home_region[2].kind, HomeRegionSource::Kind::kMap);
  ASSERT_EQ(s.home_map.prefixes.size(), 2u);
  EXPECT_EQ(s.home_map.prefixes[0].first, "eu-us-");  // longest first
  EXPECT_EQ(s.home_map.ranges.size(), 2u);
  ASSERT_EQ(s.cohort_rules.size(), 2u);
  EXPECT_EQ(s.cohort_rules[1].kind, CohortRule::Kind::kClaimTier);
  EXPECT_EQ(s.max_skew_seconds, 10);
  EXPECT_FALSE(s.failover);
  EXPECT_EQ(s.replay_buffer, 16u * 1024);
  // One tunnel cluster per peer region, none for the local one.
  const Config& c = **config;
  ASSERT_EQ(s.tunnel_cluster, (std::vector<int>{-1, 1, 2}));
  EXPECT_EQ(c.clusters[1].name, "region:us-west-2");
  EXPECT_EQ(c.clusters[1].endpoints.size(), 2u);
  EXPECT_EQ(c.clusters[1].connect_timeout, absl::Milliseconds(300));
  EXPECT_EQ(c.clusters[2].endpoints[0].host, "edge.eu.internal");
  // A region may be ejected whole: then steering skips it as unreachable.
  EXPECT_EQ(c.clusters[1].outlier.max_ejection_percent, 100u);
  EXPECT_EQ(c.clusters[1].outlier.consecutive_failures, 3u);
  // Tunnels at distance: two warm, PING-checked connections per peer and worker, windows that
  // start at 256 KiB and grow with the path up to 32 MiB.
  EXPECT_EQ(c.clusters[1].pool.http2_connections, 2u);
  EXPECT_EQ(c.clusters[1].pool.http2_warm, 2u);
  EXPECT_EQ(c.clusters[1].pool.http2_ping_interval, absl::Seconds(5));
  EXPECT_EQ(c.clusters[1].pool.http2_window, 256u * 1024);
  EXPECT_EQ(c.clusters[1].pool.http2_max_window, 32u << 20);
  // The signer signs with the file's key, without its trailing newline.
  HopSigner expected({kKey});
  HopRequest request{"GET", "/", "", "example.com", "", "-"};
  EXPECT_EQ(s.signer->Sign("us-east-1", "eu-west-1", 1, 2, "r", request),
            expected.Sign("us-east-1", "eu-west-1", 1, 2, "r", request));
}

TEST_F(SteeringConfigLoaderTest, TunnelWindowsAndWarmConnectionsAreSettable) {
  std::string yaml = Yaml();
  yaml.replace(yaml.find("connect_timeout: 300ms"), 22,
               "connect_timeout: 300ms\n    connections: 4\n    warm_connections: 3\n"
               "    ping_interval: 2s\n    window: 1MiB\n    max_window: 64MiB");
  auto config = Parse(yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  const PoolConfig& pool = (*config)->clusters[1].pool;
  EXPECT_EQ(pool.http2_connections, 4u);
  EXPECT_EQ(pool.http2_warm, 3u);
  EXPECT_EQ(pool.http2_ping_interval, absl::Seconds(2));
  EXPECT_EQ(pool.http2_window, 1u << 20);
  EXPECT_EQ(pool.http2_max_window, 64u << 20);
  // One connection per peer: one warm; a fixed window (no growth) and no PINGs.
  yaml = Yaml();
  yaml.replace(yaml.find("connect_timeout: 300ms"), 22,
               "connect_timeout: 300ms\n    connections: 1\n    ping_interval: 0s\n"
               "    window: 2MiB\n    max_window: 2MiB");
  config = Parse(yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  const PoolConfig& fixed = (*config)->clusters[1].pool;
  EXPECT_EQ(fixed.http2_warm, 1u);
  EXPECT_EQ(fixed.http2_ping_interval, absl::ZeroDuration());
  EXPECT_EQ(fixed.http2_window, 2u << 20);
  EXPECT_EQ(fixed.http2_max_window, 2u << 20);
  // A window above the default maximum raises the maximum with it.
  yaml = Yaml();
  yaml.replace(yaml.find("connect_timeout: 300ms"), 22,
               "connect_timeout: 300ms\n    window: 32MiB");
  config = Parse(yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->clusters[1].pool.http2_max_window, 32u << 20);
}

TEST_F(SteeringConfigLoaderTest, WithoutASteeringSectionEverythingIsLocal) {
  auto config = Parse(
      "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: app, endpoints: "
      "[127.0.0.1:2]}]\nroutes: [{cluster: app}]\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE((*config)->steering.enabled);
  EXPECT_EQ((*config)->steering.table, nullptr);
}

TEST_F(SteeringConfigLoaderTest, Errors) {
  struct Case {
    std::string from, to, message;
  };
  const std::vector<Case> cases = {
      {"eu-west-1: 70", "eu-west-1: 140",
       "steering.regions.us-east-1.saviors.eu-west-1: must be 0..100, got 140"},
      {"eu-west-1: 70", "mars-1: 70",
       "steering.regions.us-east-1.saviors.mars-1: not one of steering.regions"},
      {"evacuate: 25%", "evacuate: 25", "evacuate: expected a fraction such as 25%"},
      {"evacuate: 25%", "evacuate: 125%", "evacuate: expected a fraction"},
      {"local_region: us-east-1", "local_region: ap-south-1",
       "steering.local_region: \"ap-south-1\" is not one of steering.regions"},
      {"misrouted: serve_local", "misrouted: sometimes", "must be proxy_home or serve_local"},
      {"member_id: [claim,", "member_id: [subject,", "expected claim, {cookie: NAME}"},
      {"{header: X-Member-Id}", "{header: \"X Member\"}", "is not a header or cookie name"},
      {"home_region: [claim, {header: x-home-region}, map]", "home_region: [claim]",
       "home_region_map: set, but steering.home_region does not list map"},
      {"to: 50%, region: us-east-1", "to: 60%, region: us-east-1", "overlaps an earlier range"},
      {"\"eu-\": eu-west-1", "\"eu-\": eu-north-1", "\"eu-north-1\" is not one of"},
      {"{claim: tier,", "{claim: sub,", "must be tier or home_region"},
      {"latam: {us-west-2: 100}", "vip2: {us-west-2: 100}", "cohorts.vip2: not a cohort"},
      {"tunnel: [edge.eu.internal:8083]", "salt: x",
       "steering.regions.eu-west-1.tunnel: required for a peer region"},
      {"max_skew: 10s", "max_skew: 0s", "max_skew: must be at least 1s"},
      {"max_skew: 10s", "max_skew: 10m", "max_skew: at most 300s"},
      {"    insecure: true\n", "", "tunnel.tls is required with more than one region"},
      {"us-west-2:\n      tunnel", "US West:\n      tunnel", "a region name is"},
      {"failover: false", "failover: maybe", "expected true or false"},
      {"connect_timeout: 300ms", "connect_timeout: 300ms\n    window: 1MiB\n    max_window: 512KiB",
       "tunnel.max_window: must be at least window"},
      {"connect_timeout: 300ms", "connect_timeout: 300ms\n    window: 1KiB",
       "tunnel.window: must be between 65535"},
      {"connect_timeout: 300ms", "connect_timeout: 300ms\n    warm_connections: 3",
       "tunnel.warm_connections: must not exceed the connections per endpoint (2)"},
      {"connect_timeout: 300ms", "connect_timeout: 300ms\n    ping_interval: 10ms",
       "tunnel.ping_interval: must be 0 (no PINGs) or at least 100ms"},
      {"  regions:", "  regionz:", "unknown key \"regionz\""},
  };
  for (const Case& c : cases) {
    std::string yaml = Yaml();
    size_t at = yaml.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    yaml.replace(at, c.from.size(), c.to);
    auto config = Parse(yaml);
    ASSERT_FALSE(config.ok()) << c.to;
    EXPECT_NE(config.status().message().find(c.message), std::string::npos)
        << c.to << " -> " << config.status().message();
  }
}

TEST_F(SteeringConfigLoaderTest, TheTunnelKeyMustBeReadableAndLongEnough) {
  std::string yaml = Yaml();
  yaml.replace(yaml.find(key_file_), key_file_.size(), short_key_file_);
  auto config = Parse(yaml);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("needs at least 32"), std::string::npos)
      << config.status().message();
  yaml = Yaml();
  yaml.replace(yaml.find(key_file_), key_file_.size(), guessable_key_file_);
  config = Parse(yaml);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("must be random"), std::string::npos)
      << config.status().message();
  yaml = Yaml();
  yaml.replace(yaml.find(key_file_), key_file_.size(), dir_ + "/missing.key");
  config = Parse(yaml);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("cannot read"), std::string::npos);
  yaml = Yaml();
  yaml.replace(yaml.find("    key_file: " + key_file_ + "\n"), 14 + key_file_.size(), "");
  config = Parse(yaml);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("tunnel.key_file"), std::string::npos)
      << config.status().message();
}

TEST_F(SteeringConfigLoaderTest, CohortsFromACidrFileBesideTheConfiguration) {
  std::ofstream(dir_ + "/cohorts.cidr") << "# networks\n200.0.0.0/8 south-america\n"
                                        << "2800::/12 latam\n";
  std::string yaml = Yaml();
  yaml.replace(yaml.find("  cohorts:\n"), 11, "  cohorts:\n    - cidr_file: cohorts.cidr\n");
  yaml.replace(yaml.find("cohorts: {latam:"), 16,
               "cohorts: {south-america: {eu-west-1: 100}, latam:");
  auto config = Parse(yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  const SteeringConfig& s = (*config)->steering;
  // The file's names first (its rule is first), then the rules after it add theirs.
  EXPECT_EQ(s.table->cohorts(), (std::vector<std::string>{"south-america", "latam", "vip"}));
  EXPECT_EQ(s.table->SaviorsFor(0, 0).size(), 1u);  // its region row is checked and built
  ASSERT_EQ(s.cohort_rules.size(), 3u);
  const CohortRule& rule = s.cohort_rules[0];
  EXPECT_EQ(rule.kind, CohortRule::Kind::kCidrFile);
  EXPECT_EQ(rule.path, dir_ + "/cohorts.cidr");  // relative to the configuration file
  ASSERT_NE(rule.cidr, nullptr);
  EXPECT_EQ(rule.cidr->ranges(), 2u);
  EXPECT_EQ(rule.cidr->Find(*SocketAddress::Parse("[2800:1::1]:1")), 1);
  EXPECT_EQ(s.cohort_rules[1].values[0].second, 1);  // BR: latam, the same id as the file's
  EXPECT_EQ(CohortFiles(**config), std::vector<std::string>{dir_ + "/cohorts.cidr"});
}

TEST_F(SteeringConfigLoaderTest, CidrFileErrors) {
  std::ofstream(dir_ + "/bad.cidr") << "200.0.0.0/8 south-america\n200.0.0.0/8 latam\n";
  struct Case {
    std::string rule, message;
  };
  const std::vector<Case> cases = {
      {"{cidr_file: missing.cidr}",
       "steering.cohorts[0].cidr_file: cannot read " + dir_ + "/missing.cidr: No such file"},
      {"{cidr_file: bad.cidr}", "cidr_file: " + dir_ + "/bad.cidr:2: 200.0.0.0/8 is on line 1 too"},
      {"{cidr_file: bad.cidr, values: {a: b}}", "the cohorts of a cidr_file are in the file"},
      {"{cidr_file: bad.cidr, header: x-country}", "needs one of header, claim or cidr_file"},
      {"{cidr_file: \"\"}", "cidr_file: a file of CIDR COHORT lines"},
  };
  for (const Case& c : cases) {
    std::string yaml = Yaml();
    yaml.replace(yaml.find("  cohorts:\n"), 11, "  cohorts:\n    - " + c.rule + "\n");
    auto config = Parse(yaml);
    ASSERT_FALSE(config.ok()) << c.rule;
    EXPECT_NE(config.status().message().find(c.message), std::string::npos)
        << c.rule << " -> " << config.status().message();
  }
}

TEST_F(SteeringConfigLoaderTest, ClusterNamesCannotTakeTheTunnelPrefix) {
  std::string yaml = Yaml();
  yaml.replace(yaml.find("  - name: app"), 13, "  - name: region:app");
  yaml.replace(yaml.find("  - cluster: app"), 16, "  - cluster: region:app");
  auto config = Parse(yaml);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("are the tunnels to peer regions"), std::string::npos)
      << config.status().message();
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// fleet: lives beside steering: (proxy/config/admin_config_loader.cc) and needs it.
TEST_F(SteeringConfigLoaderTest, ParsesTheFleet) {
  std::ofstream(dir_ + "/etcd.password") << "s3cret\n";
  // Any certificate will do as a CA bundle: its loading is what is checked.
  ASSERT_EQ(
      std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                   "-keyout " +
                   dir_ + "/ca.key -out " + dir_ + "/ca.pem -days 1 -subj /CN=test 2>/dev/null")
                      .c_str()),
      0);
  auto config = Parse(Yaml() + R"(
fleet:
  etcd:
    endpoints: [https://127.0.0.1:2379, "https://[::1]:2379", https://etcd-1.internal:2379/]
    ca_file: ca.pem
    username: sluice
    password_file: etcd.password
    timeout: 500ms
    api: json
  prefix: /edge/prod/
  node: use1-a
  lease_ttl: 4s
  publish_interval: 2s
  standbys: 0
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const FleetConfig& f = (*config)->fleet;
  EXPECT_TRUE(f.enabled);
  EXPECT_EQ(f.etcd_endpoints.size(), 3u);
  EXPECT_EQ(f.etcd_tls.ca_file, dir_ + "/ca.pem");
  EXPECT_EQ(f.etcd_username, "sluice");
  EXPECT_EQ(f.etcd_password, "s3cret");
  EXPECT_EQ(f.etcd_timeout, absl::Milliseconds(500));
  EXPECT_FALSE(f.etcd_grpc);
  EXPECT_TRUE(FleetConfig().etcd_grpc);  // gRPC unless told otherwise
  EXPECT_EQ(f.prefix, "/edge/prod/");
  EXPECT_EQ(f.node, "use1-a");
  EXPECT_EQ(f.lease_ttl, absl::Seconds(4));
  EXPECT_EQ(f.publish_interval, absl::Seconds(2));
  EXPECT_EQ(f.standbys, 0u);
  EXPECT_FALSE(f.ticket_keys.enabled);
  EXPECT_FALSE((*Parse(Yaml()))->fleet.enabled);
  EXPECT_EQ(FleetConfig().standbys, 1u);
}

TEST_F(SteeringConfigLoaderTest, ParsesTheFleetsTicketKeys) {
  std::ofstream(dir_ + "/seal.key") << std::string(62, '0') << "ff\n";
  chmod((dir_ + "/seal.key").c_str(), 0600);
  auto config = Parse(Yaml() + R"(
fleet:
  etcd: {endpoints: [http://127.0.0.1:2379]}
  ticket_keys: {seal_key_file: seal.key, rotation: 30m, share: fleet}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const FleetConfig::TicketKeys& t = (*config)->fleet.ticket_keys;
  EXPECT_TRUE(t.enabled);
  EXPECT_EQ(t.seal[31], 0xff);
  EXPECT_EQ(t.seal[0], 0);
  EXPECT_EQ(t.seal_key_file, dir_ + "/seal.key");
  EXPECT_EQ(t.rotation, absl::Minutes(30));
  EXPECT_TRUE(t.fleet_wide);
  config = Parse(Yaml() + R"(
fleet:
  etcd: {endpoints: [http://127.0.0.1:2379]}
  ticket_keys: {seal_key_file: seal.key}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE((*config)->fleet.ticket_keys.fleet_wide);  // the region's nodes by default
  EXPECT_EQ((*config)->fleet.ticket_keys.rotation, absl::Hours(1));

  auto error = [&](const std::string& tickets) {
    auto bad = Parse(Yaml() + "fleet:\n  etcd: {endpoints: [http://127.0.0.1:2379]}\n" +
                     "  ticket_keys: " + tickets + "\n");
    return bad.ok() ? std::string("accepted") : std::string(bad.status().message());
  };
  EXPECT_NE(error("{rotation: 1h}").find("openssl rand -hex 32"), std::string::npos);
  EXPECT_NE(error("{seal_key_file: /nonexistent/seal}").find("cannot read /nonexistent/seal"),
            std::string::npos);
  std::ofstream(dir_ + "/short.key") << "abcd\n";
  std::string short_key = error("{seal_key_file: short.key}");
  EXPECT_NE(short_key.find("short.key must hold 64 hex digits"), std::string::npos) << short_key;
  EXPECT_NE(error("{seal_key_file: seal.key, rotation: 1s}").find("twice publish_interval"),
            std::string::npos);
  EXPECT_NE(error("{seal_key_file: seal.key, share: world}").find("region"), std::string::npos);
  EXPECT_NE(error("{seal_key_file: seal.key, key: x}").find("unknown"), std::string::npos);
}

TEST_F(SteeringConfigLoaderTest, FleetErrors) {
  auto error = [&](const std::string& fleet, const std::string& base = "") {
    auto config = Parse((base.empty() ? Yaml() : base) + "fleet:\n" + fleet);
    return config.ok() ? std::string("accepted") : std::string(config.status().message());
  };
  const std::string etcd = "  etcd: {endpoints: [http://127.0.0.1:2379]}\n";
  EXPECT_NE(error(etcd,
                  "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: "
                  "[127.0.0.1:2]}]\nroutes: [{cluster: a}]\n")
                .find("needs a steering: section"),
            std::string::npos);
  EXPECT_NE(error("  prefix: /x/\n").find("fleet.etcd: required"), std::string::npos);
  EXPECT_NE(error("  etcd: {endpoints: [https://127.0.0.1:2379], ca_file: /nonexistent/ca}\n")
                .find("ca_file /nonexistent/ca"),
            std::string::npos);
  EXPECT_NE(error("  etcd: {endpoints: [http://127.0.0.1:2379], ca_file: ca.pem}\n")
                .find("for https:// endpoints"),
            std::string::npos);
  EXPECT_NE(error("  etcd: {endpoints: [etcd.internal:2379]}\n").find("https://HOST:PORT"),
            std::string::npos);
  EXPECT_NE(error("  etcd: {endpoints: []}\n").find("1..16"), std::string::npos);
  EXPECT_NE(error("  etcd: {endpoints: [http://127.0.0.1:2379], api: rest}\n")
                .find("fleet.etcd.api: must be grpc (etcd's gRPC API) or json"),
            std::string::npos);
  EXPECT_NE(error("  etcd: {endpoints: [\"http://etcd one:2379\"]}\n").find("HOST:PORT"),
            std::string::npos);
  EXPECT_NE(error("  etcd: {endpoints: [http://etcd:0]}\n").find("HOST:PORT"), std::string::npos);
  EXPECT_NE(error(etcd + "  prefix: sluice\n").find("must start and end with /"),
            std::string::npos);
  EXPECT_NE(error(etcd + "  lease_ttl: 2500ms\n").find("whole seconds"), std::string::npos);
  EXPECT_NE(error(etcd + "  lease_ttl: 2s\n  publish_interval: 1500ms\n").find("half"),
            std::string::npos);
  EXPECT_NE(error(etcd + "  node: a b\n").find("fleet.node"), std::string::npos);
  EXPECT_NE(error(etcd + "  standbys: 9\n").find("fleet.standbys"), std::string::npos);
  EXPECT_NE(error(etcd + "  standbys: -1\n").find("fleet.standbys"), std::string::npos);
  EXPECT_NE(
      error("  etcd: {endpoints: [http://127.0.0.1:2379], username: u}\n").find("go together"),
      std::string::npos);
  EXPECT_NE(error("  etcd: {endpoints: [http://127.0.0.1:2379], username: u, password_file: "
                  "/nonexistent/pw}\n")
                .find("cannot read /nonexistent/pw"),
            std::string::npos);
  EXPECT_NE(error(etcd + "  leader: me\n").find("unknown"), std::string::npos);
  // A password goes to https:// endpoints only.
  std::ofstream(dir_ + "/etcd.password") << "s3cret\n";
  const std::string clear = error(
      "  etcd: {endpoints: [https://127.0.0.1:2379, http://127.0.0.1:2380], username: u, "
      "password_file: " +
      dir_ + "/etcd.password}\n");
  EXPECT_NE(clear.find("in clear"), std::string::npos) << clear;
}

}  // namespace
}  // namespace sluice
