// What the Controller's files share (steering/controller.cc, steering/controller_plans.cc): how
// its events write savior weights and fractions, and the savior guardrail both a change by hand
// and a plan's start apply. Not part of the steering API: include steering/controller.h.
#ifndef SLUICE_STEERING_CONTROLLER_INTERNAL_H_
#define SLUICE_STEERING_CONTROLLER_INTERNAL_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "steering/controller.h"

namespace sluice::controller_internal {

inline std::string FormatSaviors(const std::map<std::string, uint32_t>& saviors) {
  return absl::StrJoin(saviors, ",", [](std::string* out, const auto& s) {
    absl::StrAppend(out, s.first, "=", s.second);
  });
}

inline std::string Percent(uint32_t bp) { return FormatBasisPoints(bp); }

// FailedPrecondition naming why, when no savior in `saviors` can take `region`'s members.
absl::Status CheckSaviorsUsable(const SteeringSpec& spec, const std::string& region,
                                const std::map<std::string, uint32_t>& saviors,
                                const HealthGate& gate);

}  // namespace sluice::controller_internal

#endif  // SLUICE_STEERING_CONTROLLER_INTERNAL_H_
