// The steering table: for every region, how much of its traffic is evacuated and to which
// saviors, with savior weights per cohort. Immutable once built and versioned; the control
// thread builds a new one for every change and posts it to every worker, which swaps its
// pointer on its own loop (no locks). A table is built from a SteeringSpec (plain values, as
// the configuration or the admin API give them) by BuildSteeringTable, which checks it.
#ifndef SLUICE_STEERING_STEERING_TABLE_H_
#define SLUICE_STEERING_STEERING_TABLE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "steering/siphash.h"

namespace sluice {

inline constexpr int kMaxRegions = 64;  // regions are bits of a uint64_t mask

inline uint64_t RegionBit(int region) { return uint64_t{1} << region; }

inline constexpr uint32_t kBasisPoints = 10000;
inline constexpr uint32_t kMaxSaviorWeight = 100;

// What happens to a member who landed in a region other than its home region.
enum class MisroutedMode : uint8_t {
  kProxyHome,   // tunnel it home (unless home is evacuating it elsewhere)
  kServeLocal,  // serve it where it landed: any member from any region
};

// --- The spec: plain values, checked by BuildSteeringTable ------------------------------------

struct RegionSpec {
  std::string name;
  std::string salt;                         // empty: the name
  uint32_t evacuated_bp = 0;                // 0..10000
  bool healthy = true;                      // saviors marked unhealthy are skipped
  std::map<std::string, uint32_t> saviors;  // savior region -> weight 0..100
  std::map<std::string, std::map<std::string, uint32_t>> cohort_saviors;  // cohort -> row
  // What misrouted members landing in this region get on its nodes; unset: the spec's.
  std::optional<MisroutedMode> misrouted;
  // Clusters whose hot standbys take traffic on every node of this region ("*": every
  // cluster); an evacuation injects its saviors' (DESIGN.md, step 2).
  std::set<std::string> standbys;
  // Its records are out of the DNS names it shares with other regions (the DNS step, DESIGN.md
  // step 4). Not part of the table: the runtime's DNS control makes the zone say so.
  bool dns_out = false;
};

struct SteeringSpec {
  std::string local_region;
  MisroutedMode misrouted = MisroutedMode::kProxyHome;
  std::vector<RegionSpec> regions;   // order gives region indices
  std::vector<std::string> cohorts;  // known cohort names; order gives cohort ids
};

// --- The table ------------------------------------------------------------------------------

struct SaviorWeight {
  uint8_t region = 0;
  uint32_t weight = 0;
};

struct RegionRow {
  std::string name;
  SipKey bucket_key;  // SipKey::Derive("sluice-bucket", salt): which members move
  SipKey savior_key;  // SipKey::Derive("sluice-savior", salt): rendezvous score as a savior
  uint32_t evacuated_bp = 0;
  bool healthy = true;
  std::vector<SaviorWeight> saviors;                      // the default row
  std::vector<std::vector<SaviorWeight>> cohort_saviors;  // by cohort id; empty: default row
};

// What the decision needs for the members leaving one region by one savior row (or, with every
// weight 1, by every other region when no savior can take them), precomputed when the table is
// built: the candidates the table lets take members (not the region itself, healthy, not wholly
// evacuated), in the row's order, and the key schedule of the member's hashes. Lane 0 is the
// leaving region's bucket key, lane 1 + i candidate i's savior key, four lanes to a group, so
// one pass over the member id gives its bucket and its scores under the first three candidates.
struct SaviorPlan {
  std::vector<SaviorWeight> candidates;
  std::vector<SipLanes> lanes;  // ceil((1 + candidates) / 4) groups
  uint64_t candidate_mask = 0;  // a bit per candidate's region
};

class SteeringTable {
 public:
  uint64_t version() const { return version_; }
  int local() const { return local_; }
  MisroutedMode misrouted() const { return misrouted_; }
  int region_count() const { return static_cast<int>(regions_.size()); }
  const RegionRow& region(int index) const { return regions_[static_cast<size_t>(index)]; }
  const std::vector<std::string>& cohorts() const { return cohorts_; }
  // -1 when unknown. A linear scan over at most 64 short names.
  int FindRegion(std::string_view name) const;
  int FindCohort(std::string_view name) const;
  // The savior row for members of `cohort` (-1: none) leaving `region`.
  const std::vector<SaviorWeight>& SaviorsFor(int region, int cohort) const;
  // The precomputed SaviorsFor(region, cohort) (see SaviorPlan).
  const SaviorPlan& SaviorPlanFor(int region, int cohort) const {
    const size_t row = cohort >= 0 && static_cast<size_t>(cohort) < cohorts_.size()
                           ? static_cast<size_t>(cohort) + 1
                           : 0;
    return savior_plans_[static_cast<size_t>(region) * (cohorts_.size() + 1) + row];
  }
  // Every region but `region`, with weight 1: where its members go when no savior can take them.
  const SaviorPlan& AnyRegionPlanFor(int region) const {
    return any_region_plans_[static_cast<size_t>(region)];
  }
  // A region shedding any of its own traffic takes nobody else's.
  bool evacuating(int region) const {
    return regions_[static_cast<size_t>(region)].evacuated_bp > 0;
  }
  // The spec this table was built from (for the admin API and persistence).
  const SteeringSpec& spec() const { return spec_; }

 private:
  friend absl::StatusOr<std::shared_ptr<const SteeringTable>> BuildSteeringTable(
      const SteeringSpec& spec, uint64_t version);
  uint64_t version_ = 0;
  int local_ = 0;
  MisroutedMode misrouted_ = MisroutedMode::kProxyHome;
  void BuildPlans();
  SaviorPlan PlanOf(int from, const std::vector<SaviorWeight>& row) const;

  std::vector<RegionRow> regions_;
  std::vector<std::string> cohorts_;
  SteeringSpec spec_;
  std::vector<SaviorPlan> savior_plans_;      // by region, then cohort + 1 (0: none)
  std::vector<SaviorPlan> any_region_plans_;  // by region
};

using SteeringTablePtr = std::shared_ptr<const SteeringTable>;

// Checks `spec` (names, references, ranges) and builds the table. Messages name the place:
// `steering.regions.us-east-1.saviors.eu-west-1: weight must be 0..100, got 140`.
absl::StatusOr<SteeringTablePtr> BuildSteeringTable(const SteeringSpec& spec, uint64_t version);

const char* MisroutedModeName(MisroutedMode mode);  // "proxy_home", "serve_local"
bool ParseMisroutedMode(std::string_view text, MisroutedMode* mode);

// What may name a cluster in RegionSpec::standbys: "*" or 1..128 printable ASCII characters, no
// space.
bool ValidStandbyName(std::string_view name);

// A region name: 1..63 of [a-z0-9-_.], starting with a letter or digit.
bool ValidRegionName(std::string_view name);

// A fraction as people write it: "25%", "0.5%" (at most two decimals) or "2500bp". False for
// anything else or above 100%.
bool ParseBasisPoints(std::string_view text, uint32_t* out);
// 2500 -> "25%", 50 -> "0.5%", 1 -> "0.01%".
std::string FormatBasisPoints(uint32_t bp);

}  // namespace sluice

#endif  // SLUICE_STEERING_STEERING_TABLE_H_
