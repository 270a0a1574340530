// The configuration of a sluice process: what it listens on, where it forwards, its limits
// and timeouts. Built once by the loader (proxy/config/config_loader.h) or the quick-start flags
// (proxy/config/cli.h), validated, and then shared read-only as std::shared_ptr<const Config>:
// every worker reads the snapshot it was given, and a reload publishes a new one.
#ifndef SLUICE_PROXY_CONFIG_CONFIG_H_
#define SLUICE_PROXY_CONFIG_CONFIG_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/socket_address.h"
#include "filters/registry.h"
#include "filters/shed/concurrency_config.h"
#include "proxy/config/steering_config.h"
#include "proxy/dns/dns_message.h"
#include "proxy/http/http2_settings.h"
#include "proxy/http/path_normalizer.h"
#include "proxy/http/url.h"
#include "proxy/net/cidr.h"
#include "proxy/tls/client_tls.h"
#include "proxy/tls/server_tls.h"
#include "steering/controller.h"
#include "steering/detector.h"

namespace sluice {

inline constexpr char kDefaultConfigPath[] = "conf/sluice.yaml";
inline constexpr char kDefaultListenAddress[] = "127.0.0.1:8080";

struct ListenerConfig {
  std::string name;
  SocketAddress address;
  bool proxy_protocol = false;  // expect a PROXY v1/v2 header before HTTP
  int backlog = 4096;           // the kernel caps it at net.core.somaxconn
  // HTTP/2: offered by ALPN over TLS; over cleartext, accepted with prior knowledge (h2c).
  bool http2 = true;
  std::optional<ListenerTlsConfig> tls;                 // TLS termination
  std::shared_ptr<const ServerTlsContext> tls_context;  // built from `tls` by the loader
};

// TLS toward a cluster's endpoints.
struct UpstreamTlsConfig {
  ClientTlsFiles files;      // ca_file (empty: the system's bundle), client cert and key
  std::string server_name;   // SNI and the name to verify; empty: the endpoint's host or address
  ClientTlsContext context;  // built by the loader
};

enum class BalancerKind { kRoundRobin, kLeastOutstanding };

struct PoolConfig {
  uint32_t max_idle = 64;  // idle keep-alive connections per endpoint, per worker
  absl::Duration idle_timeout =
      absl::Seconds(60);           // an idle pooled connection is closed after this
  uint32_t max_requests = 1000;    // per upstream connection; 0: unlimited
  uint32_t http2_connections = 2;  // HTTP/2: connections per endpoint, per worker
  // HTTP/2: connections kept open per endpoint and worker even when idle (tunnels: warm, so a
  // first request pays no handshake); they send a PING every `http2_ping_interval` while idle
  // and are replaced when one goes unanswered. 0 and 0: idle connections close as HTTP/1.1's.
  uint32_t http2_warm = 0;
  absl::Duration http2_ping_interval = absl::ZeroDuration();
  // HTTP/2 receive window per stream: starts at `http2_window` and, when `http2_max_window`
  // is larger, grows with the path's bandwidth-delay product (proxy/upstream/window_sizer.h).
  uint32_t http2_window = 256 * 1024;
  uint32_t http2_max_window = 256 * 1024;
};

struct EndpointConfig {
  std::string text;       // as written, for logs
  SocketAddress address;  // when `host` is an IP address
  std::string host;       // a host name to resolve (address unset), or empty
  uint16_t port = 0;
  bool standby = false;  // hot standby: no traffic until the cluster injects its standbys
};

// Passive outlier detection: an endpoint with this many consecutive failures (connect failures,
// resets before the response, 5xx) is ejected for base x (times ejected), capped.
struct OutlierConfig {
  uint32_t consecutive_failures = 5;  // 0: off
  absl::Duration base_ejection = absl::Seconds(30);
  absl::Duration max_ejection = absl::Seconds(300);
  uint32_t max_ejection_percent = 50;  // at most this share of the cluster ejected at once
};

// Active health checks, run on the control thread.
struct HealthCheckConfig {
  std::string path = "/healthz";
  std::string host;  // Host header; empty: the endpoint's address
  absl::Duration interval = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(1);
  uint32_t rise = 2;  // consecutive passes to become healthy
  uint32_t fall = 3;  // consecutive failures to become unhealthy
};

// Circuit breakers, per node (each worker enforces its share). 0: no limit.
struct BreakerConfig {
  uint32_t max_connections = 0;  // upstream connections open to the cluster
  uint32_t max_pending = 0;      // requests waiting for a new connection
  uint32_t max_requests = 0;     // requests in flight
};

// Retry budget, per node: retries in flight may not exceed `ratio` of the requests in flight,
// but `min_retries` are always allowed.
struct RetryBudgetConfig {
  double ratio = 0.2;
  uint32_t min_retries = 3;
};

struct ClusterConfig {
  std::string name;
  BalancerKind balancer = BalancerKind::kLeastOutstanding;
  std::vector<EndpointConfig> endpoints;
  PoolConfig pool;
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration response_timeout = absl::Seconds(30);  // request sent -> first response byte
  std::optional<ConcurrencyConfig> concurrency;         // adaptive limit for `shed` filters
  OutlierConfig outlier;
  std::optional<HealthCheckConfig> health_check;
  BreakerConfig breakers;
  RetryBudgetConfig retry_budget;
  uint32_t panic_threshold_percent = 50;  // fewer available endpoints than this share: use all
  bool inject_standby = false;            // standby endpoints take traffic
  absl::Duration slow_start = absl::ZeroDuration();  // new and injected endpoints ramp up
  absl::Duration dns_refresh = absl::Seconds(30);    // re-resolution of endpoints by name
  std::optional<UpstreamTlsConfig> tls;              // TLS to the endpoints
  bool http2 = false;  // HTTP/2 to the endpoints (h2 by ALPN over TLS, prior knowledge in clear)
};

// The name an endpoint's TLS certificate must carry, also sent as SNI: the cluster's
// server_name, else the endpoint's host name, else its address.
inline std::string UpstreamTlsName(const ClusterConfig& cluster, const EndpointConfig& endpoint,
                                   const SocketAddress& address) {
  if (cluster.tls && !cluster.tls->server_name.empty()) return cluster.tls->server_name;
  return endpoint.host.empty() ? address.IpString() : endpoint.host;
}

struct RouteConfig {
  std::string name;               // for metrics and logs; default: host (unless "*") + prefix
  std::string host = "*";         // "*", "example.com" or "*.example.com"; port ignored
  std::string path_prefix = "/";  // matched on whole segments against the normalized path
  std::string cluster;
  size_t cluster_index = 0;         // resolved by validation
  std::vector<FilterSpec> filters;  // in order
};

struct LimitsConfig {
  uint32_t max_head_bytes = 64 * 1024;
  uint32_t max_headers = 100;
  uint32_t max_target_bytes = 8 * 1024;
  uint64_t max_request_body_bytes = 0;       // 0: unlimited
  uint32_t max_requests_per_connection = 0;  // downstream keep-alive; 0: unlimited
  // Downstream connections per node (each worker allows its share). Unset: derived from the
  // file-descriptor limit (MaxConnectionsFor); 0: no cap.
  std::optional<uint32_t> max_connections;
  // Connections from one client address (an IPv6 client's /64), after a PROXY header names
  // it; per node, each worker allowing its share. 0: no cap.
  uint32_t max_connections_per_client = 0;
  // Bytes every upstream HTTP/2 connection of the node together (tunnels included) may let
  // their peers send ahead beyond each connection's first 4 MiB window, as windows grow with
  // the path (pool.http2_max_window): the memory the node may hold for them is bounded by this
  // plus each connection's first window (4 MiB, or twice pool.http2_window if larger).
  uint64_t upstream_window_memory = 256u << 20;
  // Per worker loop iteration: at most this long on server TLS handshakes, the others wait for
  // the next iterations (LoopContext::SetHandshakeBudget). A reconnect storm then delays new
  // handshakes, not the established connections. 0: no budget.
  absl::Duration tls_handshake_budget = absl::Microseconds(500);
  // For this long after its handshake a TLS connection's reads (its first requests, its end)
  // are paid from the same budget (LoopContext::SetYoungConnectionAge): a storm's short
  // connections wait behind the established ones. 0 (the default): only the accepts and the
  // handshakes.
  absl::Duration tls_young_connection_age = absl::ZeroDuration();
};

// The node's downstream connection cap: limits.max_connections if set, else half of what the
// file-descriptor limit leaves after 1,024 kept for everything else (each client connection
// may need one to an origin), at least 64. 0: none.
uint32_t MaxConnectionsFor(const LimitsConfig& limits, uint64_t file_limit);

struct TimeoutsConfig {
  absl::Duration head_read = absl::Seconds(10);        // first byte of a head -> end of it
  absl::Duration downstream_idle = absl::Seconds(60);  // keep-alive wait for the next request
  absl::Duration body_idle = absl::Seconds(30);        // no body byte in either direction
  absl::Duration tunnel_idle = absl::Hours(1);         // upgraded connections (WebSocket)
  absl::Duration drain = absl::Seconds(30);            // SIGTERM: in-flight requests get this long
};

enum class ForwardedForMode { kOverwrite, kAppend };

struct ProxyOptions {
  std::string via = "sluice";  // Via pseudonym; empty: no Via
  std::string request_id_header = "x-request-id";
  ForwardedForMode forwarded_for = ForwardedForMode::kOverwrite;
  CidrSet trusted_proxies;  // their X-Forwarded-* are kept and appended to
  // What a request's own headers and cookies say about its member, home region, cohort and
  // priority (steering sources, shed rules by header) counts only from a trusted proxy or a
  // verified tunnel, unless this is true: then any client may choose them.
  bool trust_client_headers = false;
  PathNormalizerOptions path;
};

// What counts as a stream start (the business signal of a region's health): a request whose
// route, method and path prefix match (empty: any) and whose status is in [status_min,
// status_max].
struct StreamStartRule {
  std::string route;
  std::string method;
  std::string path_prefix;
  int status_min = 200;
  int status_max = 299;
};

inline constexpr char kDefaultAdminAddress[] = "127.0.0.1:9901";

// A bearer token of the admin API: its name (the actor in the audit log), its role, and the
// SHA-256 of the token (the token itself is not kept).
struct AdminToken {
  std::string name;
  bool admin = false;  // false: read (GET only)
  Sha256Digest sha256{};
};

struct AdminConfig {
  bool enabled = true;
  SocketAddress address;  // default kDefaultAdminAddress
  std::vector<AdminToken> tokens;
  // /metrics answers a Host that is an IP address, localhost, or one of these (lower case):
  // a web page elsewhere cannot read it through DNS rebinding.
  std::vector<std::string> hosts;
  CidrSet metrics_from;  // if set, /metrics answers only clients in these ranges
  // HTTPS on the admin listener (admin.tls: the keys of a listener's tls, without client
  // certificates); the context is built by the loader and rebuilt when a file changes.
  std::optional<ListenerTlsConfig> tls;
  std::shared_ptr<const ServerTlsContext> tls_context;
};

// The name of the admin listener's session ticket keys (never shared with a traffic listener's).
inline constexpr char kAdminTlsName[] = "(admin)";

// A program or webhook of the operator's that adds capacity to the savior regions before an
// evacuation ramps traffic onto them (controller.hooks.scale; run by
// proxy/control/scale_hook.h). Exactly one of `exec` and `url`.
struct ScaleHookConfig {
  std::vector<std::string> exec;  // argv, run without a shell; empty: the webhook
  HttpUrl url;                    // POSTed to when `exec` is empty
  std::vector<std::pair<std::string, std::string>> headers;  // sent with the POST, in order
  UpstreamTlsConfig tls;                       // https: its context is built by the loader
  absl::Duration timeout = absl::Seconds(60);  // the hook itself
  // Then how long a plan waits for the saviors to report enough capacity.
  absl::Duration capacity_timeout = absl::Minutes(5);
};

struct HooksConfig {
  std::optional<ScaleHookConfig> scale;  // unset: no hook
};

// The steering controller (steering/controller.h) as this node runs it.
struct ControllerConfig {
  std::string state_file;  // empty: changes live until the process exits
  std::string audit_log;   // empty: audit records go to the log only
  GateLimits gates;
  absl::Duration gate_window = absl::Seconds(30);     // the traffic the gates look at
  absl::Duration health_interval = absl::Seconds(2);  // each peer region's /v1/health
  HooksConfig hooks;
};

// What this node can serve (`capacity:`), which an evacuation plans savior regions with.
struct CapacityConfig {
  // Requests per second; 0: learned (the adaptive concurrency limit and latency).
  double requests_per_second = 0;
  // The share of that capacity a plan may fill (0.1..1).
  double headroom = 1.0;
};

// The fleet (proxy/fleet/fleet.h): one steering table for every node, kept in etcd.
struct FleetConfig {
  bool enabled = false;                     // off: the node's own controller is the authority
  std::vector<std::string> etcd_endpoints;  // "http://127.0.0.1:2379"; tried in turn
  std::string etcd_username;                // empty: etcd without authentication
  std::string etcd_password;                // read from etcd.password_file
  absl::Duration etcd_timeout = absl::Seconds(2);  // per call and endpoint
  ClientTlsFiles etcd_tls;                         // for https:// endpoints
  // etcd.api: keep-alives and watches over etcd's gRPC API (grpc) or its JSON gateway (json).
  bool etcd_grpc = true;
  std::string prefix = "/sluice/";                     // every key the fleet uses starts with it
  std::string node;                                    // this node's name; unique in the fleet
  absl::Duration lease_ttl = absl::Seconds(5);         // a dead node's view and leadership expire
  absl::Duration publish_interval = absl::Seconds(1);  // this node's view, and keep-alives
  // Nodes the leader names to follow the views beside it and take over first (0..8): each
  // costs etcd a watch of every view; without one a new leader reads them all after it wins.
  uint32_t standbys = 1;
  // Session ticket keys shared through etcd (proxy/control/ticket_key_control.h), for every
  // TLS listener without ticket_key_files.
  struct TicketKeys {
    bool enabled = false;
    TicketSealKey seal{};  // from seal_key_file; seals the keys in etcd
    std::string seal_key_file;
    absl::Duration rotation = absl::Hours(1);
    bool fleet_wide = false;  // share: fleet (else region): clients resume on a savior too
  } ticket_keys;
};

// The sick-region detector (steering/detector.h) as this node runs it.
struct DetectionConfig {
  // The mode at start; a mode set through the API (kept with the steering state) wins.
  DetectionMode mode = DetectionMode::kOff;
  // The history (SQLite). Default: beside controller.state_file ("<state_file>.history.db");
  // empty without a state file: the history lives in memory only.
  std::string history_file;
  DetectorOptions options;
  // The detector's evacuation: to these saviors (empty: the region's own), through these
  // steps, holding each this long; gated like any plan.
  std::map<std::string, uint32_t> saviors;
  std::vector<uint32_t> steps_bp = {1000, 2500, 5000, 10000};
  absl::Duration hold = absl::Seconds(5);
  // A region with no live node (its fleet leases expired) whose tunnel endpoints do not answer
  // the leader this long is a dead edge (steering/edge_watch.h): evacuated at once, DNS first.
  absl::Duration edge_dead_after = absl::Seconds(2);
  // Where the baselines come from: this node's history, or a Prometheus server that scrapes
  // the fleet (proxy/control/prometheus_baseline.h).
  bool prometheus = false;
  HttpOrigin prometheus_url;
  absl::Duration prometheus_rate = absl::Minutes(1);  // the rate() window of its queries
  absl::Duration prometheus_timeout = absl::Seconds(5);
};

// The DNS step (DESIGN.md, step 4; proxy/control/dns_control.h): the zone whose shared names
// an evacuation takes the region's records out of, with RFC 2136 updates signed by a TSIG key.
struct DnsConfig {
  bool enabled = false;
  std::string zone;                    // canonical: "example.com."
  std::vector<SocketAddress> servers;  // the authoritative server(s), tried in order
  TsigKey key;                         // from key_file
  std::string key_file;
  uint32_t ttl = 60;                          // seconds: what records put back get
  absl::Duration timeout = absl::Seconds(3);  // per exchange
  // Evacuation plans (and the detector's) end with the DNS step unless a plan says otherwise.
  bool in_plans = true;
  std::vector<DnsRegionRecords> regions;  // each region's records, canonical
};

// One JSON line per request (proxy/observe/access_log.h).
struct AccessLogConfig {
  bool enabled = false;
  std::string path;     // "stdout" or a file
  double sample = 1.0;  // share of non-5xx exchanges logged; 5xx and status-less ones always
};

struct Config {
  std::string source;  // the file it came from, or "command line"
  int workers = 1;     // resolved: never 0 after loading
  LogLevel log_level = LogLevel::kInfo;
  std::string user;  // drop to this user after binding; empty: stay
  std::vector<ListenerConfig> listeners;
  std::vector<ClusterConfig> clusters;
  std::vector<RouteConfig> routes;
  LimitsConfig limits;
  TimeoutsConfig timeouts;
  Http2Settings http2;
  ProxyOptions proxy;
  SteeringConfig steering;
  std::vector<StreamStartRule> stream_starts;  // none: nothing is counted as a start
  AdminConfig admin;
  ControllerConfig controller;
  FleetConfig fleet;
  AccessLogConfig access_log;
  DetectionConfig detection;
  CapacityConfig capacity;
  DnsConfig dns;
};

using ConfigPtr = std::shared_ptr<const Config>;

// Number of workers to run when the configuration says 0: the CPUs this process may use.
int DefaultWorkerCount();

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_CONFIG_H_
