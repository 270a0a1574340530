#include "proxy/config/config_loader.h"

#include "common/strings.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "common/yaml_field.h"
#include "proxy/config/admin_config_loader.h"
#include "proxy/config/detection_config_loader.h"
#include "proxy/config/dns_config_loader.h"
#include "proxy/config/filter_config_loader.h"
#include "proxy/config/steering_config_loader.h"
#include "proxy/config/tls_config_loader.h"
#include "yaml-cpp/yaml.h"

namespace sluice {
namespace {

// The directory of the configuration file, for files it names relative to itself.
std::string BaseDir(const std::string& source) {
  size_t slash = source.rfind('/');
  return slash == std::string::npos ? "." : source.substr(0, slash);
}

absl::Status ParseListener(const Field& f, const std::string& base_dir, ListenerConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap({"name", "address", "proxy_protocol", "backlog", "http2", "tls"}));
  RETURN_IF_ERROR(f.Child("name").Read(&out->name));
  Field address = f.Child("address");
  if (!address.present()) return address.Error("required (for example 0.0.0.0:8080)");
  RETURN_IF_ERROR(address.ReadAddress(&out->address));
  if (out->name.empty()) out->name = out->address.ToString();
  RETURN_IF_ERROR(f.Child("proxy_protocol").Read(&out->proxy_protocol));
  RETURN_IF_ERROR(f.Child("backlog").ReadInt(&out->backlog, 1, 65535));
  RETURN_IF_ERROR(f.Child("http2").Read(&out->http2));
  if (Field tls = f.Child("tls"); tls.present()) {
    RETURN_IF_ERROR(ParseListenerTls(tls, base_dir, out));
  }
  return absl::OkStatus();
}

bool IsValidHostPattern(std::string_view host) {
  if (host == "*") return true;
  std::string_view name = host;
  if (name.starts_with("*.")) name.remove_prefix(2);
  if (name.empty()) return false;
  for (char c : name) {
    if (!IsAsciiAlnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') {
      return false;
    }
  }
  return true;
}

absl::Status ParseResilience(const Field& f, ClusterConfig* out) {
  const absl::Duration ms = absl::Milliseconds(1);
  if (Field o = f.Child("outlier_detection"); o.present()) {
    RETURN_IF_ERROR(o.ExpectMap(
        {"consecutive_failures", "base_ejection", "max_ejection", "max_ejection_percent"}));
    OutlierConfig& c = out->outlier;
    RETURN_IF_ERROR(o.Child("consecutive_failures").ReadInt(&c.consecutive_failures, 0, 1000));
    RETURN_IF_ERROR(o.Child("base_ejection").ReadDuration(&c.base_ejection, ms));
    RETURN_IF_ERROR(o.Child("max_ejection").ReadDuration(&c.max_ejection, ms));
    RETURN_IF_ERROR(o.Child("max_ejection_percent").ReadInt(&c.max_ejection_percent, 0, 100));
    if (c.max_ejection < c.base_ejection) {
      return o.Child("max_ejection").Error("must not be below base_ejection");
    }
  }
  if (Field h = f.Child("health_check"); h.present()) {
    RETURN_IF_ERROR(h.ExpectMap({"path", "host", "interval", "timeout", "rise", "fall"}));
    HealthCheckConfig& c = out->health_check.emplace();
    RETURN_IF_ERROR(h.Child("path").Read(&c.path));
    if (c.path.empty() || c.path.front() != '/') return h.Child("path").Error("must start with /");
    for (char ch : c.path) {
      if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) {
        return h.Child("path").Error("must not contain spaces or control characters");
      }
    }
    RETURN_IF_ERROR(h.Child("host").Read(&c.host));
    if (!c.host.empty() && !IsValidHostPattern(c.host))
      return h.Child("host").Error("not a host name");
    RETURN_IF_ERROR(h.Child("interval").ReadDuration(&c.interval, ms * 10));
    RETURN_IF_ERROR(h.Child("timeout").ReadDuration(&c.timeout, ms));
    RETURN_IF_ERROR(h.Child("rise").ReadInt(&c.rise, 1, 100));
    RETURN_IF_ERROR(h.Child("fall").ReadInt(&c.fall, 1, 100));
    if (c.timeout >= c.interval) return h.Child("timeout").Error("must be shorter than interval");
  }
  if (Field b = f.Child("circuit_breakers"); b.present()) {
    RETURN_IF_ERROR(b.ExpectMap({"max_connections", "max_pending", "max_requests"}));
    RETURN_IF_ERROR(
        b.Child("max_connections").ReadInt(&out->breakers.max_connections, 0, 10000000));
    RETURN_IF_ERROR(b.Child("max_pending").ReadInt(&out->breakers.max_pending, 0, 10000000));
    RETURN_IF_ERROR(b.Child("max_requests").ReadInt(&out->breakers.max_requests, 0, 10000000));
  }
  if (Field r = f.Child("retry_budget"); r.present()) {
    RETURN_IF_ERROR(r.ExpectMap({"ratio", "min_retries"}));
    RETURN_IF_ERROR(r.Child("ratio").ReadDouble(&out->retry_budget.ratio, 0, 10));
    RETURN_IF_ERROR(r.Child("min_retries").ReadInt(&out->retry_budget.min_retries, 0, 100000));
  }
  RETURN_IF_ERROR(f.Child("panic_threshold").ReadInt(&out->panic_threshold_percent, 0, 100));
  RETURN_IF_ERROR(f.Child("inject_standby").Read(&out->inject_standby));
  RETURN_IF_ERROR(f.Child("slow_start").ReadDuration(&out->slow_start, absl::ZeroDuration()));
  RETURN_IF_ERROR(f.Child("dns_refresh").ReadDuration(&out->dns_refresh, absl::Seconds(1)));
  return absl::OkStatus();
}

