#include "proxy/config/dns_config_loader.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "proxy/config/config_loader.h"

namespace sluice {
namespace {

constexpr char kSecret[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

constexpr char kBase[] = R"(
listeners: [{address: 127.0.0.1:1}]
clusters:
  - name: app
    endpoints: [127.0.0.1:2]
routes:
  - cluster: app
steering:
  local_region: us-east-1
  tunnel: {insecure: true, key_file: tunnel.key}
  regions:
    us-east-1: {tunnel: [127.0.0.1:3], saviors: {us-west-2: 100}}
    us-west-2: {tunnel: [127.0.0.1:4], saviors: {us-east-1: 100}}
controller:
  state_file: state.json
)";

// The smallest good section: one name both regions share.
constexpr char kRecords[] = R"(  records:
    us-east-1: [{name: api, type: A, data: 192.0.2.1}]
    us-west-2: [{name: api, type: A, data: 198.51.100.1}]
)";

class DnsConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/sluice-dns-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
    Write("tunnel.key", "0123456789abcdef0123456789abcdef\n");
    Write("bind.key",
          std::string("key \"sluice-update\" {\n\talgorithm hmac-sha256;\n\tsecret \"") + kSecret +
              "\";\n};\n");
    Write("kdig.key", std::string("hmac-sha256:sluice-update:") + kSecret + "\n");
    Write("bad.key", "hmac-md5:sluice-update:" + std::string(kSecret) + "\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) const {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), 0600);
  }

  absl::StatusOr<ConfigPtr> Parse(const std::string& dns, const std::string& base = kBase) const {
    return ParseConfig(base + dns, dir_ + "/sluice.yaml");
  }

  // A section from the good one with `line` ("  key: value\n") in place of key's line (or
  // without it when `line` is empty).
  static std::string Section(const std::string& key, const std::string& line) {
    std::string out = "dns:\n";
    for (const auto& [k, l] : std::vector<std::pair<std::string, std::string>>{
             {"zone", "  zone: example.com\n"},
             {"servers", "  servers: [127.0.0.1:5353]\n"},
             {"key_file", "  key_file: bind.key\n"},
             {"records", kRecords}}) {
      out += k == key ? line : l;
    }
    return out;
  }

  void ExpectError(const std::string& dns, const std::string& error) const {
    absl::StatusOr<ConfigPtr> config = Parse(dns);
    ASSERT_FALSE(config.ok()) << dns;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(config.status().message().find(error), absl::string_view::npos)
        << "want \"" << error << "\", got: " << config.status();
    EXPECT_NE(config.status().message().find(dir_ + "/sluice.yaml:"), absl::string_view::npos)
        << config.status();
  }

  std::string dir_;
};

