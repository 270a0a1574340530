#include "proxy/config/admin_config_loader.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "common/http_headers.h"
#include "common/log.h"
#include "common/secret_file.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "proxy/config/tls_config_loader.h"
#include "proxy/http/url.h"
#include "steering/fleet_view.h"
#include "steering/steering_table.h"

namespace sluice {
namespace {

// Tokens shorter than this are refused: a bearer token is the only thing between the network
// and the steering table.
constexpr size_t kMinTokenBytes = 16;

absl::Status ParseToken(const Field& item, const std::string& base_dir, AdminToken* out) {
  RETURN_IF_ERROR(item.ExpectMap({"name", "role", "token_file", "token_env", "sha256"}));
  Field name = item.Child("name");
  if (!name.present()) return name.Error("required (it is the actor in the audit log)");
  RETURN_IF_ERROR(name.Read(&out->name));
  for (char c : out->name) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '"' || c == '\\') {
      return name.Error("letters, digits and punctuation only (no spaces or quotes)");
    }
  }
  if (out->name.empty() || out->name.size() > 64) return name.Error("must be 1..64 characters");
  Field role = item.Child("role");
  std::string role_text = "read";
  RETURN_IF_ERROR(role.Read(&role_text));
  if (role_text != "read" && role_text != "admin") {
    return role.Error(absl::StrFormat("must be read or admin, got \"%s\"", role_text));
  }
  out->admin = role_text == "admin";

  Field file = item.Child("token_file"), env = item.Child("token_env"), hash = item.Child("sha256");
  int sources = file.present() + env.present() + hash.present();
  if (sources != 1) return item.Error("needs exactly one of token_file, token_env, sha256");
  std::string token;
  if (file.present()) {
    ASSIGN_OR_RETURN(Field::Secret secret, file.ReadSecretFile(base_dir));
    token = std::move(secret.value);
    if (token.size() < kMinTokenBytes) {
      return file.Error(absl::StrFormat(
          "%s holds %d bytes; a token needs at least %d (openssl rand -hex 32 > FILE)", secret.path,
          token.size(), kMinTokenBytes));
    }
  } else if (env.present()) {
    ASSIGN_OR_RETURN(std::string variable, env.Scalar());
    const char* value = std::getenv(variable.c_str());
    if (!value) return env.Error(absl::StrFormat("the environment has no %s", variable));
    token = std::string(StripWhitespace(value));
    if (token.size() < kMinTokenBytes) {
      return env.Error(absl::StrFormat("%s holds %d bytes; a token needs at least %d", variable,
                                       token.size(), kMinTokenBytes));
    }
  } else {
    return hash.ReadSha256Hex("token", &out->sha256);
  }
  if (LooksGuessable(token)) {
    LOG_WARN(
        "admin token \"%s\" has fewer than 8 distinct characters: make it with "
        "openssl rand -hex 32",
        out->name);
  }
  out->sha256 = Sha256(token);
  return absl::OkStatus();
}

absl::Status ReadRate(const Field& f, double* out) {
  if (!f.present()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string text, f.Scalar());
  uint32_t bp = 0;
  if (!ParseBasisPoints(text, &bp)) {
    return f.Error(absl::StrFormat("must be a percentage such as 5%% or 0.5%%, got \"%s\"", text));
  }
  *out = static_cast<double>(bp) / kBasisPoints;
  return absl::OkStatus();
}

bool IsLoopbackOrigin(const HttpOrigin& origin) {
  if (origin.named) return false;
  const std::string ip = origin.address.IpString();
  return ip.rfind("127.", 0) == 0 || ip == "::1";
}