absl::Status ParseCluster(const Field& f, const std::string& base_dir, ClusterConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap(
      {"name", "endpoints", "balancer", "pool", "connect_timeout", "response_timeout",
       "concurrency", "outlier_detection", "health_check", "circuit_breakers", "retry_budget",
       "panic_threshold", "inject_standby", "slow_start", "dns_refresh", "tls", "http2"}));
  Field name = f.Child("name");
  if (!name.present()) return name.Error("required");
  RETURN_IF_ERROR(name.Read(&out->name));
  if (out->name.empty()) return name.Error("must not be empty");

  Field endpoints = f.Child("endpoints");
  if (!endpoints.present()) return endpoints.Error("required: a list of address:port");
  ASSIGN_OR_RETURN(std::vector<Field> items, endpoints.Sequence());
  if (items.empty()) return endpoints.Error("needs at least one endpoint");
  for (const Field& item : items) {
    EndpointConfig endpoint;
    std::optional<Field> long_form;
    if (absl::StatusOr<std::string> text = item.Scalar(); !text.ok()) {
      // The long form: {address: host:port, standby: true}
      RETURN_IF_ERROR(item.ExpectMap({"address", "standby"}));
      long_form.emplace(item.Child("address"));
      if (!long_form->present()) return long_form->Error("required");
      RETURN_IF_ERROR(item.Child("standby").Read(&endpoint.standby));
    }
    const Field& address = long_form ? *long_form : item;
    ASSIGN_OR_RETURN(std::string text, address.Scalar());
    absl::StatusOr<EndpointConfig> parsed = ParseEndpoint(text);
    if (!parsed.ok()) return address.Error(parsed.status());
    parsed->standby = endpoint.standby;
    for (const EndpointConfig& other : out->endpoints) {
      if (other.text == parsed->text) {
        return address.Error(absl::StrFormat("endpoint %s is listed twice", parsed->text));
      }
    }
    out->endpoints.push_back(std::move(*parsed));
  }

  Field balancer = f.Child("balancer");
  if (balancer.present()) {
    ASSIGN_OR_RETURN(std::string kind, balancer.Scalar());
    if (kind == "round_robin") {
      out->balancer = BalancerKind::kRoundRobin;
    } else if (kind == "least_outstanding") {
      out->balancer = BalancerKind::kLeastOutstanding;
    } else {
      return balancer.Error(
          absl::StrFormat("must be round_robin or least_outstanding, got \"%s\"", kind));
    }
  }

  Field pool = f.Child("pool");
  if (pool.present()) {
    RETURN_IF_ERROR(
        pool.ExpectMap({"max_idle", "idle_timeout", "max_requests", "http2_connections",
                        "http2_warm", "http2_ping_interval", "http2_window", "http2_max_window"}));
    RETURN_IF_ERROR(pool.Child("http2_connections").ReadInt(&out->pool.http2_connections, 1, 64));
    RETURN_IF_ERROR(pool.Child("max_idle").ReadInt(&out->pool.max_idle, 0, 100000));
    RETURN_IF_ERROR(
        pool.Child("idle_timeout").ReadDuration(&out->pool.idle_timeout, absl::Milliseconds(1)));
    RETURN_IF_ERROR(pool.Child("max_requests").ReadInt(&out->pool.max_requests, 0, 1 << 30));
    RETURN_IF_ERROR(ParseHttp2Pool(
        pool, {"http2_warm", "http2_ping_interval", "http2_window", "http2_max_window"},
        &out->pool));
  }
  RETURN_IF_ERROR(
      f.Child("connect_timeout").ReadDuration(&out->connect_timeout, absl::Milliseconds(1)));
  RETURN_IF_ERROR(
      f.Child("response_timeout").ReadDuration(&out->response_timeout, absl::Milliseconds(1)));
  if (Field c = f.Child("concurrency"); c.present()) {
    out->concurrency.emplace();
    RETURN_IF_ERROR(ParseConcurrency(c, &*out->concurrency));
  }
  RETURN_IF_ERROR(ParseResilience(f, out));
  if (Field tls = f.Child("tls"); tls.present()) {
    RETURN_IF_ERROR(ParseUpstreamTls(tls, base_dir, &out->tls.emplace()));
  }
  RETURN_IF_ERROR(f.Child("http2").Read(&out->http2));
  return absl::OkStatus();
}

