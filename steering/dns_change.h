// The DNS step's pure core (DESIGN.md, step 4): which records of the shared names an
// evacuation takes out and a restore puts back, computed from what the authoritative server
// holds now, so that the update is a compare-and-swap (RFC 2136 prerequisites: exactly the
// record sets that were read) and re-applying a state that is already there sends nothing.
//
// A name is shared when two or more regions have records under it; names only one region has
// are never touched (taking them out moves nobody). Only A and AAAA records are managed.
// Nothing here does I/O: proxy/control/dns_control.h reads, sends and retries.
#ifndef SLUICE_STEERING_DNS_CHANGE_H_
#define SLUICE_STEERING_DNS_CHANGE_H_

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

struct DnsRecord {
  std::string name;  // absolute, lower case, with the final dot: "api.example.com."
  std::string type;  // "A" or "AAAA"
  std::string data;  // canonical text: "192.0.2.1", "2001:db8::1"
  bool operator==(const DnsRecord&) const = default;
  bool operator<(const DnsRecord& o) const {
    return std::tie(name, type, data) < std::tie(o.name, o.type, o.data);
  }
};

// A record set's key and its records' data.
using DnsRRsetKey = std::pair<std::string, std::string>;  // name, type
using DnsRRsets = std::map<DnsRRsetKey, std::set<std::string>>;

// A record as configured: `name` relative to `zone` unless it ends with a dot ("@": the zone
// itself), any case; `type` A or AAAA; `data` an address of that family. The canonical
// record, or why not.
absl::StatusOr<DnsRecord> CanonicalDnsRecord(std::string_view zone, std::string_view name,
                                             std::string_view type, std::string_view data);
// "Example.COM" -> "example.com."; an empty or malformed name is an error.
absl::StatusOr<std::string> CanonicalDnsName(std::string_view name);

struct DnsRegionRecords {
  std::string region;
  std::vector<DnsRecord> records;
};

// The record sets a change reads and may write: every (name, type) of a shared name.
std::vector<DnsRRsetKey> ManagedRRsets(const std::vector<DnsRegionRecords>& regions);

struct DnsChange {
  // The prerequisites: each record set touched, exactly as it was read (empty: must not exist).
  DnsRRsets before;
  std::vector<DnsRecord> remove;
  std::vector<DnsRecord> add;
  bool empty() const { return remove.empty() && add.empty(); }
  std::string Summary() const;  // "-api.example.com. A 192.0.2.1, +..."; "no change"
};

// What makes `current` (the managed record sets as read) hold, for each shared name, the
// records of every region not in `out`, and none of those in `out`. Records that are no
// region's (added by someone else) stay. Refused, with the name, when it would leave a shared
// name without any record.
absl::StatusOr<DnsChange> PlanDnsChange(const std::vector<DnsRegionRecords>& regions,
                                        const std::set<std::string>& out, const DnsRRsets& current);

}  // namespace sluice

#endif  // SLUICE_STEERING_DNS_CHANGE_H_
