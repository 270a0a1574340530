#include "steering/dns_change.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace sluice {

namespace {

constexpr size_t kMaxNameLength = 253;  // presentation form, without the final dot
constexpr size_t kMaxLabelLength = 63;

bool ValidLabel(std::string_view label) {
  if (label.empty() || label.size() > kMaxLabelLength) return false;
  // Host names, plus "_" (service labels) and "*" alone (a wildcard owner).
  if (label == "*") return true;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

}  // namespace

absl::StatusOr<std::string> CanonicalDnsName(std::string_view name) {
  std::string out = absl::AsciiStrToLower(std::string(name));
  if (out == ".") return out;
  if (!out.empty() && out.back() == '.') out.pop_back();
  if (out.empty() || out.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(
        absl::StrFormat("\"%s\" is not a DNS name (1 to 253 characters)", name));
  }
  size_t start = 0;
  while (true) {
    size_t dot = out.find('.', start);
    std::string_view label =
        std::string_view(out).substr(start, dot == std::string::npos ? dot : dot - start);
    if (!ValidLabel(label)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "\"%s\" is not a DNS name: label \"%s\" (letters, digits, '-' and '_', 1 to 63)", name,
          label));
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  out.push_back('.');
  return out;
}

absl::StatusOr<DnsRecord> CanonicalDnsRecord(std::string_view zone, std::string_view name,
                                             std::string_view type, std::string_view data) {
  absl::StatusOr<std::string> apex = CanonicalDnsName(zone);
  if (!apex.ok()) return apex.status();
  DnsRecord record;
  if (name == "@") {
    record.name = *apex;
  } else {
    std::string absolute(name);
    if (absolute.empty() || absolute.back() != '.') absolute += "." + *apex;
    absl::StatusOr<std::string> canonical = CanonicalDnsName(absolute);
    if (!canonical.ok()) return canonical.status();
    record.name = *canonical;
  }
  if (*apex != "." && record.name != *apex && !record.name.ends_with("." + *apex)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s is not in the zone %s", record.name, *apex));
  }
  record.type = absl::AsciiStrToUpper(std::string(type));
  int family;
  if (record.type == "A") {
    family = AF_INET;
  } else if (record.type == "AAAA") {
    family = AF_INET6;
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "record type \"%s\" of %s: only A and AAAA records are managed", type, record.name));
  }
  unsigned char address[16];
  char text[INET6_ADDRSTRLEN];
  std::string copy(data);
  if (inet_pton(family, copy.c_str(), address) != 1 ||
      inet_ntop(family, address, text, sizeof(text)) == nullptr) {
    return absl::InvalidArgumentError(absl::StrFormat("%s %s: \"%s\" is not an IPv%d address",
                                                      record.name, record.type, data,
                                                      family == AF_INET ? 4 : 6));
  }
  record.data = text;
  return record;
}

std::vector<DnsRRsetKey> ManagedRRsets(const std::vector<DnsRegionRecords>& regions) {
  std::map<std::string, std::set<std::string>> regions_by_name;
  for (const DnsRegionRecords& r : regions) {
    for (const DnsRecord& record : r.records) regions_by_name[record.name].insert(r.region);
  }
  std::set<DnsRRsetKey> keys;
  for (const DnsRegionRecords& r : regions) {
    for (const DnsRecord& record : r.records) {
      if (regions_by_name[record.name].size() >= 2) keys.insert({record.name, record.type});
    }
  }
  return {keys.begin(), keys.end()};
}

std::string DnsChange::Summary() const {
  if (empty()) return "no change";
  std::vector<std::string> parts;
  for (const DnsRecord& r : remove) parts.push_back("-" + r.name + " " + r.type + " " + r.data);
  for (const DnsRecord& r : add) parts.push_back("+" + r.name + " " + r.type + " " + r.data);
  return absl::StrJoin(parts, ", ");
}

absl::StatusOr<DnsChange> PlanDnsChange(const std::vector<DnsRegionRecords>& regions,
                                        const std::set<std::string>& out,
                                        const DnsRRsets& current) {
  std::vector<DnsRRsetKey> managed = ManagedRRsets(regions);
  DnsRRsets target;
  for (const DnsRRsetKey& key : managed) {
    auto it = current.find(key);
    target[key] = it == current.end() ? std::set<std::string>{} : it->second;
  }
  for (const DnsRegionRecords& r : regions) {
    bool taken_out = out.count(r.region) > 0;
    for (const DnsRecord& record : r.records) {
      auto it = target.find({record.name, record.type});
      if (it == target.end()) continue;  // not a shared name
      if (taken_out) {
        it->second.erase(record.data);
      }
    }
  }
  // Adds after removals: a record two regions share stays while either is in.
  for (const DnsRegionRecords& r : regions) {
    if (out.count(r.region)) continue;
    for (const DnsRecord& record : r.records) {
      auto it = target.find({record.name, record.type});
      if (it != target.end()) it->second.insert(record.data);
    }
  }
  // No shared name may end up without records (every type together).
  std::map<std::string, size_t> left;
  for (const auto& [key, data] : target) left[key.first] += data.size();
  for (const auto& [name, count] : left) {
    if (count == 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "the change would leave %s without records (every region that has some is out)", name));
    }
  }
  DnsChange change;
  for (const auto& [key, data] : target) {
    auto it = current.find(key);
    const std::set<std::string> empty;
    const std::set<std::string>& now = it == current.end() ? empty : it->second;
    if (now == data) continue;
    change.before[key] = now;
    for (const std::string& d : now) {
      if (!data.count(d)) change.remove.push_back({key.first, key.second, d});
    }
    for (const std::string& d : data) {
      if (!now.count(d)) change.add.push_back({key.first, key.second, d});
    }
  }
  return change;
}

}  // namespace sluice