absl::Status ParseRoute(const Field& f, const std::vector<ClusterConfig>& clusters,
                        const std::string& base_dir, RouteConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap({"name", "host", "path_prefix", "cluster", "filters"}));
  Field host = f.Child("host");
  RETURN_IF_ERROR(host.Read(&out->host));
  out->host = AsciiLower(out->host);
  if (!IsValidHostPattern(out->host)) {
    return host.Error(absl::StrFormat(
        "must be \"*\", a host name or \"*.\" and a domain, got \"%s\"", out->host));
  }
  Field prefix = f.Child("path_prefix");
  RETURN_IF_ERROR(prefix.Read(&out->path_prefix));
  if (out->path_prefix.empty() || out->path_prefix.front() != '/') {
    return prefix.Error(absl::StrFormat("must start with /, got \"%s\"", out->path_prefix));
  }
  Field name = f.Child("name");
  RETURN_IF_ERROR(name.Read(&out->name));
  if (out->name.empty())
    out->name = out->host == "*" ? out->path_prefix : out->host + out->path_prefix;
  Field cluster = f.Child("cluster");
  if (!cluster.present()) return cluster.Error("required");
  RETURN_IF_ERROR(cluster.Read(&out->cluster));
  bool found = false;
  for (size_t i = 0; i < clusters.size() && !found; ++i) {
    if (clusters[i].name == out->cluster) {
      out->cluster_index = i;
      found = true;
    }
  }
  if (!found) return cluster.Error(absl::StrFormat("no cluster named \"%s\"", out->cluster));
  if (Field filters = f.Child("filters"); filters.present()) {
    const ClusterConfig& target = clusters[out->cluster_index];
    FilterParseContext context;
    context.concurrency = target.concurrency ? &*target.concurrency : nullptr;
    context.base_dir = base_dir;
    RETURN_IF_ERROR(ParseFilterChain(filters, context, &out->filters));
  }
  return absl::OkStatus();
}

