// The JSON bodies of PUT /v1/steering/regions/{region} and POST /v1/plans (and
// /v1/plans:preview), parsed into the controller's requests (proxy/admin/admin_api.h). Split
// from admin_api.cc, which keeps the routes, the screening and the handlers.
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "common/units.h"
#include "proxy/admin/admin_api.h"
#include "steering/state_file.h"

namespace sluice {
namespace {

using nlohmann::json;

absl::StatusOr<json> ParseObject(std::string_view body,
                                 std::initializer_list<std::string_view> allowed) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("the body is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) return absl::InvalidArgumentError(absl::StrFormat("%s: unknown field", key));
  }
  return j;
}

absl::Status BoolField(const json& j, const char* key, bool* out, bool* present = nullptr) {
  auto it = j.find(key);
  if (present) *present = it != j.end();
  if (it == j.end()) return absl::OkStatus();
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: must be true or false", key));
  }
  *out = it->get<bool>();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint32_t> FractionFromJson(const json& j, const std::string& field) {
  uint32_t bp = 0;
  if (j.is_string()) {
    if (ParseBasisPoints(j.get<std::string>(), &bp)) return bp;
  } else if (j.is_number()) {
    double percent = j.get<double>();
    double scaled = percent * 100;
    if (percent >= 0 && percent <= 100 && std::fabs(scaled - std::round(scaled)) < 1e-6) {
      return static_cast<uint32_t>(std::lround(scaled));
    }
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s: must be a percentage 0..100 with at most two decimals (25, \"25%%\" or \"2500bp\")",
      field));
}

absl::StatusOr<RegionChange> ParseRegionChangeBody(std::string_view region, std::string_view body) {
  absl::StatusOr<json> j = ParseObject(
      body, {"fraction", "saviors", "healthy", "version", "force", "cohorts", "misrouted"});
  if (!j.ok()) return j.status();
  RegionChange change;
  change.region = std::string(region);
  if (auto it = j->find("fraction"); it != j->end()) {
    absl::StatusOr<uint32_t> bp = FractionFromJson(*it, "fraction");
    if (!bp.ok()) return bp.status();
    change.has_fraction = true;
    change.evacuated_bp = *bp;
  }
  if (auto it = j->find("saviors"); it != j->end()) {
    auto saviors = SaviorWeightsFromJson(*it, "saviors");
    if (!saviors.ok()) return saviors.status();
    change.has_saviors = true;
    change.saviors = *std::move(saviors);
  }
  if (absl::Status s = BoolField(*j, "healthy", &change.healthy, &change.has_healthy); !s.ok()) {
    return s;
  }
  if (auto it = j->find("version"); it != j->end()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0) {
      return absl::InvalidArgumentError(
          "version: must be the table version the change was made against (a positive integer)");
    }
    change.expected_version = it->get<uint64_t>();
  }
  if (absl::Status s = BoolField(*j, "force", &change.force); !s.ok()) return s;
  if (auto it = j->find("cohorts"); it != j->end()) {
    auto rows = CohortRowsFromJson(*it, "cohorts");
    if (!rows.ok()) return rows.status();
    change.has_cohorts = true;
    change.cohort_saviors = *std::move(rows);
  }
  if (auto it = j->find("misrouted"); it != j->end()) {
    change.has_misrouted = true;
    MisroutedMode mode;
    if (it->is_string() && ParseMisroutedMode(it->get<std::string>(), &mode)) {
      change.misrouted = mode;
    } else if (!it->is_null()) {
      return absl::InvalidArgumentError(
          "misrouted: must be \"proxy_home\", \"serve_local\" or null (the configuration's)");
    }
  }
  if (!change.has_fraction && !change.has_saviors && !change.has_healthy && !change.has_cohorts &&
      !change.has_misrouted) {
    return absl::InvalidArgumentError(
        "the body changes nothing: give fraction, saviors, healthy, cohorts or misrouted");
  }
  return change;
}

