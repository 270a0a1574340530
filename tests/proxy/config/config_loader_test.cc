#include "proxy/config/config_loader.h"

#include <cstdio>
#include <fstream>

#include "filters/headers/header_rules_filter.h"
#include "filters/rate_limit/rate_limit_filter.h"
#include "filters/retry/retry_filter.h"
#include "filters/shed/shed_filter.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr char kGood[] = R"(
workers: 2
log_level: warn
listeners:
  - name: web
    address: 127.0.0.1:8080
    proxy_protocol: true
clusters:
  - name: app
    balancer: round_robin
    endpoints: [127.0.0.1:9000, "[::1]:9001"]
    pool: {max_idle: 8, idle_timeout: 5s, max_requests: 100}
    connect_timeout: 250ms
routes:
  - host: "*.example.com"
    path_prefix: /api
    cluster: app
  - cluster: app
limits:
  max_head_bytes: 32KiB
  max_request_body_bytes: 1MiB
timeouts:
  head_read: 5s
proxy:
  via: edge
  forwarded_for: append
  trusted_proxies: [10.0.0.0/8]
  merge_slashes: false
)";

TEST(ConfigLoaderTest, ParsesEverySection) {
  auto config = ParseConfig(kGood, "test.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const Config& c = **config;
  EXPECT_EQ(c.workers, 2);
  EXPECT_EQ(c.log_level, LogLevel::kWarning);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].name, "web");
  EXPECT_TRUE(c.listeners[0].proxy_protocol);
  ASSERT_EQ(c.clusters.size(), 1u);
  EXPECT_EQ(c.clusters[0].balancer, BalancerKind::kRoundRobin);
  ASSERT_EQ(c.clusters[0].endpoints.size(), 2u);
  EXPECT_EQ(c.clusters[0].endpoints[1].address.ToString(), "[::1]:9001");
  EXPECT_EQ(c.clusters[0].pool.max_idle, 8u);
  EXPECT_EQ(c.clusters[0].pool.idle_timeout, absl::Seconds(5));
  EXPECT_EQ(c.clusters[0].connect_timeout, absl::Milliseconds(250));
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].host, "*.example.com");
  EXPECT_EQ(c.routes[1].host, "*");
  EXPECT_EQ(c.routes[1].path_prefix, "/");
  EXPECT_EQ(c.limits.max_head_bytes, 32u * 1024);
  EXPECT_EQ(c.limits.max_request_body_bytes, 1u << 20);
  EXPECT_EQ(c.timeouts.head_read, absl::Seconds(5));
  EXPECT_EQ(c.proxy.via, "edge");
  EXPECT_EQ(c.proxy.forwarded_for, ForwardedForMode::kAppend);
  EXPECT_FALSE(c.proxy.path.merge_slashes);
}