absl::Status ParseProxyOptions(const Field& f, ProxyOptions* out) {
  RETURN_IF_ERROR(f.ExpectMap({"via", "request_id_header", "forwarded_for", "trusted_proxies",
                               "trust_client_headers", "merge_slashes", "reject_encoded_slash",
                               "reject_encoded_nul"}));
  RETURN_IF_ERROR(f.Child("trust_client_headers").Read(&out->trust_client_headers));
  RETURN_IF_ERROR(f.Child("via").Read(&out->via));
  for (char c : out->via) {
    if ((c <= 0x20 || c >= 0x7f) || c == ',') {
      return f.Child("via").Error("must be a single token (letters, digits, -._)");
    }
  }
  Field request_id = f.Child("request_id_header");
  RETURN_IF_ERROR(request_id.Read(&out->request_id_header));
  for (char c : out->request_id_header) {
    if (!IsAsciiAlnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return request_id.Error("must be a header name (letters, digits, - and _)");
    }
  }
  Field xff = f.Child("forwarded_for");
  if (xff.present()) {
    ASSIGN_OR_RETURN(std::string mode, xff.Scalar());
    if (mode == "overwrite") {
      out->forwarded_for = ForwardedForMode::kOverwrite;
    } else if (mode == "append") {
      out->forwarded_for = ForwardedForMode::kAppend;
    } else {
      return xff.Error(absl::StrFormat("must be overwrite or append, got \"%s\"", mode));
    }
  }
  RETURN_IF_ERROR(ReadCidrSet(f.Child("trusted_proxies"), &out->trusted_proxies));
  RETURN_IF_ERROR(f.Child("merge_slashes").Read(&out->path.merge_slashes));
  RETURN_IF_ERROR(f.Child("reject_encoded_slash").Read(&out->path.reject_encoded_slash));
  RETURN_IF_ERROR(f.Child("reject_encoded_nul").Read(&out->path.reject_encoded_nul));
  return absl::OkStatus();
}

}  // namespace

uint32_t MaxConnectionsFor(const LimitsConfig& limits, uint64_t file_limit) {
  if (limits.max_connections) return *limits.max_connections;
  constexpr uint64_t kReserved = 1024;
  uint64_t cap = file_limit > kReserved ? (file_limit - kReserved) / 2 : 0;
  return static_cast<uint32_t>(std::clamp<uint64_t>(cap, 64, 100000000));
}