// controller.hooks.scale.headers: what the webhook is sent besides the call; the framing and
// hop-by-hop fields are sluice's to write.
absl::Status ReadHookHeaders(const Field& f, ScaleHookConfig* out) {
  ASSIGN_OR_RETURN(auto entries, f.Entries());
  for (auto& [name, value_field] : entries) {
    if (!IsHttpToken(name)) {
      return value_field.Error(absl::StrFormat("\"%s\" is not a header name", name));
    }
    HeaderKind kind = ClassifyHeaderName(name);
    if (IsHopByHop(kind) || kind == HeaderKind::kHost || kind == HeaderKind::kContentLength ||
        EqualsIgnoreCase(name, "content-type")) {
      return value_field.Error(absl::StrFormat("sluice writes \"%s\" itself", name));
    }
    ASSIGN_OR_RETURN(std::string value, value_field.Scalar());
    for (char c : value) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return value_field.Error("header values cannot contain control characters");
      }
    }
    out->headers.emplace_back(name, std::move(value));
  }
  return absl::OkStatus();
}

absl::Status ParseScaleHook(const Field& f, const std::string& base_dir, ScaleHookConfig* out) {
  RETURN_IF_ERROR(
      f.ExpectMap({"exec", "url", "headers", "token_file", "tls", "timeout", "capacity_timeout"}));
  Field exec = f.Child("exec"), url = f.Child("url");
  if (exec.present() == url.present()) {
    return f.Error("needs exactly one of exec (a program and its arguments) and url (a webhook)");
  }
  if (exec.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, exec.Sequence());
    if (items.empty()) return exec.Error("needs the program to run, then its arguments");
    for (const Field& item : items) {
      ASSIGN_OR_RETURN(std::string arg, item.Scalar());
      out->exec.push_back(std::move(arg));
    }
    // Run as given, never looked up in PATH: a relative program is beside the configuration.
    std::string& program = out->exec[0];
    if (program.empty()) return items[0].Error("must name a program");
    program = ResolveConfigPath(program, base_dir);
    if (::access(program.c_str(), X_OK) != 0) {
      return items[0].Error(
          absl::StrFormat("%s is not an executable file: %s", program, std::strerror(errno)));
    }
    for (const char* key : {"headers", "token_file", "tls"}) {
      if (f.Child(key).present()) return f.Child(key).Error("is for a url hook only");
    }
  } else {
    ASSIGN_OR_RETURN(std::string text, url.Scalar());
    absl::StatusOr<HttpUrl> parsed = ParseHttpUrl(text);
    if (!parsed.ok()) return url.Error(parsed.status());
    out->url = *std::move(parsed);
    if (Field headers = f.Child("headers"); headers.present()) {
      RETURN_IF_ERROR(ReadHookHeaders(headers, out));
    }
    if (Field token = f.Child("token_file"); token.present()) {
      for (const auto& [name, value] : out->headers) {
        if (ClassifyHeaderName(name) == HeaderKind::kAuthorization) {
          return token.Error("the token is sent as Authorization: Bearer; headers has one too");
        }
      }
      if (!out->url.origin.tls && !IsLoopbackOrigin(out->url.origin)) {
        return token.Error(absl::StrFormat(
            "the token would cross to %s in clear: a webhook with a token needs https:// (or a "
            "loopback address)",
            out->url.origin.url));
      }
      ASSIGN_OR_RETURN(Field::Secret secret, token.ReadSecretFile(base_dir));
      if (secret.value.empty()) return token.Error(secret.path + " is empty");
      for (char c : secret.value) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
          return token.Error(secret.path + " holds spaces or control characters");
        }
      }
      out->headers.emplace_back("Authorization", "Bearer " + secret.value);
    }
    Field tls = f.Child("tls");
    if (tls.present() && !out->url.origin.tls) return tls.Error("is for https:// URLs");
    if (tls.present()) {
      RETURN_IF_ERROR(ParseUpstreamTls(tls, base_dir, &out->tls));
    } else if (out->url.origin.tls) {
      // The system's CA bundle.
      absl::StatusOr<ClientTlsContext> context = MakeClientTlsContext(out->tls.files);
      if (!context.ok()) return url.Error(context.status());
      out->tls.context = *std::move(context);
    }
  }
  Field timeout = f.Child("timeout");
  RETURN_IF_ERROR(timeout.ReadDuration(&out->timeout, absl::Seconds(1)));
  if (out->timeout > absl::Hours(1)) return timeout.Error("must be at most 1h");
  Field capacity_timeout = f.Child("capacity_timeout");
  RETURN_IF_ERROR(capacity_timeout.ReadDuration(&out->capacity_timeout, absl::Seconds(1)));
  if (out->capacity_timeout > absl::Hours(1)) return capacity_timeout.Error("must be at most 1h");
  return absl::OkStatus();
}

}  // namespace

