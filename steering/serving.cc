#include "steering/serving.h"

#include "absl/strings/str_format.h"

namespace sluice {

ServingState DecideServing(const SteeringTable* table, bool draining) {
  ServingState state;
  if (table) {
    const RegionRow& local = table->region(table->local());
    state.region = local.name;
    state.evacuated_bp = local.evacuated_bp;
  }
  // Draining first: the process leaves whatever the table says about its region.
  if (draining) {
    state.reason = ServingReason::kDraining;
  } else if (table && state.evacuated_bp >= kBasisPoints) {
    state.reason = ServingReason::kEvacuated;
  }
  return state;
}

const char* ServingReasonName(ServingReason reason) {
  switch (reason) {
    case ServingReason::kServing:
      return "serving";
    case ServingReason::kEvacuated:
      return "evacuated";
    case ServingReason::kDraining:
      return "draining";
  }
  return "serving";
}

std::string ServingJson(const ServingState& state) {
  // Region names are [a-z0-9-_.] (ValidRegionName): nothing to escape.
  std::string region = "null";
  std::string evacuated = "null";
  if (!state.region.empty()) {
    region = absl::StrFormat("\"%s\"", state.region);
    evacuated = absl::StrFormat("\"%s\"", FormatBasisPoints(state.evacuated_bp));
  }
  return absl::StrFormat(
      "{\"serving\": %s, \"region\": %s, \"evacuated\": %s, \"reason\": \"%s\"}\n",
      state.serving() ? "true" : "false", region, evacuated, ServingReasonName(state.reason));
}

}  // namespace sluice