namespace {

absl::Status ParseLimits(const Field& f, LimitsConfig* out) {
  RETURN_IF_ERROR(
      f.ExpectMap({"max_head_bytes", "max_headers", "max_target_bytes", "max_request_body_bytes",
                   "max_requests_per_connection", "max_connections", "max_connections_per_client",
                   "upstream_window_memory", "tls_handshake_budget", "tls_young_connection_age"}));
  RETURN_IF_ERROR(f.Child("max_head_bytes").ReadSize(&out->max_head_bytes, 1024, 1 << 20));
  RETURN_IF_ERROR(f.Child("max_headers").ReadInt(&out->max_headers, 1, 10000));
  RETURN_IF_ERROR(f.Child("max_target_bytes").ReadSize(&out->max_target_bytes, 64, 1 << 20));
  RETURN_IF_ERROR(f.Child("max_request_body_bytes")
                      .ReadSize(&out->max_request_body_bytes, 0, uint64_t{1} << 50));
  RETURN_IF_ERROR(f.Child("max_requests_per_connection")
                      .ReadInt(&out->max_requests_per_connection, 0, 1 << 30));
  if (f.Child("max_connections").present()) {
    uint32_t cap = 0;
    RETURN_IF_ERROR(f.Child("max_connections").ReadInt(&cap, 0, 100000000));
    out->max_connections = cap;
  }
  RETURN_IF_ERROR(f.Child("max_connections_per_client")
                      .ReadInt(&out->max_connections_per_client, 0, 100000000));
  RETURN_IF_ERROR(f.Child("upstream_window_memory")
                      .ReadSize(&out->upstream_window_memory, 0, uint64_t{1} << 40));
  Field budget = f.Child("tls_handshake_budget");
  RETURN_IF_ERROR(budget.ReadDuration(&out->tls_handshake_budget, absl::ZeroDuration()));
  if (out->tls_handshake_budget > absl::Seconds(1)) return budget.Error("must be at most 1s");
  Field young = f.Child("tls_young_connection_age");
  RETURN_IF_ERROR(young.ReadDuration(&out->tls_young_connection_age, absl::ZeroDuration()));
  if (out->tls_young_connection_age > absl::Minutes(10)) {
    return young.Error("must be at most 10m");
  }
  if (out->max_target_bytes > out->max_head_bytes) {
    return f.Child("max_target_bytes").Error("must not exceed max_head_bytes");
  }
  return absl::OkStatus();
}

absl::Status ParseTimeouts(const Field& f, TimeoutsConfig* out) {
  RETURN_IF_ERROR(
      f.ExpectMap({"head_read", "downstream_idle", "body_idle", "tunnel_idle", "drain"}));
  const absl::Duration ms = absl::Milliseconds(1);
  RETURN_IF_ERROR(f.Child("head_read").ReadDuration(&out->head_read, ms));
  RETURN_IF_ERROR(f.Child("downstream_idle").ReadDuration(&out->downstream_idle, ms));
  RETURN_IF_ERROR(f.Child("body_idle").ReadDuration(&out->body_idle, ms));
  RETURN_IF_ERROR(f.Child("tunnel_idle").ReadDuration(&out->tunnel_idle, ms));
  RETURN_IF_ERROR(f.Child("drain").ReadDuration(&out->drain, absl::ZeroDuration()));
  return absl::OkStatus();
}

// The most requests per second one node may say it serves: far above what one machine does; a
// larger figure is a typo.
constexpr double kMaxNodeRequestsPerSecond = 1e9;

absl::Status ParseCapacity(const Field& f, CapacityConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap({"requests_per_second", "headroom"}));
  if (Field rps = f.Child("requests_per_second"); rps.present()) {
    absl::StatusOr<std::string> text = rps.Scalar();
    double value = -1;
    if (!text.ok() || !ParseDouble(*text, &value) || value < 0) {
      return rps.Error(absl::StrFormat("must be a number >= 0, got %s",
                                       text.ok() ? *text : std::string("a list or mapping")));
    }
    if (value > kMaxNodeRequestsPerSecond) {
      return rps.Error(
          absl::StrFormat("must be at most %g, got %s", kMaxNodeRequestsPerSecond, *text));
    }
    out->requests_per_second = value;
  }
  RETURN_IF_ERROR(f.Child("headroom").ReadDouble(&out->headroom, 0.1, 1));
  return absl::OkStatus();
}

