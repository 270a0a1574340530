// The steering part of the configuration: the regions (each with its sluice's tunnel
// endpoints), the local region, where a request's member id, home region and cohort come from,
// the tunnel key, and the initial steering table (the evacuations written in the file). Parsed
// by proxy/config/steering_config_loader.h; read-only afterwards.
#ifndef SLUICE_PROXY_CONFIG_STEERING_CONFIG_H_
#define SLUICE_PROXY_CONFIG_STEERING_CONFIG_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "proxy/config/cohort_cidr_map.h"
#include "steering/hop_marker.h"
#include "steering/siphash.h"
#include "steering/steering_table.h"

namespace sluice {

// Where the member id comes from, tried in order; the client address is the last resort.
struct MemberIdSource {
  enum class Kind : uint8_t { kClaim, kCookie, kHeader };
  Kind kind = Kind::kClaim;
  std::string name;  // cookie or header name
};

// Where the home region comes from, tried in order; a value that names no region is skipped.
struct HomeRegionSource {
  enum class Kind : uint8_t { kClaim, kHeader, kMap };
  Kind kind = Kind::kClaim;
  std::string name;  // header name
};

// Member id -> home region by prefix (longest wins) or, failing that, by hash range:
// SipHash-2-4(SipKey::Derive("sluice-home", salt), member) mod 10000 in [from, to).
struct HomeRegionMap {
  SipKey key = SipKey::Derive("sluice-home", "");
  std::vector<std::pair<std::string, int>> prefixes;  // longest first
  struct Range {
    uint32_t from = 0;
    uint32_t to = 0;
    int region = 0;
  };
  std::vector<Range> ranges;
  bool empty() const { return prefixes.empty() && ranges.empty(); }
};

// A header or a verified claim whose value names a cohort, or a CIDR file that maps the real
// client address to one (proxy/config/cohort_cidr_map.h).
struct CohortRule {
  enum class Kind : uint8_t { kHeader, kClaimTier, kClaimHomeRegion, kCidrFile };
  Kind kind = Kind::kHeader;
  std::string name;                                 // header name
  std::vector<std::pair<std::string, int>> values;  // value -> cohort id
  // kCidrFile: the file (resolved against the configuration's directory) and its map as read
  // with this configuration. Workers may hold a newer map of the same file (the file watch).
  std::string path;
  CohortCidrMapPtr cidr;
};

struct SteeringConfig {
  bool enabled = false;  // false: no regions configured, every request is served locally
  SteeringSpec spec;     // the initial table as written
  SteeringTablePtr table;
  std::vector<int> tunnel_cluster;  // by region index: index into Config::clusters; -1: local
  std::vector<MemberIdSource> member_id;
  std::vector<HomeRegionSource> home_region;
  HomeRegionMap home_map;
  std::vector<CohortRule> cohort_rules;
  std::shared_ptr<const HopSigner> signer;
  int64_t max_skew_seconds = 30;       // at most kMaxHopSkewSeconds
  bool failover = true;                // Isthmus: a request the local region fails goes to a savior
  uint64_t replay_buffer = 64 * 1024;  // body kept so a tunnel or failover attempt can replay it
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_STEERING_CONFIG_H_