absl::StatusOr<PlanRequest> ParsePlanBody(std::string_view body, EvacuationOptions* options) {
  absl::StatusOr<json> j = ParseObject(body, {"kind", "region", "saviors", "ramp", "hold", "force",
                                              "cohorts", "candidates", "hook", "dns"});
  if (!j.ok()) return j.status();
  PlanRequest plan;
  auto kind = j->find("kind");
  if (kind == j->end() || !kind->is_string() ||
      (kind->get<std::string>() != "evacuate" && kind->get<std::string>() != "restore")) {
    return absl::InvalidArgumentError("kind: must be \"evacuate\" or \"restore\"");
  }
  plan.kind =
      kind->get<std::string>() == "evacuate" ? RampPlan::Kind::kEvacuate : RampPlan::Kind::kRestore;
  auto region = j->find("region");
  if (region == j->end() || !region->is_string() || !ValidRegionName(region->get<std::string>())) {
    return absl::InvalidArgumentError("region: must be a region name");
  }
  plan.region = region->get<std::string>();
  if (auto it = j->find("saviors"); it != j->end()) {
    if (plan.kind == RampPlan::Kind::kRestore) {
      return absl::InvalidArgumentError("saviors: a restore has none");
    }
    if (it->is_string() && it->get<std::string>() == "auto") {
      if (!options) return absl::InvalidArgumentError("saviors: \"auto\" is not taken here");
      options->auto_split = true;
    } else {
      auto saviors = SaviorWeightsFromJson(*it, "saviors");
      if (!saviors.ok()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s (or \"auto\": by the saviors' capacity)", saviors.status().message()));
      }
      plan.saviors = *std::move(saviors);
    }
  }
  if (auto it = j->find("candidates"); it != j->end()) {
    if (!options || !options->auto_split) {
      return absl::InvalidArgumentError("candidates: only with \"saviors\": \"auto\"");
    }
    if (!it->is_array() || it->size() > kMaxRegions) {
      return absl::InvalidArgumentError("candidates: must be a list of region names");
    }
    for (const json& c : *it) {
      if (!c.is_string() || !ValidRegionName(c.get<std::string>())) {
        return absl::InvalidArgumentError("candidates: must be a list of region names");
      }
      options->candidates.push_back(c.get<std::string>());
    }
  }
  if (auto it = j->find("cohorts"); it != j->end()) {
    if (plan.kind == RampPlan::Kind::kRestore) {
      return absl::InvalidArgumentError("cohorts: a restore has none");
    }
    auto rows = CohortRowsFromJson(*it, "cohorts");
    if (!rows.ok()) return rows.status();
    plan.cohort_saviors = *std::move(rows);
  }
  if (auto it = j->find("hook"); it != j->end()) {
    if (!it->is_boolean()) return absl::InvalidArgumentError("hook: must be true or false");
    if (options) options->no_hook = !it->get<bool>();
  }
  if (auto it = j->find("dns"); it != j->end()) {
    if (!it->is_boolean()) return absl::InvalidArgumentError("dns: must be true or false");
    if (plan.kind == RampPlan::Kind::kRestore) {
      return absl::InvalidArgumentError("dns: a restore puts records that are out back by itself");
    }
    if (options) options->dns = it->get<bool>();
  }
  if (auto it = j->find("ramp"); it != j->end()) {
    if (!it->is_array() || it->empty() || it->size() > 100) {
      return absl::InvalidArgumentError("ramp: must be a list of 1..100 percentages");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      absl::StatusOr<uint32_t> bp = FractionFromJson((*it)[i], absl::StrFormat("ramp[%d]", i));
      if (!bp.ok()) return bp.status();
      plan.steps_bp.push_back(*bp);
    }
  }
  if (auto it = j->find("hold"); it != j->end()) {
    absl::StatusOr<absl::Duration> hold = absl::InvalidArgumentError("");
    if (it->is_string()) hold = ParseDurationText(it->get<std::string>());
    if (it->is_number_unsigned()) hold = absl::Seconds(it->get<uint64_t>() % 100000);
    if (!hold.ok() || *hold < absl::ZeroDuration() || *hold > absl::Hours(24)) {
      return absl::InvalidArgumentError("hold: must be a duration 0s..24h (\"10s\", \"2m\")");
    }
    plan.hold = *hold;
  }
  if (absl::Status s = BoolField(*j, "force", &plan.force); !s.ok()) return s;
  return plan;
}

}  // namespace sluice