absl::Status ParseTopLevel(const Field& root, Config* config) {
  RETURN_IF_ERROR(
      root.ExpectMap({"workers", "log_level", "user", "listeners", "clusters", "routes", "limits",
                      "timeouts", "proxy", "steering", "admin", "controller", "metrics",
                      "access_log", "fleet", "http2", "detection", "capacity", "dns"}));
  config->workers = 0;
  RETURN_IF_ERROR(root.Child("workers").ReadInt(&config->workers, 0, 256));
  Field log_level = root.Child("log_level");
  if (log_level.present()) {
    ASSIGN_OR_RETURN(std::string text, log_level.Scalar());
    absl::StatusOr<LogLevel> level = ParseLogLevel(text);
    if (!level.ok()) return log_level.Error(level.status());
    config->log_level = *level;
  }
  RETURN_IF_ERROR(root.Child("user").Read(&config->user));

  Field listeners = root.Child("listeners");
  if (!listeners.present()) return listeners.Error("required: at least one listener");
  ASSIGN_OR_RETURN(std::vector<Field> listener_items, listeners.Sequence());
  if (listener_items.empty()) return listeners.Error("needs at least one listener");
  for (const Field& item : listener_items) {
    ListenerConfig listener;
    RETURN_IF_ERROR(ParseListener(item, BaseDir(config->source), &listener));
    for (const ListenerConfig& other : config->listeners) {
      if (other.address == listener.address) {
        return item.Error(absl::StrFormat("address %s is used by listener \"%s\" too",
                                          listener.address.ToString(), other.name));
      }
      if (other.name == listener.name) {
        return item.Error(absl::StrFormat("listener name \"%s\" is used twice", listener.name));
      }
    }
    config->listeners.push_back(std::move(listener));
  }

  Field clusters = root.Child("clusters");
  if (!clusters.present()) return clusters.Error("required: at least one cluster");
  ASSIGN_OR_RETURN(std::vector<Field> cluster_items, clusters.Sequence());
  if (cluster_items.empty()) return clusters.Error("needs at least one cluster");
  for (const Field& item : cluster_items) {
    ClusterConfig cluster;
    RETURN_IF_ERROR(ParseCluster(item, BaseDir(config->source), &cluster));
    for (const ClusterConfig& other : config->clusters) {
      if (other.name == cluster.name) {
        return item.Error(absl::StrFormat("cluster name \"%s\" is used twice", cluster.name));
      }
    }
    config->clusters.push_back(std::move(cluster));
  }

  if (Field f = root.Child("steering"); f.present()) {
    RETURN_IF_ERROR(ParseSteering(f, BaseDir(config->source), config));
  }

  Field routes = root.Child("routes");
  if (!routes.present()) return routes.Error("required: at least one route");
  ASSIGN_OR_RETURN(std::vector<Field> route_items, routes.Sequence());
  if (route_items.empty()) return routes.Error("needs at least one route");
  for (const Field& item : route_items) {
    RouteConfig route;
    RETURN_IF_ERROR(ParseRoute(item, config->clusters, BaseDir(config->source), &route));
    config->routes.push_back(std::move(route));
  }

  if (Field f = root.Child("limits"); f.present()) RETURN_IF_ERROR(ParseLimits(f, &config->limits));
  if (Field f = root.Child("http2"); f.present()) RETURN_IF_ERROR(ParseHttp2(f, &config->http2));
  if (Field f = root.Child("timeouts"); f.present()) {
    RETURN_IF_ERROR(ParseTimeouts(f, &config->timeouts));
  }
  if (Field f = root.Child("proxy"); f.present())
    RETURN_IF_ERROR(ParseProxyOptions(f, &config->proxy));
  config->admin = DefaultAdminConfig();
  if (Field f = root.Child("admin"); f.present()) {
    RETURN_IF_ERROR(ParseAdmin(f, BaseDir(config->source), &config->admin));
  }
  if (Field f = root.Child("controller"); f.present()) {
    RETURN_IF_ERROR(ParseController(f, BaseDir(config->source), &config->controller));
  }
  if (Field f = root.Child("access_log"); f.present()) {
    RETURN_IF_ERROR(ParseAccessLog(f, BaseDir(config->source), &config->access_log));
  }
  if (Field f = root.Child("metrics"); f.present()) {
    RETURN_IF_ERROR(ParseMetrics(f, *config, &config->stream_starts));
  }
  if (Field f = root.Child("fleet"); f.present()) {
    RETURN_IF_ERROR(ParseFleet(f, BaseDir(config->source), *config, &config->fleet));
  }
  RETURN_IF_ERROR(ParseDetection(root.Child("detection"), BaseDir(config->source), *config,
                                 &config->detection));
  if (Field f = root.Child("capacity"); f.present()) {
    RETURN_IF_ERROR(ParseCapacity(f, &config->capacity));
  }
  if (Field f = root.Child("dns"); f.present()) {
    RETURN_IF_ERROR(ParseDns(f, BaseDir(config->source), *config, &config->dns));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EndpointConfig> ParseEndpoint(std::string_view text) {
  EndpointConfig endpoint;
  endpoint.text = std::string(text);
  if (absl::StatusOr<SocketAddress> address = SocketAddress::Parse(text); address.ok()) {
    endpoint.address = *address;
    endpoint.port = address->port();
    return endpoint;
  }
  // host:port with a host name, resolved by the control thread.
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("expected host:port or address:port, got \"%s\"", text));
  }
  std::string_view host = text.substr(0, colon);
  uint32_t port = 0;
  if (!ParseInteger(text.substr(colon + 1), &port) || port == 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrFormat("invalid port in \"%s\"", text));
  }
  for (char c : host) {
    if (!IsAsciiAlnum(c) && c != '-' && c != '.' && c != '_') {
      return absl::InvalidArgumentError(
          absl::StrFormat("\"%s\" is neither an IP address nor a host name", host));
    }
  }
  endpoint.host = std::string(host);
  endpoint.port = static_cast<uint16_t>(port);
  return endpoint;
}