TEST_F(DnsConfigLoaderTest, OffWithoutTheSection) {
  absl::StatusOr<ConfigPtr> config = Parse("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE((*config)->dns.enabled);
}

TEST_F(DnsConfigLoaderTest, ParsesEverything) {
  absl::StatusOr<ConfigPtr> config = Parse(R"(dns:
  zone: Example.COM
  servers: [127.0.0.1:5353, "[::1]:53"]
  key_file: bind.key
  ttl: 30s
  timeout: 2s
  plans: false
  records:
    us-east-1:
      - {name: api, type: A, data: 192.0.2.1}
      - {name: API, type: aaaa, data: "2001:DB8:0::1"}
      - {name: east.example.com., type: A, data: 192.0.2.1}
    us-west-2:
      - {name: api.example.com., type: A, data: 198.51.100.1}
      - {name: "@", type: A, data: 198.51.100.1}
)");
  ASSERT_TRUE(config.ok()) << config.status();
  const DnsConfig& dns = (*config)->dns;
  EXPECT_TRUE(dns.enabled);
  EXPECT_EQ(dns.zone, "example.com.");
  ASSERT_EQ(dns.servers.size(), 2u);
  EXPECT_EQ(dns.servers[0].ToString(), "127.0.0.1:5353");
  EXPECT_EQ(dns.key.name, "sluice-update.");
  EXPECT_EQ(dns.key.algorithm, "hmac-sha256");
  EXPECT_EQ(dns.key.secret, kSecret);
  EXPECT_EQ(dns.key_file, dir_ + "/bind.key");
  EXPECT_EQ(dns.ttl, 30u);
  EXPECT_EQ(dns.timeout, absl::Seconds(2));
  EXPECT_FALSE(dns.in_plans);
  ASSERT_EQ(dns.regions.size(), 2u);
  EXPECT_EQ(dns.regions[0].region, "us-east-1");
  EXPECT_EQ(dns.regions[0].records,
            (std::vector<DnsRecord>{{"api.example.com.", "A", "192.0.2.1"},
                                    {"api.example.com.", "AAAA", "2001:db8::1"},
                                    {"east.example.com.", "A", "192.0.2.1"}}));
  EXPECT_EQ(dns.regions[1].region, "us-west-2");
  EXPECT_EQ(dns.regions[1].records,
            (std::vector<DnsRecord>{{"api.example.com.", "A", "198.51.100.1"},
                                    {"example.com.", "A", "198.51.100.1"}}));
  EXPECT_EQ(ManagedRRsets(dns.regions),
            (std::vector<DnsRRsetKey>{{"api.example.com.", "A"}, {"api.example.com.", "AAAA"}}));
}

TEST_F(DnsConfigLoaderTest, DefaultsAndTheKdigKeyFormat) {
  absl::StatusOr<ConfigPtr> config = Parse(Section("key_file", "  key_file: kdig.key\n"));
  ASSERT_TRUE(config.ok()) << config.status();
  const DnsConfig& dns = (*config)->dns;
  EXPECT_TRUE(dns.enabled);
  EXPECT_EQ(dns.key.name, "sluice-update.");
  EXPECT_EQ(dns.key.secret, kSecret);
  EXPECT_EQ(dns.ttl, 60u);
  EXPECT_EQ(dns.timeout, absl::Seconds(3));
  EXPECT_TRUE(dns.in_plans);
}

TEST_F(DnsConfigLoaderTest, RequiredKeys) {
  ExpectError(Section("zone", ""), "dns.zone: required");
  ExpectError(Section("servers", ""), "dns.servers: required");
  ExpectError(Section("key_file", ""), "dns.key_file: required");
  ExpectError(Section("records", ""), "dns.records: required");
}

TEST_F(DnsConfigLoaderTest, Errors) {
  ExpectError(Section("zone", "  zone: \"exa mple.com\"\n"), "dns.zone: \"exa mple.com\" is not");
  ExpectError(Section("servers", "  servers: []\n"), "dns.servers: needs 1 to 8");
  ExpectError(Section("servers", "  servers: [nowhere]\n"), "dns.servers[0]:");
  ExpectError(Section("key_file", "  key_file: missing.key\n"),
              "dns.key_file: cannot read " + dir_ + "/missing.key");
  ExpectError(Section("key_file", "  key_file: bad.key\n"),
              "dns.key_file: " + dir_ +
                  "/bad.key: key file: algorithm \"hmac-md5\": only hmac-sha256 is accepted");
  ExpectError(Section("key_file", "  key_file: tunnel.key\n"),
              "dns.key_file: " + dir_ + "/tunnel.key: key file:");
  ExpectError(Section("zone", "  zone: example.com\n  ttl: 25h\n"), "dns.ttl: must be at most 24h");
  ExpectError(Section("zone", "  zone: example.com\n  timeout: 1ms\n"), "dns.timeout: must be at");
  ExpectError(Section("zone", "  zone: example.com\n  plans: sometimes\n"),
              "dns.plans: expected true or false");
  ExpectError(Section("zone", "  zone: example.com\n  zones: [a]\n"), "zones");
}

TEST_F(DnsConfigLoaderTest, RecordErrors) {
  auto records = [](const std::string& east) {
    return Section("records", "  records:\n    us-east-1: [" + east +
                                  "]\n    us-west-2: [{name: api, type: A, data: 198.51.100.1}]\n");
  };
  ExpectError(records("{name: api, type: MX, data: 10 mail}"),
              "dns.records.us-east-1[0]: record type \"MX\" of api.example.com.: only A and AAAA "
              "records are managed");
  ExpectError(records("{name: api.example.org., type: A, data: 192.0.2.1}"),
              "dns.records.us-east-1[0]: api.example.org. is not in the zone example.com.");
  ExpectError(records("{name: api, type: A, data: \"2001:db8::1\"}"),
              "dns.records.us-east-1[0]: api.example.com. A: \"2001:db8::1\" is not an IPv4");
  ExpectError(records("{name: api, type: A}"), "dns.records.us-east-1[0]: needs name, type");
  ExpectError(records("{name: api, type: A, data: 192.0.2.1, ttl: 5}"), "dns.records.us-east-1[0]");
  ExpectError(records("{name: api, type: A, data: 192.0.2.1}, {name: API, type: a, data: "
                      "192.0.2.1}"),
              "dns.records.us-east-1[1]: api.example.com. A 192.0.2.1 is listed twice");
  ExpectError(Section("records", std::string(kRecords) +
                                     "    eu-west-1: [{name: api, type: A, data: 203.0.113.1}]\n"),
              "dns.records.eu-west-1: unknown region \"eu-west-1\" (not in steering.regions)");
  ExpectError(Section("records",
                      "  records:\n    us-east-1: [{name: east, type: A, data: "
                      "192.0.2.1}]\n    us-west-2: [{name: west, type: A, data: "
                      "198.51.100.1}]\n"),
              "dns.records: no name is shared by two regions");
}

TEST_F(DnsConfigLoaderTest, NeedsSteering) {
  std::string base = kBase;
  base = base.substr(0, base.find("steering:"));
  absl::StatusOr<ConfigPtr> config = Parse(Section("", ""), base);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("dns: needs steering"), absl::string_view::npos)
      << config.status();
}

}  // namespace
}  // namespace sluice
