#include "proxy/config/steering_config_loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "common/secret_file.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "proxy/config/config_loader.h"
#include "proxy/config/tls_config_loader.h"

namespace sluice {
namespace {

constexpr size_t kMinTunnelKeyBytes = 32;

absl::Status ReadBasisPoints(const Field& f, uint32_t* out) {
  if (!f.present()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string text, f.Scalar());
  if (!ParseBasisPoints(text, out)) {
    return f.Error(absl::StrFormat(
        "expected a fraction such as 25%%, 0.5%% or 2500bp (at most 100%%), got \"%s\"", text));
  }
  return absl::OkStatus();
}

bool ValidHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!IsAsciiAlnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

absl::Status ReadHeaderName(const Field& f, std::string* out) {
  ASSIGN_OR_RETURN(std::string name, f.Scalar());
  if (!ValidHeaderName(name)) {
    return f.Error(absl::StrFormat("\"%s\" is not a header or cookie name", name));
  }
  *out = AsciiLower(name);
  return absl::OkStatus();
}

// "saviors: {eu-west-1: 70, us-west-2: 30}": weights, checked against the regions later (the
// table builder names the key); here only the syntax.
absl::Status ParseWeights(const Field& f, std::map<std::string, uint32_t>* out) {
  ASSIGN_OR_RETURN(auto entries, f.Entries());
  for (const auto& [name, weight] : entries) {
    uint32_t value = 0;
    RETURN_IF_ERROR(weight.ReadInt(&value, 0, kMaxSaviorWeight));
    (*out)[name] = value;
  }
  return absl::OkStatus();
}

absl::Status ParseRegion(const std::string& name, const Field& f, RegionSpec* spec,
                         std::vector<EndpointConfig>* tunnel) {
  RETURN_IF_ERROR(f.ExpectMap({"tunnel", "salt", "evacuate", "saviors", "cohorts", "healthy"}));
  if (!ValidRegionName(name)) {
    return f.Error(
        "a region name is 1 to 63 of a-z, 0-9, '-', '_', '.', starting with a letter "
        "or digit");
  }
  spec->name = name;
  if (Field t = f.Child("tunnel"); t.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, t.Sequence());
    for (const Field& item : items) {
      ASSIGN_OR_RETURN(std::string text, item.Scalar());
      absl::StatusOr<EndpointConfig> endpoint = ParseEndpoint(text);
      if (!endpoint.ok()) return item.Error(endpoint.status());
      tunnel->push_back(*endpoint);
    }
  }
  RETURN_IF_ERROR(f.Child("salt").Read(&spec->salt));
  RETURN_IF_ERROR(ReadBasisPoints(f.Child("evacuate"), &spec->evacuated_bp));
  RETURN_IF_ERROR(f.Child("healthy").Read(&spec->healthy));
  if (Field s = f.Child("saviors"); s.present()) RETURN_IF_ERROR(ParseWeights(s, &spec->saviors));
  if (Field c = f.Child("cohorts"); c.present()) {
    ASSIGN_OR_RETURN(auto cohorts, c.Entries());
    for (const auto& [cohort, weights] : cohorts) {
      RETURN_IF_ERROR(ParseWeights(weights, &spec->cohort_saviors[cohort]));
    }
  }
  return absl::OkStatus();
}

// Savior rows name regions and cohorts: checked once all are known, so that the message points
// at the line that names the wrong one.
absl::Status CheckReferences(const Field& region_field, const RegionSpec& region,
                             const SteeringSpec& spec) {
  auto is_region = [&](const std::string& name) {
    return std::any_of(spec.regions.begin(), spec.regions.end(),
                       [&](const RegionSpec& r) { return r.name == name; });
  };
  auto check_row = [&](const Field& row) -> absl::Status {
    ASSIGN_OR_RETURN(auto entries, row.Entries());
    for (const auto& [name, weight] : entries) {
      if (!is_region(name)) return weight.Error("not one of steering.regions");
      if (name == region.name) return weight.Error("a region cannot be its own savior");
    }
    return absl::OkStatus();
  };
  if (Field s = region_field.Child("saviors"); s.present()) RETURN_IF_ERROR(check_row(s));
  if (Field c = region_field.Child("cohorts"); c.present()) {
    ASSIGN_OR_RETURN(auto cohorts, c.Entries());
    for (const auto& [cohort, row] : cohorts) {
      if (std::find(spec.cohorts.begin(), spec.cohorts.end(), cohort) == spec.cohorts.end()) {
        return row.Error("not a cohort named by steering.cohorts rules");
      }
      RETURN_IF_ERROR(check_row(row));
    }
  }
  bool any_weight = false;
  for (const auto& [name, weight] : region.saviors) any_weight = any_weight || weight > 0;
  if (region.evacuated_bp > 0 && !any_weight) {
    return region_field.Child("evacuate")
        .Error("an evacuating region needs saviors: at least one with a weight above 0");
  }
  return absl::OkStatus();
}

absl::Status ParseMemberIdSources(const Field& f, std::vector<MemberIdSource>* out) {
  ASSIGN_OR_RETURN(std::vector<Field> items, f.Sequence());
  for (const Field& item : items) {
    MemberIdSource source;
    if (item.IsScalar()) {
      ASSIGN_OR_RETURN(std::string text, item.Scalar());
      if (text != "claim") {
        return item.Error(
            absl::StrFormat("expected claim, {cookie: NAME} or {header: NAME}, got \"%s\"", text));
      }
      source.kind = MemberIdSource::Kind::kClaim;
    } else {
      RETURN_IF_ERROR(item.ExpectMap({"cookie", "header"}));
      if (Field c = item.Child("cookie"); c.present()) {
        source.kind = MemberIdSource::Kind::kCookie;
        RETURN_IF_ERROR(ReadHeaderName(c, &source.name));
        if (item.Child("header").present()) return item.Error("one of cookie or header");
      } else {
        source.kind = MemberIdSource::Kind::kHeader;
        RETURN_IF_ERROR(ReadHeaderName(item.Child("header"), &source.name));
      }
    }
    out->push_back(std::move(source));
  }
  return absl::OkStatus();
}

absl::Status ParseHomeRegionSources(const Field& f, std::vector<HomeRegionSource>* out) {
  ASSIGN_OR_RETURN(std::vector<Field> items, f.Sequence());
  for (const Field& item : items) {
    HomeRegionSource source;
    if (item.IsScalar()) {
      ASSIGN_OR_RETURN(std::string text, item.Scalar());
      if (text == "claim") {
        source.kind = HomeRegionSource::Kind::kClaim;
      } else if (text == "map") {
        source.kind = HomeRegionSource::Kind::kMap;
      } else {
        return item.Error(
            absl::StrFormat("expected claim, map or {header: NAME}, got \"%s\"", text));
      }
    } else {
      RETURN_IF_ERROR(item.ExpectMap({"header"}));
      source.kind = HomeRegionSource::Kind::kHeader;
      RETURN_IF_ERROR(ReadHeaderName(item.Child("header"), &source.name));
    }
    out->push_back(std::move(source));
  }
  return absl::OkStatus();
}

absl::Status ParseHomeRegionMap(const Field& f, const SteeringSpec& spec, HomeRegionMap* out) {
  RETURN_IF_ERROR(f.ExpectMap({"salt", "prefixes", "hash_ranges"}));
  std::string salt;
  RETURN_IF_ERROR(f.Child("salt").Read(&salt));
  out->key = SipKey::Derive("sluice-home", salt);
  auto region_index = [&](const Field& where, const std::string& name) -> absl::StatusOr<int> {
    for (size_t i = 0; i < spec.regions.size(); ++i) {
      if (spec.regions[i].name == name) return static_cast<int>(i);
    }
    return where.Error(absl::StrFormat("\"%s\" is not one of steering.regions", name));
  };
  if (Field p = f.Child("prefixes"); p.present()) {
    ASSIGN_OR_RETURN(auto entries, p.Entries());
    for (const auto& [prefix, region] : entries) {
      ASSIGN_OR_RETURN(std::string name, region.Scalar());
      ASSIGN_OR_RETURN(int index, region_index(region, name));
      if (prefix.empty()) return region.Error("an empty prefix matches everyone");
      out->prefixes.emplace_back(prefix, index);
    }
    std::stable_sort(out->prefixes.begin(), out->prefixes.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
  if (Field r = f.Child("hash_ranges"); r.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, r.Sequence());
    for (const Field& item : items) {
      RETURN_IF_ERROR(item.ExpectMap({"from", "to", "region"}));
      HomeRegionMap::Range range;
      Field from = item.Child("from");
      Field to = item.Child("to");
      if (!from.present() || !to.present()) return item.Error("needs from and to (25%, 2500bp)");
      RETURN_IF_ERROR(ReadBasisPoints(from, &range.from));
      RETURN_IF_ERROR(ReadBasisPoints(to, &range.to));
      if (range.from >= range.to) return item.Error("from must be below to");
      Field region = item.Child("region");
      if (!region.present()) return region.Error("required");
      ASSIGN_OR_RETURN(std::string name, region.Scalar());
      ASSIGN_OR_RETURN(range.region, region_index(region, name));
      for (const HomeRegionMap::Range& other : out->ranges) {
        if (range.from < other.to && other.from < range.to) {
          return item.Error("overlaps an earlier range");
        }
      }
      out->ranges.push_back(range);
    }
  }
  return absl::OkStatus();
}

// Rules in order; each adds the cohort names it uses to `names` (the table's cohort list, whose
// order gives the ids), a CIDR file's too.
absl::Status ParseCohortRules(const Field& f, const std::string& base_dir,
                              std::vector<std::string>* names, std::vector<CohortRule>* out) {
  ASSIGN_OR_RETURN(std::vector<Field> items, f.Sequence());
  for (const Field& item : items) {
    RETURN_IF_ERROR(item.ExpectMap({"header", "claim", "values", "cidr_file"}));
    CohortRule rule;
    Field header = item.Child("header");
    Field claim = item.Child("claim");
    Field cidr_file = item.Child("cidr_file");
    Field values = item.Child("values");
    if (header.present() + claim.present() + cidr_file.present() != 1) {
      return item.Error("needs one of header, claim or cidr_file");
    }
    if (cidr_file.present()) {
      if (values.present()) return values.Error("the cohorts of a cidr_file are in the file");
      rule.kind = CohortRule::Kind::kCidrFile;
      ASSIGN_OR_RETURN(std::string path, cidr_file.Scalar());
      if (path.empty()) return cidr_file.Error("a file of CIDR COHORT lines");
      rule.path = ResolveConfigPath(path, base_dir);
      absl::StatusOr<CohortCidrMapPtr> map =
          CohortCidrMap::Load(rule.path, names, CohortCidrMap::NewCohorts::kAdd);
      if (!map.ok()) return cidr_file.Error(map.status());
      rule.cidr = *std::move(map);
      out->push_back(std::move(rule));
      continue;
    }
    if (header.present()) {
      rule.kind = CohortRule::Kind::kHeader;
      RETURN_IF_ERROR(ReadHeaderName(header, &rule.name));
    } else {
      ASSIGN_OR_RETURN(std::string which, claim.Scalar());
      if (which == "tier") {
        rule.kind = CohortRule::Kind::kClaimTier;
      } else if (which == "home_region") {
        rule.kind = CohortRule::Kind::kClaimHomeRegion;
      } else {
        return claim.Error(absl::StrFormat(
            "must be tier or home_region (the claims the auth filter maps), got \"%s\"", which));
      }
    }
    if (!values.present()) return values.Error("required: {value: cohort, ...}");
    ASSIGN_OR_RETURN(auto entries, values.Entries());
    for (const auto& [value, cohort_field] : entries) {
      ASSIGN_OR_RETURN(std::string cohort, cohort_field.Scalar());
      if (!ValidRegionName(cohort)) {
        return cohort_field.Error("a cohort name is 1 to 63 of a-z, 0-9, '-', '_', '.'");
      }
      auto it = std::find(names->begin(), names->end(), cohort);
      if (it == names->end()) it = names->insert(names->end(), cohort);
      rule.values.emplace_back(value, static_cast<int>(it - names->begin()));
    }
    out->push_back(std::move(rule));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadKeyFile(const Field& f, const std::string& base_dir) {
  ASSIGN_OR_RETURN(Field::Secret secret, f.ReadSecretFile(base_dir));
  if (secret.value.size() < kMinTunnelKeyBytes) {
    return f.Error(absl::StrFormat(
        "%s holds %d bytes; a tunnel key needs at least %d (openssl rand -hex 32 > FILE)",
        secret.path, secret.value.size(), kMinTunnelKeyBytes));
  }
  if (LooksGuessable(secret.value)) {
    return f.Error(
        absl::StrFormat("%s has fewer than 8 distinct characters: a tunnel key must be random "
                        "(openssl rand -hex 32 > FILE)",
                        secret.path));
  }
  return std::move(secret.value);
}

}  // namespace

std::vector<std::string> CohortFiles(const Config& config) {
  std::vector<std::string> files;
  for (const CohortRule& rule : config.steering.cohort_rules) {
    if (rule.kind != CohortRule::Kind::kCidrFile) continue;
    if (std::find(files.begin(), files.end(), rule.path) == files.end()) files.push_back(rule.path);
  }
  return files;
}

absl::Status ParseSteering(const Field& f, const std::string& base_dir, Config* config) {
  RETURN_IF_ERROR(
      f.ExpectMap({"local_region", "regions", "misrouted", "member_id", "home_region",
                   "home_region_map", "cohorts", "tunnel", "failover", "replay_buffer"}));
  SteeringConfig& out = config->steering;
  out.enabled = true;
  SteeringSpec& spec = out.spec;
  Field local = f.Child("local_region");
  if (!local.present()) return local.Error("required: the region this node is in");
  RETURN_IF_ERROR(local.Read(&spec.local_region));

  Field regions = f.Child("regions");
  if (!regions.present()) return regions.Error("required: every region, this one included");
  ASSIGN_OR_RETURN(auto region_entries, regions.Entries());
  if (region_entries.size() > static_cast<size_t>(kMaxRegions)) {
    return regions.Error(absl::StrFormat("at most %d regions", kMaxRegions));
  }
  std::vector<std::vector<EndpointConfig>> tunnels;
  for (const auto& [name, region] : region_entries) {
    RegionSpec r;
    std::vector<EndpointConfig> tunnel;
    RETURN_IF_ERROR(ParseRegion(name, region, &r, &tunnel));
    spec.regions.push_back(std::move(r));
    tunnels.push_back(std::move(tunnel));
  }
  if (Field m = f.Child("misrouted"); m.present()) {
    ASSIGN_OR_RETURN(std::string mode, m.Scalar());
    if (mode == "proxy_home") {
      spec.misrouted = MisroutedMode::kProxyHome;
    } else if (mode == "serve_local") {
      spec.misrouted = MisroutedMode::kServeLocal;
    } else {
      return m.Error(absl::StrFormat("must be proxy_home or serve_local, got \"%s\"", mode));
    }
  }
  if (Field m = f.Child("member_id"); m.present()) {
    RETURN_IF_ERROR(ParseMemberIdSources(m, &out.member_id));
  } else {
    out.member_id.push_back(MemberIdSource{MemberIdSource::Kind::kClaim, ""});
  }
  if (Field h = f.Child("home_region"); h.present()) {
    RETURN_IF_ERROR(ParseHomeRegionSources(h, &out.home_region));
  } else {
    out.home_region.push_back(HomeRegionSource{HomeRegionSource::Kind::kClaim, ""});
  }
  const bool uses_map = std::any_of(out.home_region.begin(), out.home_region.end(),
                                    [](auto& s) { return s.kind == HomeRegionSource::Kind::kMap; });
  Field map = f.Child("home_region_map");
  if (map.present()) {
    RETURN_IF_ERROR(ParseHomeRegionMap(map, spec, &out.home_map));
    if (!uses_map) return map.Error("set, but steering.home_region does not list map");
  } else if (uses_map) {
    return map.Error("required: steering.home_region lists map");
  }
  if (Field c = f.Child("cohorts"); c.present()) {
    RETURN_IF_ERROR(ParseCohortRules(c, base_dir, &spec.cohorts, &out.cohort_rules));
  }
  RETURN_IF_ERROR(f.Child("failover").Read(&out.failover));
  RETURN_IF_ERROR(f.Child("replay_buffer").ReadSize(&out.replay_buffer, 0, 64u << 20));

  // Tunnels: the key, and one cluster per peer region.
  ClusterConfig tunnel_defaults;
  tunnel_defaults.balancer = BalancerKind::kLeastOutstanding;
  tunnel_defaults.connect_timeout = absl::Seconds(1);
  // A region is one target: every sluice of it may be ejected, and then it is unreachable
  // (steering skips it) until one is readmitted.
  tunnel_defaults.outlier.consecutive_failures = 3;
  tunnel_defaults.outlier.base_ejection = absl::Seconds(10);
  tunnel_defaults.outlier.max_ejection = absl::Seconds(60);
  tunnel_defaults.outlier.max_ejection_percent = 100;
  // A few long-lived HTTP/2 connections per peer sluice (and worker), multiplexed; a peer
  // that speaks only HTTP/1.1 is used over HTTP/1.1.
  tunnel_defaults.http2 = true;
  tunnel_defaults.pool.max_requests = 0;
  // Tunnels cross continents: two connections per peer sluice and worker stay open and
  // PING-checked (the first evacuated request pays no handshake, and one lossy connection
  // stalls half the streams, not all), and the windows grow with the path up to 32 MiB per
  // stream (a 256 KiB window is ~30 Mbit/s at 70 ms; 32 MiB, of which at least half is open,
  // keeps 1 Gbit/s going at 150 ms).
  tunnel_defaults.pool.http2_warm = 2;
  tunnel_defaults.pool.http2_ping_interval = absl::Seconds(5);
  tunnel_defaults.pool.http2_max_window = 32u << 20;
  Field tunnel = f.Child("tunnel");
  std::vector<std::string> keys;
  bool insecure = false;
  if (tunnel.present()) {
    RETURN_IF_ERROR(
        tunnel.ExpectMap({"key_file", "previous_key_file", "max_skew", "connect_timeout",
                          "response_timeout", "tls", "insecure", "http2", "connections",
                          "warm_connections", "ping_interval", "window", "max_window"}));
    RETURN_IF_ERROR(tunnel.Child("insecure").Read(&insecure));
    RETURN_IF_ERROR(tunnel.Child("http2").Read(&tunnel_defaults.http2));
    RETURN_IF_ERROR(
        tunnel.Child("connections").ReadInt(&tunnel_defaults.pool.http2_connections, 1, 64));
    if (!tunnel.Child("warm_connections").present()) {
      tunnel_defaults.pool.http2_warm =
          std::min(tunnel_defaults.pool.http2_warm, tunnel_defaults.pool.http2_connections);
    }
    RETURN_IF_ERROR(ParseHttp2Pool(tunnel,
                                   {"warm_connections", "ping_interval", "window", "max_window"},
                                   &tunnel_defaults.pool));
    if (Field t = tunnel.Child("tls"); t.present()) {
      RETURN_IF_ERROR(ParseUpstreamTls(t, base_dir, &tunnel_defaults.tls.emplace()));
    }
    if (Field k = tunnel.Child("key_file"); k.present()) {
      ASSIGN_OR_RETURN(std::string key, ReadKeyFile(k, base_dir));
      keys.push_back(std::move(key));
    }
    if (Field k = tunnel.Child("previous_key_file"); k.present()) {
      if (keys.empty()) return k.Error("needs key_file too (the key that signs)");
      ASSIGN_OR_RETURN(std::string key, ReadKeyFile(k, base_dir));
      keys.push_back(std::move(key));
    }
    absl::Duration skew = absl::Seconds(out.max_skew_seconds);
    RETURN_IF_ERROR(tunnel.Child("max_skew").ReadDuration(&skew, absl::Seconds(1)));
    if (skew > absl::Seconds(kMaxHopSkewSeconds)) {
      return tunnel.Child("max_skew")
          .Error(absl::StrFormat(
              "at most %ds: a marker is good this long, and its nonce is remembered twice as long",
              kMaxHopSkewSeconds));
    }
    out.max_skew_seconds = absl::ToInt64Seconds(skew);
    RETURN_IF_ERROR(tunnel.Child("connect_timeout")
                        .ReadDuration(&tunnel_defaults.connect_timeout, absl::Milliseconds(1)));
    RETURN_IF_ERROR(tunnel.Child("response_timeout")
                        .ReadDuration(&tunnel_defaults.response_timeout, absl::Milliseconds(1)));
  }
  const bool has_peers = spec.regions.size() > 1;
  if (has_peers && keys.empty()) {
    return tunnel.Error(
        "required with more than one region: tunnel.key_file, the key shared by "
        "every region's sluice");
  }
  if (has_peers && !tunnel_defaults.tls && !insecure) {
    return tunnel.Error(
        "tunnel.tls is required with more than one region: requests and their hop markers "
        "cross between regions (for cleartext on a private network, set tunnel.insecure: true)");
  }
  if (tunnel_defaults.tls && insecure) {
    return tunnel.Child("insecure").Error("contradicts tunnel.tls");
  }
  out.signer = std::make_shared<HopSigner>(std::move(keys));

  if (std::none_of(spec.regions.begin(), spec.regions.end(),
                   [&](const RegionSpec& r) { return r.name == spec.local_region; })) {
    return local.Error(absl::StrFormat("\"%s\" is not one of steering.regions", spec.local_region));
  }
  for (size_t i = 0; i < spec.regions.size(); ++i) {
    RETURN_IF_ERROR(CheckReferences(region_entries[i].second, spec.regions[i], spec));
  }
  absl::StatusOr<SteeringTablePtr> table = BuildSteeringTable(spec, 1);
  if (!table.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s:%d: %s", config->source, f.line(),
                                                      std::string(table.status().message())));
  }
  out.table = *table;

  for (const ClusterConfig& cluster : config->clusters) {
    if (cluster.name.starts_with(kTunnelClusterPrefix)) {
      return f.Error(
          absl::StrFormat("cluster name \"%s\": names starting with \"%s\" are the "
                          "tunnels to peer regions",
                          cluster.name, kTunnelClusterPrefix));
    }
  }
  const int local_index = (*table)->local();
  for (size_t i = 0; i < spec.regions.size(); ++i) {
    if (static_cast<int>(i) == local_index) {
      out.tunnel_cluster.push_back(-1);  // the local region's own tunnel endpoints are not used
      continue;
    }
    if (tunnels[i].empty()) {
      return regions.Child(spec.regions[i].name)
          .Child("tunnel")
          .Error("required for a peer region: its sluice's address (host:port)");
    }
    ClusterConfig cluster = tunnel_defaults;
    cluster.name = std::string(kTunnelClusterPrefix) + spec.regions[i].name;
    cluster.endpoints = tunnels[i];
    out.tunnel_cluster.push_back(static_cast<int>(config->clusters.size()));
    config->clusters.push_back(std::move(cluster));
  }
  return absl::OkStatus();
}

}  // namespace sluice