int DefaultWorkerCount() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

absl::Status ValidateConfig(Config& config) {
  auto error = [&](std::string_view key, std::string_view message) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: %s: %s", config.source, key, message));
  };
  if (config.workers < 0 || config.workers > 256) return error("workers", "must be 0..256");
  if (config.workers == 0) config.workers = DefaultWorkerCount();
  if (config.listeners.empty()) return error("listeners", "needs at least one listener");
  if (config.clusters.empty()) return error("clusters", "needs at least one cluster");
  if (config.routes.empty()) return error("routes", "needs at least one route");
  for (size_t i = 0; i < config.routes.size(); ++i) {
    RouteConfig& route = config.routes[i];
    bool found = false;
    for (size_t c = 0; c < config.clusters.size(); ++c) {
      if (config.clusters[c].name == route.cluster) {
        route.cluster_index = c;
        found = true;
      }
    }
    if (!found) {
      return error(absl::StrFormat("routes[%d].cluster", i),
                   absl::StrFormat("no cluster named \"%s\"", route.cluster));
    }
  }
  for (size_t c = 0; c < config.clusters.size(); ++c) {
    if (config.clusters[c].endpoints.empty()) {
      return error(absl::StrFormat("clusters[%d].endpoints", c), "needs at least one endpoint");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ConfigPtr> ParseConfig(std::string_view yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::ParserException& e) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s:%d: YAML syntax error: %s", source, e.mark.line + 1, e.msg));
  }
  auto config = std::make_shared<Config>();
  config->source = source;
  try {
    RETURN_IF_ERROR(ParseTopLevel(Field(root, "", &config->source, 1), config.get()));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrFormat("%s:%d: %s", source, e.mark.line + 1, e.msg));
  }
  RETURN_IF_ERROR(ValidateConfig(*config));
  return ConfigPtr(std::move(config));
}

absl::StatusOr<ConfigPtr> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrFormat("%s: cannot open the configuration file: %s", path, std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

absl::Status ParseHttp2Pool(const Field& f, const Http2PoolKeys& keys, PoolConfig* pool) {
  RETURN_IF_ERROR(f.Child(keys.warm).ReadInt(&pool->http2_warm, 0, 64));
  RETURN_IF_ERROR(
      f.Child(keys.ping_interval).ReadDuration(&pool->http2_ping_interval, absl::ZeroDuration()));
  if (pool->http2_ping_interval != absl::ZeroDuration() &&
      pool->http2_ping_interval < absl::Milliseconds(100)) {
    return f.Child(keys.ping_interval).Error("must be 0 (no PINGs) or at least 100ms");
  }
  // HTTP/2's smallest and largest windows (RFC 9113 section 6.9.2).
  constexpr uint64_t kLargest = (uint64_t{1} << 31) - 1;
  RETURN_IF_ERROR(f.Child(keys.window).ReadSize(&pool->http2_window, 65535, kLargest));
  const bool max_given = f.Child(keys.max_window).present();
  RETURN_IF_ERROR(f.Child(keys.max_window).ReadSize(&pool->http2_max_window, 65535, kLargest));
  if (!max_given) {
    pool->http2_max_window = std::max(pool->http2_max_window, pool->http2_window);
  } else if (pool->http2_max_window < pool->http2_window) {
    return f.Child(keys.max_window)
        .Error(absl::StrFormat("must be at least %s (%d bytes)", keys.window, pool->http2_window));
  }
  if (pool->http2_warm > pool->http2_connections) {
    return f.Child(keys.warm).Error(absl::StrFormat(
        "must not exceed the connections per endpoint (%d)", pool->http2_connections));
  }
  return absl::OkStatus();
}

}  // namespace sluice