TEST(ConfigLoaderTest, WorkersZeroMeansCores) {
  auto config = ParseConfig(
      "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
      "routes: [{cluster: a}]\n",
      "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_GE((*config)->workers, 1);
}

struct BadConfig {
  const char* yaml;
  const char* message;  // must appear in the error
};

class ConfigLoaderRejects : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigLoaderRejects, WithFileLineAndKey) {
  auto config = ParseConfig(GetParam().yaml, "conf/x.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find(GetParam().message), std::string::npos)
      << config.status().message();
  EXPECT_EQ(config.status().message().rfind("conf/x.yaml:", 0), 0u) << config.status().message();
}

constexpr char kBase[] =
    "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
    "routes: [{cluster: a}]\n";

INSTANTIATE_TEST_SUITE_P(
    Bad, ConfigLoaderRejects,
    ::testing::Values(
        BadConfig{"listeners: [\n", "YAML syntax error"},
        BadConfig{"clusters: []\n", "listeners: required"},
        BadConfig{"listeners:\n  - address: 127.0.0.1:99999\n",
                  "x.yaml:2: listeners[0].address: invalid port"},
        BadConfig{"listeners:\n  - address: nowhere\n", "listeners[0].address"},
        BadConfig{
            "listeners: [{address: 127.0.0.1:1}]\nclusters:\n  - name: a\n    endpoints: []\n",
            "x.yaml:4: clusters[0].endpoints: needs at least one endpoint"},
        BadConfig{"listeners: [{address: 127.0.0.1:1}]\nclusters:\n  - name: a\n    endpoints: "
                  "[127.0.0.1:2]\n"
                  "    balancer: random\n",
                  "x.yaml:5: clusters[0].balancer: must be round_robin or least_outstanding"},
        BadConfig{
            "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
            "routes:\n  - cluster: b\n",
            "x.yaml:4: routes[0].cluster: no cluster named \"b\""},
        BadConfig{
            "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
            "routes: [{cluster: a, path_prefix: api}]\n",
            "routes[0].path_prefix: must start with /"},
        BadConfig{"workers: 1000\n", "workers: must be 0..256"},
        BadConfig{"wrokers: 1\n", "unknown key \"wrokers\""},
        BadConfig{"listeners: [{address: 127.0.0.1:1}, {address: 127.0.0.1:1}]\n",
                  "is used by listener"},
        BadConfig{
            "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
            "routes: [{cluster: a}]\n"
            "timeouts: {head_read: 10}\n",
            "x.yaml:4: timeouts.head_read: expected a duration"},
        BadConfig{
            "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
            "routes: [{cluster: a}]\n"
            "limits: {max_head_bytes: 12XB}\n",
            "limits.max_head_bytes: unknown size unit"},
        BadConfig{
            "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
            "routes: [{cluster: a}]\n"
            "proxy: {trusted_proxies: [10.0.0.0/33]}\n",
            "proxy.trusted_proxies[0]: invalid prefix"},
        BadConfig{"log_level: loud\n", "log_level: log level must be"},
        BadConfig{"listeners:\n  - address: 127.0.0.1:1\n    tls: {min_version: \"1.2\"}\n",
                  "x.yaml:3: listeners[0].tls: needs a certificate"},
        BadConfig{"listeners:\n  - address: 127.0.0.1:1\n    tls:\n      cert_file: /no/such.crt\n"
                  "      key_file: /no/such.key\n",
                  "listeners[0].tls: cert_file /no/such.crt"},
        BadConfig{"listeners:\n  - address: 127.0.0.1:1\n    tls:\n      cert_file: a\n"
                  "      key_file: b\n      min_version: \"1.1\"\n",
                  "listeners[0].tls.min_version: must be \"1.2\" or \"1.3\""},
        BadConfig{"listeners:\n  - address: 127.0.0.1:1\n    tls: {cert_file: a, key_file: b, "
                  "certificates: []}\n",
                  "either certificates (a list) or cert_file and key_file"},
        BadConfig{"listeners:\n  - address: 127.0.0.1:1\n    tls: {cert_file: a, key_file: b, "
                  "session_tickets: false, ticket_key_files: [k]}\n",
                  "listeners[0].tls.ticket_key_files: goes with session_tickets: true"},
        BadConfig{"listeners:\n  - address: 127.0.0.1:1\n    tls: {cert_file: a, key_file: b, "
                  "ticket_key_files: []}\n",
                  "listeners[0].tls.ticket_key_files: must list 1..8 files"},
        BadConfig{"listeners: [{address: 127.0.0.1:1}]\nclusters:\n  - name: a\n    endpoints: "
                  "[127.0.0.1:2]\n    tls: {ca_file: /no/ca.pem}\n",
                  "x.yaml:5: clusters[0].tls: ca_file /no/ca.pem"},
        BadConfig{"listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: "
                  "[127.0.0.1:2]}]\nroutes: [{cluster: a}]\nhttp2: {max_concurrent_streams: 0}\n",
                  "http2.max_concurrent_streams: must be 1..10000"},
        BadConfig{"listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: "
                  "[127.0.0.1:2]}]\nroutes: [{cluster: a}]\nhttp2: {initial_stream_window: 1k}\n",
                  "http2.initial_stream_window"},
        BadConfig{
            "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
            "routes: [{cluster: a}]\n"
            "admin:\n  tls: {cert_file: /no/admin.crt, key_file: /no/admin.key}\n",
            "x.yaml:5: admin.tls: cert_file /no/admin.crt"},
        BadConfig{
            "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
            "routes: [{cluster: a}]\n"
            "admin:\n  tls: {cert_file: /no/admin.crt}\n",
            "admin.tls.key_file: required"},
        BadConfig{
            "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
            "routes: [{cluster: a}]\n"
            "admin:\n  tls: {cert_file: a, key_file: b, client_ca_file: c}\n",
            "admin.tls.client_ca_file: not taken by the admin listener"}));

TEST(ConfigLoaderTest, Http2AndUpstreamTlsSettings) {
  auto config = ParseConfig(
      "listeners: [{address: 127.0.0.1:1, http2: false}]\n"
      "clusters:\n  - name: a\n    endpoints: [127.0.0.1:2]\n    http2: true\n"
      "    pool: {http2_connections: 3, http2_warm: 1, http2_ping_interval: 30s,\n"
      "           http2_window: 128KiB, http2_max_window: 8MiB}\n"
      "routes: [{cluster: a}]\n"
      "limits: {upstream_window_memory: 1GiB}\n"
      "http2: {max_concurrent_streams: 50, initial_stream_window: 1MiB, max_early_resets: 10}\n",
      "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE((*config)->listeners[0].http2);
  EXPECT_FALSE((*config)->listeners[0].tls_context);
  EXPECT_TRUE((*config)->clusters[0].http2);
  EXPECT_EQ((*config)->clusters[0].pool.http2_connections, 3u);
  EXPECT_EQ((*config)->clusters[0].pool.http2_warm, 1u);
  EXPECT_EQ((*config)->clusters[0].pool.http2_ping_interval, absl::Seconds(30));
  EXPECT_EQ((*config)->clusters[0].pool.http2_window, 128u * 1024);
  EXPECT_EQ((*config)->clusters[0].pool.http2_max_window, 8u << 20);
  EXPECT_EQ((*config)->limits.upstream_window_memory, uint64_t{1} << 30);
  EXPECT_EQ((*config)->http2.max_concurrent_streams, 50u);
  EXPECT_EQ((*config)->http2.initial_stream_window, 1u << 20);
  EXPECT_EQ((*config)->http2.max_early_resets, 10u);
}

TEST(ConfigLoaderTest, ConnectionCapsHaveADefault) {
  auto config = ParseConfig(kBase, "b.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const LimitsConfig& limits = (*config)->limits;
  EXPECT_FALSE(limits.max_connections.has_value());
  // Unset: half of what 1,024 descriptors for everything else leave, at least 64.
  EXPECT_EQ(MaxConnectionsFor(limits, 20000), (20000u - 1024) / 2);
  EXPECT_EQ(MaxConnectionsFor(limits, 1048576), (1048576u - 1024) / 2);
  EXPECT_EQ(MaxConnectionsFor(limits, 1024), 64u);
  EXPECT_EQ(limits.max_connections_per_client, 0u);
  EXPECT_EQ(limits.upstream_window_memory, 256u << 20);
  // An origin's HTTP/2 pool keeps nothing warm and its windows fixed unless told.
  EXPECT_EQ((*config)->clusters[0].pool.http2_warm, 0u);
  EXPECT_EQ((*config)->clusters[0].pool.http2_max_window, 256u * 1024);
  EXPECT_FALSE((*config)->proxy.trust_client_headers);

  config = ParseConfig(std::string(kBase) +
                           "limits: {max_connections: 0, max_connections_per_client: 100}\n"
                           "proxy: {trust_client_headers: true}\n",
                       "b.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(MaxConnectionsFor((*config)->limits, 20000), 0u);  // explicitly none
  EXPECT_EQ((*config)->limits.max_connections_per_client, 100u);
  EXPECT_TRUE((*config)->proxy.trust_client_headers);
  config = ParseConfig(std::string(kBase) + "limits: {max_connections: 500}\n", "b.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(MaxConnectionsFor((*config)->limits, 20000), 500u);
}

TEST(ConfigLoaderTest, TheHandshakeBudgetAndTheYoungConnectionAge) {
  auto config = ParseConfig(kBase, "b.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->limits.tls_handshake_budget, absl::Microseconds(500));
  EXPECT_EQ((*config)->limits.tls_young_connection_age, absl::ZeroDuration());
  config = ParseConfig(
      std::string(kBase) + "limits: {tls_handshake_budget: 2ms, tls_young_connection_age: 1s}\n",
      "b.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ((*config)->limits.tls_handshake_budget, absl::Milliseconds(2));
  EXPECT_EQ((*config)->limits.tls_young_connection_age, absl::Seconds(1));
  for (const char* bad :
       {"limits: {tls_young_connection_age: 11m}\n", "limits: {tls_young_connection_age: -1s}\n",
        "limits: {tls_young_connection_age: soon}\n"}) {
    config = ParseConfig(std::string(kBase) + bad, "b.yaml");
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_NE(config.status().message().find("tls_young_connection_age"), std::string::npos)
        << config.status();
  }
}

TEST(ConfigLoaderTest, MissingFile) {
  auto config = LoadConfigFile("/nonexistent/sluice.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("/nonexistent/sluice.yaml"), std::string::npos);
}

TEST(ConfigLoaderTest, BaseIsValid) { EXPECT_TRUE(ParseConfig(kBase, "b.yaml").ok()); }

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

constexpr char kFilters[] = R"(
listeners: [{address: 127.0.0.1:1}]
clusters:
  - name: app
    endpoints: [127.0.0.1:2]
    concurrency:
      algorithm: vegas
      initial_limit: 50
      partitions: [{name: critical, share: 0.9}, {name: bulk, share: 0.1}]
routes:
  - cluster: app
    filters:
      - headers:
          request: {add: {X-Edge: sluice}, remove: [X-Debug]}
          response: {set: {Cache-Control: no-store}}
      - rate_limit: {key: member, rate: 600/m, burst: 20}
      - shed:
          partition: bulk
          classify: [{header: x-priority, value: critical, partition: critical}]
          status: 429
          retry_after: 2s
)";

TEST(ConfigLoaderFiltersTest, ParsesChainsAndLimits) {
  auto config = ParseConfig(kFilters, "f.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const ClusterConfig& cluster = (*config)->clusters[0];
  ASSERT_TRUE(cluster.concurrency.has_value());
  EXPECT_EQ(cluster.concurrency->algorithm, ConcurrencyConfig::Algorithm::kVegas);
  EXPECT_EQ(cluster.concurrency->partitions.size(), 2u);
  const auto& filters = (*config)->routes[0].filters;
  ASSERT_EQ(filters.size(), 3u);
  ASSERT_NE(filters[0].As<HeaderRulesConfig>(), nullptr);
  const auto& headers = *filters[0].As<HeaderRulesConfig>();
  EXPECT_EQ(headers.request.add[0].first, "X-Edge");
  ASSERT_NE(filters[1].As<RateLimitConfig>(), nullptr);
  const auto& rate = *filters[1].As<RateLimitConfig>();
  EXPECT_EQ(rate.key, RateLimitConfig::Key::kMember);
  EXPECT_DOUBLE_EQ(rate.rate_per_second, 10);
  EXPECT_EQ(rate.burst, 20);
  ASSERT_NE(filters[2].As<ShedConfig>(), nullptr);
  const auto& shed = *filters[2].As<ShedConfig>();
  EXPECT_EQ(shed.status, 429);
  EXPECT_EQ(shed.retry_after_seconds, 2);
  EXPECT_EQ(shed.classify[0].partition, "critical");
}

TEST(ConfigLoaderFiltersTest, Errors) {
  struct Case {
    std::string from, to, message;
  };
  std::vector<Case> cases = {
      {"rate: 600/m", "rate: 600/d", "routes[0].filters[1].rate_limit.rate: rate unit must be"},
      {"Cache-Control: no-store", "Content-Length: 5",
       "header rules cannot change \"Content-Length\""},
      {"remove: [X-Debug]", "remove: [Connection]", "header rules cannot change \"Connection\""},
      {"partition: critical}]", "partition: vip}]", "the cluster has no partition named \"vip\""},
      {"algorithm: vegas", "algorithm: magic", "clusters[0].concurrency.algorithm: must be"},
      {"share: 0.1}", "share: 0.5}", "shares add up to more than 1"},
      {"      - headers:", "      - gzip:", "unknown filter \"gzip\""},
      {"status: 429", "status: 500", "shed.status: must be"},
  };
  for (const Case& c : cases) {
    std::string yaml = kFilters;
    size_t at = yaml.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    yaml.replace(at, c.from.size(), c.to);
    auto config = ParseConfig(yaml, "f.yaml");
    ASSERT_FALSE(config.ok()) << c.to;
    EXPECT_NE(config.status().message().find(c.message), std::string::npos)
        << config.status().message();
    EXPECT_EQ(config.status().message().rfind("f.yaml:", 0), 0u);
  }
}

TEST(ConfigLoaderFiltersTest, AuthLeewayIsBounded) {
  const std::string yaml =
      "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
      "routes:\n  - cluster: a\n    filters:\n      - auth: {api_keys: [{name: k, sha256: " +
      std::string(64, 'a') + "}], leeway: LEEWAY}\n";
  auto with = [&](const std::string& leeway) {
    std::string text = yaml;
    text.replace(text.find("LEEWAY"), 6, leeway);
    return ParseConfig(text, "f.yaml");
  };
  EXPECT_TRUE(with("5m").ok()) << with("5m").status();
  auto config = with("10m");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("at most 5m"), std::string::npos) << config.status();
}

TEST(ConfigLoaderFiltersTest, ShedNeedsAClusterLimit) {
  std::string yaml = kFilters;
  size_t start = yaml.find("    concurrency:");
  size_t end = yaml.find("routes:");
  yaml.erase(start, end - start);
  auto config = ParseConfig(yaml, "f.yaml");
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("has no concurrency limit"), std::string::npos)
      << config.status().message();
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

constexpr char kResilience[] = R"(
listeners: [{address: 127.0.0.1:1}]
clusters:
  - name: app
    endpoints:
      - 127.0.0.1:2
      - {address: origin.internal:8080, standby: true}
    outlier_detection: {consecutive_failures: 3, base_ejection: 1s, max_ejection: 10s, max_ejection_percent: 40}
    health_check: {path: /ping, interval: 2s, timeout: 500ms, rise: 1, fall: 2}
    circuit_breakers: {max_connections: 100, max_pending: 10, max_requests: 50}
    retry_budget: {ratio: 0.3, min_retries: 5}
    panic_threshold: 30
    inject_standby: true
    slow_start: 20s
    dns_refresh: 10s
routes:
  - cluster: app
    filters:
      - retry:
          attempts: 4
          on: [connect_failure, gateway_error, 500]
          methods: any
          replay_buffer: 16KiB
          per_try_timeout: 1s
          backoff: {base: 10ms, max: 100ms}
)";

TEST(ConfigLoaderResilienceTest, ParsesEverything) {
  auto config = ParseConfig(kResilience, "r.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const ClusterConfig& c = (*config)->clusters[0];
  ASSERT_EQ(c.endpoints.size(), 2u);
  EXPECT_EQ(c.endpoints[1].host, "origin.internal");
  EXPECT_EQ(c.endpoints[1].port, 8080);
  EXPECT_TRUE(c.endpoints[1].standby);
  EXPECT_EQ(c.outlier.consecutive_failures, 3u);
  EXPECT_EQ(c.outlier.max_ejection_percent, 40u);
  ASSERT_TRUE(c.health_check.has_value());
  EXPECT_EQ(c.health_check->path, "/ping");
  EXPECT_EQ(c.health_check->fall, 2u);
  EXPECT_EQ(c.breakers.max_pending, 10u);
  EXPECT_DOUBLE_EQ(c.retry_budget.ratio, 0.3);
  EXPECT_EQ(c.panic_threshold_percent, 30u);
  EXPECT_TRUE(c.inject_standby);
  EXPECT_EQ(c.slow_start, absl::Seconds(20));
  ASSERT_NE((*config)->routes[0].filters[0].As<RetryConfig>(), nullptr);
  const auto& retry = *(*config)->routes[0].filters[0].As<RetryConfig>();
  EXPECT_EQ(retry.attempts, 4u);
  EXPECT_TRUE(retry.on_connect_failure);
  EXPECT_FALSE(retry.on_reset);
  EXPECT_EQ(retry.status_codes, std::vector<int>{500});
  EXPECT_TRUE(retry.any_method);
  EXPECT_EQ(retry.replay_buffer, 16u * 1024);
  EXPECT_EQ(retry.per_try_timeout_ns, 1000000000);
  EXPECT_EQ(retry.backoff_max_ns, 100000000);
}

TEST(ConfigLoaderResilienceTest, Errors) {
  struct Case {
    std::string from, to, message;
  };
  std::vector<Case> cases = {
      {"on: [connect_failure, gateway_error, 500]", "on: [sometimes]", "retry.on[0]: must be"},
      {"methods: any", "methods: some", "methods: must be idempotent or any"},
      {"attempts: 4", "attempts: 50", "attempts: must be 1..10"},
      {"path: /ping", "path: ping", "health_check.path: must start with /"},
      {"timeout: 500ms", "timeout: 5s", "health_check.timeout: must be shorter than interval"},
      {"max_ejection: 10s", "max_ejection: 100ms", "must not be below base_ejection"},
      {"127.0.0.1:2", "bad host!:2", "neither an IP address nor a host name"},
      {"origin.internal:8080", "origin.internal:0", "invalid port"},
      {"panic_threshold: 30", "panic_threshold: 130", "panic_threshold: must be 0..100"},
  };
  for (const Case& c : cases) {
    std::string yaml = kResilience;
    size_t at = yaml.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    yaml.replace(at, c.from.size(), c.to);
    auto config = ParseConfig(yaml, "r.yaml");
    ASSERT_FALSE(config.ok()) << c.to;
    EXPECT_NE(config.status().message().find(c.message), std::string::npos)
        << config.status().message();
  }
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

constexpr char kHookBase[] =
    "listeners: [{address: 127.0.0.1:1}]\nclusters: [{name: a, endpoints: [127.0.0.1:2]}]\n"
    "routes: [{cluster: a}]\n";

absl::StatusOr<ConfigPtr> WithHookAndCapacity(const std::string& rest) {
  return ParseConfig(std::string(kHookBase) + rest, "h.yaml");
}

TEST(ConfigLoaderHooksTest, NoHookAndLearnedCapacityByDefault) {
  auto config = WithHookAndCapacity("");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE((*config)->controller.hooks.scale.has_value());
  EXPECT_EQ((*config)->capacity.requests_per_second, 0);
  EXPECT_EQ((*config)->capacity.headroom, 1.0);
}

TEST(ConfigLoaderHooksTest, AProgramHook) {
  auto config = WithHookAndCapacity(
      "controller:\n"
      "  hooks:\n"
      "    scale:\n"
      "      exec: [/bin/sh, -c, \"echo scaled\"]\n"
      "capacity: {requests_per_second: 2000, headroom: 0.8}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& hook = (*config)->controller.hooks.scale;
  ASSERT_TRUE(hook.has_value());
  EXPECT_EQ(hook->exec, (std::vector<std::string>{"/bin/sh", "-c", "echo scaled"}));
  EXPECT_EQ(hook->timeout, absl::Seconds(60));
  EXPECT_EQ(hook->capacity_timeout, absl::Minutes(5));
  EXPECT_DOUBLE_EQ((*config)->capacity.requests_per_second, 2000);
  EXPECT_DOUBLE_EQ((*config)->capacity.headroom, 0.8);
}

TEST(ConfigLoaderHooksTest, AWebhookWithHeadersOrAToken) {
  auto config = WithHookAndCapacity(
      "controller:\n"
      "  hooks:\n"
      "    scale:\n"
      "      url: http://127.0.0.1:8000/scale\n"
      "      headers: {Authorization: \"Bearer abc\", X-Team: edge}\n"
      "      timeout: 90s\n"
      "      capacity_timeout: 10m\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& hook = (*config)->controller.hooks.scale;
  ASSERT_TRUE(hook.has_value());
  EXPECT_TRUE(hook->exec.empty());
  EXPECT_EQ(hook->url.origin.address.ToString(), "127.0.0.1:8000");
  EXPECT_EQ(hook->url.target, "/scale");
  EXPECT_EQ(hook->headers.size(), 2u);
  EXPECT_EQ(hook->headers[1], (std::pair<std::string, std::string>{"X-Team", "edge"}));
  EXPECT_EQ(hook->timeout, absl::Seconds(90));
  EXPECT_EQ(hook->capacity_timeout, absl::Minutes(10));
  EXPECT_FALSE(hook->tls.context);

  std::string token = ::testing::TempDir() + "/sluice-hook-token";
  std::ofstream(token) << "s3cr3t-hook-token\n";
  config = WithHookAndCapacity(
      "controller:\n  hooks:\n    scale:\n"
      "      url: https://hooks.internal:8443/\n"
      "      token_file: " +
      token + "\n");
  ASSERT_TRUE(config.ok()) << config.status();
  const auto& https = (*config)->controller.hooks.scale;
  EXPECT_TRUE(https->url.origin.tls);
  EXPECT_EQ(https->url.target, "/");
  EXPECT_TRUE(https->tls.context);  // the system's CA bundle
  ASSERT_EQ(https->headers.size(), 1u);
  EXPECT_EQ(https->headers[0].second, "Bearer s3cr3t-hook-token");
  std::remove(token.c_str());
}

TEST(ConfigLoaderHooksTest, Errors) {
  struct Case {
    std::string yaml, message;
  };
  const std::string hook = "controller:\n  hooks:\n    scale:\n";
  std::vector<Case> cases = {
      {"capacity: {requests_per_second: -5}\n",
       "h.yaml:4: capacity.requests_per_second: must be a number >= 0, got -5"},
      {"capacity: {requests_per_second: lots}\n",
       "capacity.requests_per_second: must be a number >= 0, got lots"},
      {"capacity: {requests_per_second: 1e12}\n", "capacity.requests_per_second: must be at most"},
      {"capacity: {headroom: 0.05}\n", "capacity.headroom: must be a number from 0.1 to 1"},
      {"capacity: {rps: 5}\n", "capacity: unknown key \"rps\""},
      {hook + "      timeout: 5s\n", "controller.hooks.scale: needs exactly one of exec"},
      {hook + "      exec: [/bin/sh]\n      url: http://127.0.0.1:1/\n", "needs exactly one of"},
      {hook + "      exec: []\n", "controller.hooks.scale.exec: needs the program"},
      {hook + "      exec: [/no/such/hook]\n",
       "controller.hooks.scale.exec[0]: /no/such/hook is not an executable file"},
      {hook + "      exec: [/bin/sh]\n      headers: {A: b}\n",
       "controller.hooks.scale.headers: is for a url hook only"},
      {hook + "      exec: [/bin/sh]\n      timeout: 2h\n",
       "controller.hooks.scale.timeout: must be at most 1h"},
      {hook + "      exec: [/bin/sh]\n      capacity_timeout: 0s\n",
       "controller.hooks.scale.capacity_timeout: must be at least 1s"},
      {hook + "      url: ftp://127.0.0.1:1/\n", "controller.hooks.scale.url: ftp://"},
      {hook + "      url: http://127.0.0.1:1/a b\n", "printable ASCII without spaces"},
      {hook + "      url: http://127.0.0.1:1/\n      headers: {Host: x}\n",
       "controller.hooks.scale.headers.Host: sluice writes \"Host\" itself"},
      {hook + "      url: http://127.0.0.1:1/\n      headers: {\"a b\": x}\n",
       "is not a header name"},
      {hook + "      url: http://10.0.0.1:1/\n      token_file: /etc/hostname\n",
       "the token would cross to http://10.0.0.1:1/ in clear"},
      {hook + "      url: http://127.0.0.1:1/\n      tls: {ca_file: /x}\n",
       "controller.hooks.scale.tls: is for https:// URLs"},
      {hook + "      url: http://127.0.0.1:1/\n      run: now\n", "unknown key \"run\""},
  };
  for (const Case& c : cases) {
    auto config = WithHookAndCapacity(c.yaml);
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_NE(config.status().message().find(c.message), std::string::npos)
        << config.status().message();
  }
}

}  // namespace
}  // namespace sluice