AdminConfig DefaultAdminConfig() {
  AdminConfig admin;
  admin.address = *SocketAddress::Parse(kDefaultAdminAddress);
  return admin;
}

absl::Status ApplyAdminFlag(const std::string& value, AdminConfig* out) {
  if (value == "off") {
    out->enabled = false;
    return absl::OkStatus();
  }
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse(value);
  if (!address.ok()) {
    return absl::InvalidArgumentError("--admin: " + std::string(address.status().message()));
  }
  out->enabled = true;
  out->address = *address;
  return absl::OkStatus();
}

absl::Status ReadCidrSet(const Field& f, CidrSet* out) {
  if (!f.present()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<Field> items, f.Sequence());
  for (const Field& item : items) {
    ASSIGN_OR_RETURN(std::string text, item.Scalar());
    absl::StatusOr<CidrRange> range = CidrRange::Parse(text);
    if (!range.ok()) return item.Error(range.status());
    out->Add(*range);
  }
  return absl::OkStatus();
}

absl::Status ParseAdmin(const Field& f, const std::string& base_dir, AdminConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap({"address", "tokens", "hosts", "metrics_from", "tls"}));
  if (Field tls = f.Child("tls"); tls.present()) {
    RETURN_IF_ERROR(ParseAdminTls(tls, base_dir, out));
  }
  if (Field hosts = f.Child("hosts"); hosts.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, hosts.Sequence());
    for (const Field& item : items) {
      ASSIGN_OR_RETURN(std::string host, item.Scalar());
      if (host.empty() || host.find_first_of(" :/[]") != std::string::npos) {
        return item.Error("a host name without port, such as metrics.example.internal");
      }
      out->hosts.push_back(AsciiLower(host));
    }
  }
  RETURN_IF_ERROR(ReadCidrSet(f.Child("metrics_from"), &out->metrics_from));
  if (Field address = f.Child("address"); address.present()) {
    ASSIGN_OR_RETURN(std::string text, address.Scalar());
    if (text == "off") {
      out->enabled = false;
    } else {
      RETURN_IF_ERROR(address.ReadAddress(&out->address));
    }
  }
  if (Field tokens = f.Child("tokens"); tokens.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, tokens.Sequence());
    for (const Field& item : items) {
      AdminToken token;
      RETURN_IF_ERROR(ParseToken(item, base_dir, &token));
      for (const AdminToken& other : out->tokens) {
        if (other.name == token.name) {
          return item.Child("name").Error(
              absl::StrFormat("token \"%s\" is listed twice", token.name));
        }
      }
      out->tokens.push_back(std::move(token));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseController(const Field& f, const std::string& base_dir, ControllerConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap({"state_file", "audit_log", "gates", "hooks"}));
  RETURN_IF_ERROR(f.Child("state_file").Read(&out->state_file));
  out->state_file = ResolveConfigPath(out->state_file, base_dir);
  RETURN_IF_ERROR(f.Child("audit_log").Read(&out->audit_log));
  out->audit_log = ResolveConfigPath(out->audit_log, base_dir);
  if (Field g = f.Child("gates"); g.present()) {
    RETURN_IF_ERROR(
        g.ExpectMap({"window", "max_error_rate", "max_shed_rate", "max_p99", "recheck",
                     "rollback_after", "max_rollbacks", "health_interval", "warn_step_share"}));
    GateLimits& limits = out->gates;
    RETURN_IF_ERROR(g.Child("window").ReadDuration(&out->gate_window, absl::Seconds(1)));
    RETURN_IF_ERROR(ReadRate(g.Child("max_error_rate"), &limits.max_error_rate));
    RETURN_IF_ERROR(ReadRate(g.Child("max_shed_rate"), &limits.max_shed_rate));
    RETURN_IF_ERROR(g.Child("max_p99").ReadDuration(&limits.max_p99, absl::Milliseconds(1)));
    RETURN_IF_ERROR(g.Child("recheck").ReadDuration(&limits.recheck, absl::Milliseconds(100)));
    RETURN_IF_ERROR(g.Child("rollback_after").ReadInt(&limits.rollback_after, 1, 1000));
    RETURN_IF_ERROR(g.Child("max_rollbacks").ReadInt(&limits.max_rollbacks, 1, 1000));
    RETURN_IF_ERROR(ReadRate(g.Child("warn_step_share"), &limits.warn_step_share));
    RETURN_IF_ERROR(
        g.Child("health_interval").ReadDuration(&out->health_interval, absl::Milliseconds(100)));
    if (out->gate_window > absl::Hours(1)) {
      return g.Child("window").Error("must be at most 1h");
    }
  }
  if (Field hooks = f.Child("hooks"); hooks.present()) {
    RETURN_IF_ERROR(hooks.ExpectMap({"scale"}));
    if (Field scale = hooks.Child("scale"); scale.present()) {
      RETURN_IF_ERROR(ParseScaleHook(scale, base_dir, &out->hooks.scale.emplace()));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseFleet(const Field& f, const std::string& base_dir, const Config& config,
                        FleetConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap(
      {"etcd", "prefix", "node", "lease_ttl", "publish_interval", "standbys", "ticket_keys"}));
  if (!config.steering.enabled) {
    return f.Error("needs a steering: section (the fleet shares its steering table)");
  }
  Field etcd = f.Child("etcd");
  if (!etcd.present()) return etcd.Error("required: where the fleet's etcd is");
  RETURN_IF_ERROR(etcd.ExpectMap({"endpoints", "username", "password_file", "timeout", "ca_file",
                                  "cert_file", "key_file", "api"}));
  Field endpoints = etcd.Child("endpoints");
  if (!endpoints.present()) return endpoints.Error("required: a list of http://ADDRESS:PORT");
  ASSIGN_OR_RETURN(std::vector<Field> items, endpoints.Sequence());
  if (items.empty() || items.size() > 16) return endpoints.Error("must list 1..16 endpoints");
  for (const Field& item : items) {
    ASSIGN_OR_RETURN(std::string url, item.Scalar());
    if (absl::StatusOr<HttpOrigin> e = ParseHttpOrigin(url); !e.ok()) {
      return item.Error(std::string(e.status().message()));
    }
    out->etcd_endpoints.push_back(std::move(url));
  }
  RETURN_IF_ERROR(etcd.Child("username").Read(&out->etcd_username));
  Field password = etcd.Child("password_file");
  if (password.present() != !out->etcd_username.empty()) {
    return (password.present() ? password : etcd.Child("username"))
        .Error("username and password_file go together");
  }
  if (password.present()) {
    ASSIGN_OR_RETURN(Field::Secret secret, password.ReadSecretFile(base_dir));
    out->etcd_password = std::move(secret.value);
    if (out->etcd_password.empty()) return password.Error(secret.path + " is empty");
  }
  RETURN_IF_ERROR(etcd.Child("timeout").ReadDuration(&out->etcd_timeout, absl::Milliseconds(100)));
  if (Field api = etcd.Child("api"); api.present()) {
    ASSIGN_OR_RETURN(std::string value, api.Scalar());
    if (value != "grpc" && value != "json") {
      return api.Error("must be grpc (etcd's gRPC API) or json (its JSON gateway)");
    }
    out->etcd_grpc = value == "grpc";
  }
  bool https = false;
  for (const std::string& url : out->etcd_endpoints)
    https = https || StartsWithIgnoreCase(url, "https://");
  ClientTlsFiles& tls = out->etcd_tls;
  RETURN_IF_ERROR(etcd.Child("ca_file").Read(&tls.ca_file));
  RETURN_IF_ERROR(etcd.Child("cert_file").Read(&tls.cert_file));
  RETURN_IF_ERROR(etcd.Child("key_file").Read(&tls.key_file));
  for (std::string* path : {&tls.ca_file, &tls.cert_file, &tls.key_file}) {
    *path = ResolveConfigPath(*path, base_dir);
  }
  if (password.present()) {
    for (const std::string& url : out->etcd_endpoints) {
      if (!StartsWithIgnoreCase(url, "https://")) {
        return password.Error(absl::StrFormat(
            "the password would cross to %s in clear: etcd with a password needs https:// "
            "endpoints",
            url));
      }
    }
  }
  bool files = !tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty();
  if (files && !https) {
    return etcd.Error("ca_file, cert_file and key_file are for https:// endpoints");
  }
  if (https) {
    // Loaded now so that a bad file stops the start with its name, then again by the fleet.
    if (absl::StatusOr<ClientTlsContext> context = MakeClientTlsContext(tls); !context.ok()) {
      return etcd.Error(std::string(context.status().message()));
    }
  }
  Field prefix = f.Child("prefix");
  RETURN_IF_ERROR(prefix.Read(&out->prefix));
  if (out->prefix.empty() || out->prefix[0] != '/' || out->prefix.back() != '/' ||
      out->prefix.size() > 200) {
    return prefix.Error("must start and end with / (for example /sluice/)");
  }
  Field node = f.Child("node");
  RETURN_IF_ERROR(node.Read(&out->node));
  if (out->node.size() > 128) return node.Error("must be at most 128 characters");
  for (char c : out->node) {
    if (!IsAsciiAlnum(c) && c != '-' && c != '_' && c != '.' && c != ':') {
      return node.Error("letters, digits, '-', '_', '.' and ':' only");
    }
  }
  Field ttl = f.Child("lease_ttl");
  RETURN_IF_ERROR(ttl.ReadDuration(&out->lease_ttl, absl::Seconds(2)));
  if (out->lease_ttl > absl::Minutes(5) ||
      out->lease_ttl % absl::Seconds(1) != absl::ZeroDuration()) {
    return ttl.Error("must be whole seconds, 2s..5m (etcd leases count seconds)");
  }
  Field publish = f.Child("publish_interval");
  RETURN_IF_ERROR(publish.ReadDuration(&out->publish_interval, absl::Milliseconds(100)));
  if (out->publish_interval * 2 > out->lease_ttl) {
    return publish.Error(
        "must be at most half of lease_ttl, or the lease expires between renewals");
  }
  RETURN_IF_ERROR(f.Child("standbys").ReadInt(&out->standbys, 0, kMaxFleetStandbys));
  if (Field tickets = f.Child("ticket_keys"); tickets.present()) {
    RETURN_IF_ERROR(tickets.ExpectMap({"seal_key_file", "rotation", "share"}));
    FleetConfig::TicketKeys& keys = out->ticket_keys;
    Field seal = tickets.Child("seal_key_file");
    if (!seal.present()) {
      return seal.Error(
          "required: the key that seals the ticket keys in etcd (64 hex digits: "
          "openssl rand -hex 32)");
    }
    ASSIGN_OR_RETURN(Field::Secret secret, seal.ReadSecretFile(base_dir));
    absl::StatusOr<TicketSealKey> parsed = ParseTicketSealKey(secret.value);
    if (!parsed.ok()) {
      return seal.Error(absl::StrFormat("%s %s", secret.path, parsed.status().message()));
    }
    keys.seal = *parsed;
    keys.seal_key_file = secret.path;
    Field rotation = tickets.Child("rotation");
    RETURN_IF_ERROR(rotation.ReadDuration(&keys.rotation, absl::Seconds(1)));
    if (keys.rotation < out->publish_interval * 2) {
      return rotation.Error(
          "must be at least twice publish_interval: the next key must reach every node first");
    }
    std::string share = "region";
    RETURN_IF_ERROR(tickets.Child("share").Read(&share));
    if (share != "region" && share != "fleet") {
      return tickets.Child("share").Error(
          "must be region (the region's nodes) or fleet (every region's: clients moved to a "
          "savior resume there)");
    }
    keys.fleet_wide = share == "fleet";
    keys.enabled = true;
  }
  out->enabled = true;
  return absl::OkStatus();
}

absl::Status ParseAccessLog(const Field& f, const std::string& base_dir, AccessLogConfig* out) {
  RETURN_IF_ERROR(f.ExpectMap({"path", "sample"}));
  Field path = f.Child("path");
  if (!path.present()) return path.Error("required: stdout or a file");
  RETURN_IF_ERROR(path.Read(&out->path));
  if (out->path.empty()) return path.Error("required: stdout or a file");
  if (out->path != "stdout") out->path = ResolveConfigPath(out->path, base_dir);
  RETURN_IF_ERROR(f.Child("sample").ReadDouble(&out->sample, 0, 1));
  out->enabled = true;
  return absl::OkStatus();
}

absl::Status ParseMetrics(const Field& f, const Config& config, std::vector<StreamStartRule>* out) {
  RETURN_IF_ERROR(f.ExpectMap({"stream_starts"}));
  Field starts = f.Child("stream_starts");
  if (!starts.present()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<Field> items, starts.Sequence());
  for (const Field& item : items) {
    RETURN_IF_ERROR(item.ExpectMap({"route", "method", "path_prefix", "status"}));
    StreamStartRule rule;
    Field route = item.Child("route");
    RETURN_IF_ERROR(route.Read(&rule.route));
    if (!rule.route.empty()) {
      bool known = false;
      for (const RouteConfig& r : config.routes) known = known || r.name == rule.route;
      if (!known) return route.Error(absl::StrFormat("no route named \"%s\"", rule.route));
    }
    RETURN_IF_ERROR(item.Child("method").Read(&rule.method));
    for (char& c : rule.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    Field prefix = item.Child("path_prefix");
    RETURN_IF_ERROR(prefix.Read(&rule.path_prefix));
    if (!rule.path_prefix.empty() && rule.path_prefix[0] != '/') {
      return prefix.Error("must start with /");
    }
    Field status = item.Child("status");
    if (status.present()) {
      ASSIGN_OR_RETURN(std::string text, status.Scalar());
      // "2xx", "200" or "200-204".
      int lo = 0, hi = 0;
      if (text.size() == 3 && text[0] >= '1' && text[0] <= '5' && text.substr(1) == "xx") {
        lo = (text[0] - '0') * 100;
        hi = lo + 99;
      } else if (size_t dash = text.find('-'); dash != std::string::npos) {
        if (!ParseInteger(text.substr(0, dash), &lo) || !ParseInteger(text.substr(dash + 1), &hi)) {
          lo = hi = 0;
        }
      } else if (!ParseInteger(text, &lo)) {
        lo = 0;
      } else {
        hi = lo;
      }
      if (lo < 100 || hi > 599 || lo > hi) {
        return status.Error(absl::StrFormat(
            "must be a class (2xx), a status (200) or a range (200-299), got \"%s\"", text));
      }
      rule.status_min = lo;
      rule.status_max = hi;
    }
    out->push_back(std::move(rule));
  }
  return absl::OkStatus();
}

}  // namespace sluice
