// The steering state file: the controller's state (table version, per-region values, plans)
// as JSON, written after every change and read at start, so a restart in the middle of a ramp
// resumes where it was. Decoding is strict: every field is checked for type and range and an
// error names the field ("plans[0].steps_bp[2]: must be an integer 0..10000"); nothing a
// damaged file holds is half-used.
//
// The same JSON shapes serve the admin API (GET /v1/steering, GET /v1/plans).
#ifndef SLUICE_STEERING_STATE_FILE_H_
#define SLUICE_STEERING_STATE_FILE_H_

#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>
#include "absl/status/statusor.h"
#include "steering/controller.h"

namespace sluice {

inline constexpr char kStateFormat[] = "sluice-steering-state/1";

std::string EncodeControllerState(const ControllerState& state);
absl::StatusOr<ControllerState> DecodeControllerState(std::string_view text);

// Times are Unix milliseconds; null for "never" and "not yet".
nlohmann::json RampPlanToJson(const RampPlan& plan);
nlohmann::json RegionSpecToJson(const RegionSpec& region);

// Strict readers shared with the admin API. `field` names the value in messages.
absl::StatusOr<std::map<std::string, uint32_t>> SaviorWeightsFromJson(const nlohmann::json& j,
                                                                      const std::string& field);
absl::StatusOr<std::map<std::string, std::map<std::string, uint32_t>>> CohortRowsFromJson(
    const nlohmann::json& j, const std::string& field);
absl::StatusOr<uint32_t> BasisPointsFromJson(const nlohmann::json& j, const std::string& field);

}  // namespace sluice

#endif  // SLUICE_STEERING_STATE_FILE_H_
