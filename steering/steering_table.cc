#include "steering/steering_table.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace sluice {
namespace {

absl::Status Invalid(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s", where, what));
}

}  // namespace

bool ValidRegionName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '-' && c != '_' && c != '.'))) return false;
  }
  return true;
}

bool ParseBasisPoints(std::string_view text, uint32_t* out) {
  uint64_t value = 0;
  auto digits = [](std::string_view d, uint64_t* v) {
    if (d.empty() || d.size() > 6) return false;
    for (char c : d) {
      if (c < '0' || c > '9') return false;
      *v = *v * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
  };
  if (text.size() > 2 && text.substr(text.size() - 2) == "bp") {
    if (!digits(text.substr(0, text.size() - 2), &value)) return false;
  } else if (text.size() > 1 && text.back() == '%') {
    std::string_view number = text.substr(0, text.size() - 1);
    size_t dot = number.find('.');
    std::string_view whole = number.substr(0, dot);
    std::string_view decimals = dot == std::string_view::npos ? "" : number.substr(dot + 1);
    if (dot != std::string_view::npos && (decimals.empty() || decimals.size() > 2)) return false;
    if (!digits(whole, &value)) return false;
    uint64_t fraction = 0;
    if (!decimals.empty() && !digits(decimals, &fraction)) return false;
    if (decimals.size() == 1) fraction *= 10;
    value = value * 100 + fraction;
  } else {
    return false;
  }
  if (value > kBasisPoints) return false;
  *out = static_cast<uint32_t>(value);
  return true;
}

std::string FormatBasisPoints(uint32_t bp) {
  if (bp % 100 == 0) return absl::StrFormat("%d%%", bp / 100);
  if (bp % 10 == 0) return absl::StrFormat("%d.%d%%", bp / 100, (bp % 100) / 10);
  return absl::StrFormat("%d.%02d%%", bp / 100, bp % 100);
}

int SteeringTable::FindRegion(std::string_view name) const {
  for (size_t i = 0; i < regions_.size(); ++i) {
    if (regions_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

int SteeringTable::FindCohort(std::string_view name) const {
  for (size_t i = 0; i < cohorts_.size(); ++i) {
    if (cohorts_[i] == name) return static_cast<int>(i);
  }
  return -1;
}

const std::vector<SaviorWeight>& SteeringTable::SaviorsFor(int region, int cohort) const {
  const RegionRow& row = regions_[static_cast<size_t>(region)];
  if (cohort >= 0 && static_cast<size_t>(cohort) < row.cohort_saviors.size() &&
      !row.cohort_saviors[static_cast<size_t>(cohort)].empty()) {
    return row.cohort_saviors[static_cast<size_t>(cohort)];
  }
  return row.saviors;
}

SaviorPlan SteeringTable::PlanOf(int from, const std::vector<SaviorWeight>& row) const {
  SaviorPlan plan;
  plan.lanes.emplace_back();
  plan.lanes.back().Add(region(from).bucket_key);
  for (const SaviorWeight& s : row) {
    const RegionRow& candidate = region(s.region);
    // What the table alone rules out; what a node cannot reach is the request's (Decide).
    if (s.region == from || !candidate.healthy || candidate.evacuated_bp >= kBasisPoints) continue;
    plan.candidates.push_back(s);
    plan.candidate_mask |= uint64_t{1} << s.region;
    if (!plan.lanes.back().Add(candidate.savior_key)) {
      plan.lanes.emplace_back();
      plan.lanes.back().Add(candidate.savior_key);
    }
  }
  return plan;
}

void SteeringTable::BuildPlans() {
  std::vector<SaviorWeight> every_region;
  for (int r = 0; r < region_count(); ++r) {
    every_region.push_back(SaviorWeight{static_cast<uint8_t>(r), 1});
  }
  for (int r = 0; r < region_count(); ++r) {
    savior_plans_.push_back(PlanOf(r, SaviorsFor(r, -1)));
    for (size_t c = 0; c < cohorts_.size(); ++c) {
      savior_plans_.push_back(PlanOf(r, SaviorsFor(r, static_cast<int>(c))));
    }
    any_region_plans_.push_back(PlanOf(r, every_region));
  }
}

const char* MisroutedModeName(MisroutedMode mode) {
  return mode == MisroutedMode::kProxyHome ? "proxy_home" : "serve_local";
}

bool ParseMisroutedMode(std::string_view text, MisroutedMode* mode) {
  if (text == "proxy_home") {
    *mode = MisroutedMode::kProxyHome;
  } else if (text == "serve_local") {
    *mode = MisroutedMode::kServeLocal;
  } else {
    return false;
  }
  return true;
}

bool ValidStandbyName(std::string_view name) {
  if (name == "*") return true;
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

absl::StatusOr<SteeringTablePtr> BuildSteeringTable(const SteeringSpec& spec, uint64_t version) {
  auto table = std::make_shared<SteeringTable>();
  table->version_ = version;
  table->misrouted_ = spec.misrouted;
  table->cohorts_ = spec.cohorts;
  table->spec_ = spec;
  if (spec.regions.empty()) return Invalid("steering.regions", "at least one region is needed");
  if (spec.regions.size() > static_cast<size_t>(kMaxRegions)) {
    return Invalid("steering.regions",
                   absl::StrFormat("at most %d regions, got %d", kMaxRegions, spec.regions.size()));
  }
  for (size_t i = 0; i < spec.cohorts.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (spec.cohorts[i] == spec.cohorts[j]) {
        return Invalid("steering.cohorts", absl::StrFormat("cohort \"%s\" twice", spec.cohorts[i]));
      }
    }
  }
  for (const RegionSpec& r : spec.regions) {
    const std::string where = "steering.regions." + r.name;
    if (!ValidRegionName(r.name)) {
      return Invalid(where, "a region name is 1 to 63 of a-z, 0-9, '-', '_', '.'");
    }
    if (table->FindRegion(r.name) >= 0) return Invalid(where, "region listed twice");
    RegionRow row;
    row.name = r.name;
    const std::string& salt = r.salt.empty() ? r.name : r.salt;
    row.bucket_key = SipKey::Derive("sluice-bucket", salt);
    row.savior_key = SipKey::Derive("sluice-savior", salt);
    row.healthy = r.healthy;
    if (r.evacuated_bp > kBasisPoints) {
      return Invalid(where + ".evacuate", absl::StrFormat("must be 0%% to 100%%, got %s",
                                                          FormatBasisPoints(r.evacuated_bp)));
    }
    row.evacuated_bp = r.evacuated_bp;
    table->regions_.push_back(std::move(row));
  }
  table->local_ = table->FindRegion(spec.local_region);
  if (table->local_ < 0) {
    return Invalid("steering.local_region",
                   absl::StrFormat("\"%s\" is not one of steering.regions", spec.local_region));
  }
  if (const auto& own = spec.regions[static_cast<size_t>(table->local_)].misrouted; own) {
    table->misrouted_ = *own;
  }
  for (const RegionSpec& r : spec.regions) {
    for (const std::string& cluster : r.standbys) {
      if (!ValidStandbyName(cluster)) {
        return Invalid("steering.regions." + r.name + ".standbys",
                       absl::StrFormat("\"%s\" is not a cluster name", cluster));
      }
    }
  }
  // Savior rows reference regions by name: resolve them once every region is known.
  auto resolve = [&](const std::string& where, const std::string& self,
                     const std::map<std::string, uint32_t>& weights,
                     std::vector<SaviorWeight>* out) -> absl::Status {
    for (const auto& [name, weight] : weights) {
      int index = table->FindRegion(name);
      if (index < 0) return Invalid(where + "." + name, "not one of steering.regions");
      if (name == self) return Invalid(where + "." + name, "a region cannot be its own savior");
      if (weight > kMaxSaviorWeight) {
        return Invalid(where + "." + name,
                       absl::StrFormat("weight must be 0..%d, got %d", kMaxSaviorWeight, weight));
      }
      if (weight > 0) out->push_back(SaviorWeight{static_cast<uint8_t>(index), weight});
    }
    return absl::OkStatus();
  };
  for (size_t i = 0; i < spec.regions.size(); ++i) {
    const RegionSpec& r = spec.regions[i];
    RegionRow& row = table->regions_[i];
    const std::string where = "steering.regions." + r.name;
    absl::Status status = resolve(where + ".saviors", r.name, r.saviors, &row.saviors);
    if (!status.ok()) return status;
    if (row.evacuated_bp > 0 && row.saviors.empty()) {
      return Invalid(where + ".saviors",
                     "an evacuating region needs at least one savior with a weight above 0");
    }
    row.cohort_saviors.resize(spec.cohorts.size());
    for (const auto& [cohort, weights] : r.cohort_saviors) {
      int id = table->FindCohort(cohort);
      if (id < 0) {
        return Invalid(where + ".cohorts." + cohort,
                       "not a cohort named by steering.cohorts rules");
      }
      status = resolve(where + ".cohorts." + cohort, r.name, weights,
                       &row.cohort_saviors[static_cast<size_t>(id)]);
      if (!status.ok()) return status;
    }
  }
  table->BuildPlans();
  return SteeringTablePtr(std::move(table));
}

}  // namespace sluice
