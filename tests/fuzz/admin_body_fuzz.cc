// Fuzzes the admin API's request bodies (proxy/admin/admin_api.h): PUT
// /v1/steering/regions/{region} and POST /v1/plans (and /v1/plans:preview). Invariants: no crash,
// no sanitizer report, every refusal names what is wrong, and what is accepted is in range.
#include <cstdlib>
#include <string>

#include "proxy/admin/admin_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sluice::RegionChange> change = sluice::ParseRegionChangeBody("us-east-1", body);
  if (change.ok()) {
    if (change->evacuated_bp > sluice::kBasisPoints) std::abort();
    for (const auto& [name, weight] : change->saviors) {
      if (weight > sluice::kMaxSaviorWeight || !sluice::ValidRegionName(name)) std::abort();
    }
    if (!change->has_fraction && !change->has_saviors && !change->has_healthy &&
        !change->has_cohorts && !change->has_misrouted) {
      std::abort();
    }
    for (const auto& [cohort, row] : change->cohort_saviors) {
      if (!sluice::ValidRegionName(cohort)) std::abort();
      for (const auto& [name, weight] : row) {
        if (weight > sluice::kMaxSaviorWeight || !sluice::ValidRegionName(name)) std::abort();
      }
    }
  } else if (change.status().message().empty()) {
    std::abort();
  }
  sluice::EvacuationOptions options;
  absl::StatusOr<sluice::PlanRequest> plan = sluice::ParsePlanBody(body, &options);
  if (plan.ok()) {
    for (const std::string& candidate : options.candidates) {
      if (!sluice::ValidRegionName(candidate)) std::abort();
    }
    if (!options.candidates.empty() && !options.auto_split) std::abort();
    if (!sluice::ValidRegionName(plan->region)) std::abort();
    for (uint32_t bp : plan->steps_bp) {
      if (bp > sluice::kBasisPoints) std::abort();
    }
    if (plan->hold < absl::ZeroDuration() || plan->hold > absl::Hours(24)) std::abort();
  } else if (plan.status().message().empty()) {
    std::abort();
  }
  return 0;
}
