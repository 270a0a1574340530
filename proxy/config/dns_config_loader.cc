#include "proxy/config/dns_config_loader.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace sluice {

namespace {

constexpr size_t kMaxRecordsPerRegion = 100;
constexpr size_t kMaxServers = 8;

}  // namespace

absl::Status ParseDns(const Field& f, const std::string& base_dir, const Config& config,
                      DnsConfig* out) {
  RETURN_IF_ERROR(
      f.ExpectMap({"zone", "servers", "key_file", "ttl", "timeout", "plans", "records"}));
  if (!config.steering.enabled) return f.Error("needs steering: regions whose records it moves");
  Field zone = f.Child("zone");
  if (!zone.present()) return zone.Error("required: the zone the records are in");
  ASSIGN_OR_RETURN(std::string zone_text, zone.Scalar());
  absl::StatusOr<std::string> apex = CanonicalDnsName(zone_text);
  if (!apex.ok()) return zone.Error(apex.status());
  out->zone = *apex;

  Field servers = f.Child("servers");
  if (!servers.present()) return servers.Error("required: the zone's authoritative server(s)");
  ASSIGN_OR_RETURN(std::vector<Field> server_items, servers.Sequence());
  if (server_items.empty() || server_items.size() > kMaxServers) {
    return servers.Error(absl::StrFormat("needs 1 to %d IP:PORT addresses", kMaxServers));
  }
  for (const Field& item : server_items) {
    SocketAddress address;
    RETURN_IF_ERROR(item.ReadAddress(&address));
    out->servers.push_back(address);
  }

  Field key_file = f.Child("key_file");
  if (!key_file.present()) {
    return key_file.Error("required: a TSIG key (hmac-sha256) the server accepts updates with");
  }
  ASSIGN_OR_RETURN(Field::Secret secret, key_file.ReadSecretFile(base_dir));
  absl::StatusOr<TsigKey> key = ParseTsigKey(secret.value);
  if (!key.ok())
    return key_file.Error(absl::StrFormat("%s: %s", secret.path, key.status().message()));
  out->key = *std::move(key);
  out->key_file = secret.path;

  absl::Duration ttl = absl::Seconds(out->ttl);
  if (Field t = f.Child("ttl"); t.present()) {
    RETURN_IF_ERROR(t.ReadDuration(&ttl, absl::Seconds(1)));
    if (ttl > absl::Hours(24)) return t.Error("must be at most 24h");
    out->ttl = static_cast<uint32_t>(absl::ToInt64Seconds(ttl));
  }
  RETURN_IF_ERROR(f.Child("timeout").ReadDuration(&out->timeout, absl::Milliseconds(100)));
  RETURN_IF_ERROR(f.Child("plans").Read(&out->in_plans));

  Field records = f.Child("records");
  if (!records.present()) return records.Error("required: each region's records (region -> list)");
  ASSIGN_OR_RETURN(auto regions, records.Entries());
  for (const auto& [region, list] : regions) {
    const std::vector<RegionSpec>& known = config.steering.spec.regions;
    // clang 14 (the fuzz build) cannot capture a structured binding: a plain reference.
    const std::string& region_name = region;
    if (std::none_of(known.begin(), known.end(),
                     [&](const RegionSpec& r) { return r.name == region_name; })) {
      return list.Error(absl::StrFormat("unknown region \"%s\" (not in steering.regions)", region));
    }
    ASSIGN_OR_RETURN(std::vector<Field> items, list.Sequence());
    if (items.size() > kMaxRecordsPerRegion) {
      return list.Error(absl::StrFormat("at most %d records per region", kMaxRecordsPerRegion));
    }
    DnsRegionRecords r;
    r.region = region;
    for (const Field& item : items) {
      RETURN_IF_ERROR(item.ExpectMap({"name", "type", "data"}));
      std::string name, type, data;
      RETURN_IF_ERROR(item.Child("name").Read(&name));
      RETURN_IF_ERROR(item.Child("type").Read(&type));
      RETURN_IF_ERROR(item.Child("data").Read(&data));
      if (name.empty() || type.empty() || data.empty()) {
        return item.Error("needs name, type (A or AAAA) and data (the address)");
      }
      absl::StatusOr<DnsRecord> record = CanonicalDnsRecord(out->zone, name, type, data);
      if (!record.ok()) return item.Error(record.status());
      if (std::find(r.records.begin(), r.records.end(), *record) != r.records.end()) {
        return item.Error(
            absl::StrFormat("%s %s %s is listed twice", record->name, record->type, record->data));
      }
      r.records.push_back(*std::move(record));
    }
    out->regions.push_back(std::move(r));
  }
  if (ManagedRRsets(out->regions).empty()) {
    return records.Error(
        "no name is shared by two regions: the DNS step takes a region's records out of the "
        "names it shares with its saviors");
  }
  out->enabled = true;
  return absl::OkStatus();
}

}  // namespace sluice
