#include "steering/state_file.h"

#include "steering/detector.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"

namespace sluice {
namespace {

using nlohmann::json;

json TimeToJson(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return nullptr;
  return absl::ToUnixMillis(t);
}

absl::Status FieldError(const std::string& field, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s", field, what));
}

absl::StatusOr<uint64_t> Unsigned(const json& j, const std::string& field, uint64_t max) {
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<int64_t>() >= 0)) {
    return FieldError(field, absl::StrFormat("must be an integer 0..%d", max));
  }
  uint64_t v = j.get<uint64_t>();
  if (v > max) return FieldError(field, absl::StrFormat("must be an integer 0..%d", max));
  return v;
}

absl::StatusOr<std::string> String(const json& j, const std::string& field) {
  if (!j.is_string()) return FieldError(field, "must be a string");
  return j.get<std::string>();
}

// Null: `fallback`.
absl::StatusOr<absl::Time> TimeFromJson(const json& j, const std::string& field,
                                        absl::Time fallback) {
  if (j.is_null()) return fallback;
  if (!j.is_number_integer()) return FieldError(field, "must be Unix milliseconds or null");
  return absl::FromUnixMillis(j.get<int64_t>());
}

const json& Member(const json& object, const char* key) {
  static const json kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

absl::StatusOr<RegionSpec> RegionFromJson(const std::string& name, const json& j,
                                          const std::string& field) {
  if (!j.is_object()) return FieldError(field, "must be an object");
  RegionSpec region;
  region.name = name;
  auto bp = BasisPointsFromJson(Member(j, "evacuated_bp"), field + ".evacuated_bp");
  if (!bp.ok()) return bp.status();
  region.evacuated_bp = *bp;
  const json& healthy = Member(j, "healthy");
  if (!healthy.is_boolean()) return FieldError(field + ".healthy", "must be true or false");
  region.healthy = healthy.get<bool>();
  auto saviors = SaviorWeightsFromJson(Member(j, "saviors"), field + ".saviors");
  if (!saviors.ok()) return saviors.status();
  region.saviors = *std::move(saviors);
  const json& cohorts = Member(j, "cohort_saviors");
  if (!cohorts.is_object()) return FieldError(field + ".cohort_saviors", "must be an object");
  for (const auto& [cohort, row] : cohorts.items()) {
    auto weights = SaviorWeightsFromJson(row, field + ".cohort_saviors." + cohort);
    if (!weights.ok()) return weights.status();
    region.cohort_saviors[cohort] = *std::move(weights);
  }
  // Added later: absent in older files.
  if (const json& m = Member(j, "misrouted"); !m.is_null()) {
    MisroutedMode mode;
    if (!m.is_string() || !ParseMisroutedMode(m.get<std::string>(), &mode)) {
      return FieldError(field + ".misrouted", "must be proxy_home, serve_local or null");
    }
    region.misrouted = mode;
  }
  if (const json& standbys = Member(j, "standbys"); !standbys.is_null()) {
    if (!standbys.is_array() || standbys.size() > 1000) {
      return FieldError(field + ".standbys", "must be a list of at most 1000 cluster names");
    }
    for (const json& c : standbys) {
      if (!c.is_string() || !ValidStandbyName(c.get<std::string>())) {
        return FieldError(field + ".standbys", "must hold cluster names (or \"*\")");
      }
      region.standbys.insert(c.get<std::string>());
    }
  }
  if (const json& dns_out = Member(j, "dns_out"); !dns_out.is_null()) {
    if (!dns_out.is_boolean()) return FieldError(field + ".dns_out", "must be true or false");
    region.dns_out = dns_out.get<bool>();
  }
  return region;
}

}  // namespace

absl::StatusOr<std::map<std::string, std::map<std::string, uint32_t>>> CohortRowsFromJson(
    const json& j, const std::string& field) {
  if (!j.is_object()) return FieldError(field, "must be an object of cohort: {region: weight}");
  std::map<std::string, std::map<std::string, uint32_t>> rows;
  for (const auto& [cohort, row] : j.items()) {
    if (!ValidRegionName(cohort)) {
      return FieldError(field, absl::StrFormat("\"%s\" is not a cohort name", cohort));
    }
    auto weights = SaviorWeightsFromJson(row, field + "." + cohort);
    if (!weights.ok()) return weights.status();
    rows[cohort] = *std::move(weights);
  }
  return rows;
}

namespace {

absl::StatusOr<RampPlan> PlanFromJson(const json& j, const std::string& field) {
  if (!j.is_object()) return FieldError(field, "must be an object");
  RampPlan plan;
  auto id = Unsigned(Member(j, "id"), field + ".id", std::numeric_limits<uint32_t>::max());
  if (!id.ok()) return id.status();
  if (*id == 0) return FieldError(field + ".id", "must be positive");
  plan.id = *id;
  auto kind = String(Member(j, "kind"), field + ".kind");
  if (!kind.ok()) return kind.status();
  if (*kind == "evacuate") {
    plan.kind = RampPlan::Kind::kEvacuate;
  } else if (*kind == "restore") {
    plan.kind = RampPlan::Kind::kRestore;
  } else {
    return FieldError(field + ".kind", "must be evacuate or restore");
  }
  auto state = String(Member(j, "state"), field + ".state");
  if (!state.ok()) return state.status();
  bool known = false;
  for (RampPlan::State s :
       {RampPlan::State::kRunning, RampPlan::State::kHolding, RampPlan::State::kDone,
        RampPlan::State::kAborted, RampPlan::State::kFailed}) {
    if (*state == RampPlanStateName(s)) {
      plan.state = s;
      known = true;
    }
  }
  if (!known) {
    return FieldError(field + ".state", "must be running, holding, done, aborted or failed");
  }
  auto region = String(Member(j, "region"), field + ".region");
  if (!region.ok()) return region.status();
  if (!ValidRegionName(*region)) return FieldError(field + ".region", "not a region name");
  plan.region = *region;
  auto saviors = SaviorWeightsFromJson(Member(j, "saviors"), field + ".saviors");
  if (!saviors.ok()) return saviors.status();
  plan.saviors = *std::move(saviors);
  if (j.contains("replaced_saviors")) {  // added later: absent in older files
    auto replaced =
        SaviorWeightsFromJson(Member(j, "replaced_saviors"), field + ".replaced_saviors");
    if (!replaced.ok()) return replaced.status();
    plan.replaced_saviors = *std::move(replaced);
  }
  const json& steps = Member(j, "steps_bp");
  if (!steps.is_array() || steps.empty() || steps.size() > 100) {
    return FieldError(field + ".steps_bp", "must be a list of 1..100 fractions");
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    auto bp = BasisPointsFromJson(steps[i], absl::StrFormat("%s.steps_bp[%d]", field, i));
    if (!bp.ok()) return bp.status();
    plan.steps_bp.push_back(*bp);
  }
  auto start = BasisPointsFromJson(Member(j, "start_bp"), field + ".start_bp");
  if (!start.ok()) return start.status();
  plan.start_bp = *start;
  auto hold = Unsigned(Member(j, "hold_ms"), field + ".hold_ms", 86400000);
  if (!hold.ok()) return hold.status();
  plan.hold = absl::Milliseconds(static_cast<int64_t>(*hold));
  const json& step = Member(j, "step");
  if (!step.is_number_integer() || step.get<int64_t>() < -1 ||
      step.get<int64_t>() >= static_cast<int64_t>(plan.steps_bp.size())) {
    return FieldError(field + ".step", "must be -1 or the index of one of steps_bp");
  }
  plan.step = static_cast<int>(step.get<int64_t>());
  auto next = TimeFromJson(Member(j, "next_at_ms"), field + ".next_at_ms",
                           plan.active() ? absl::InfinitePast() : absl::InfiniteFuture());
  if (!next.ok()) return next.status();
  plan.next_at = *next;
  auto failures = Unsigned(Member(j, "gate_failures"), field + ".gate_failures", 1000000);
  if (!failures.ok()) return failures.status();
  plan.gate_failures = static_cast<uint32_t>(*failures);
  auto message = String(Member(j, "gate_message"), field + ".gate_message");
  if (!message.ok()) return message.status();
  plan.gate_message = *message;
  // Added later: absent in older files.
  if (j.contains("rollbacks")) {
    auto rollbacks = Unsigned(Member(j, "rollbacks"), field + ".rollbacks", 1000000);
    if (!rollbacks.ok()) return rollbacks.status();
    plan.rollbacks = static_cast<uint32_t>(*rollbacks);
  }
  if (j.contains("last_rollback")) {
    auto last = String(Member(j, "last_rollback"), field + ".last_rollback");
    if (!last.ok()) return last.status();
    plan.last_rollback = *last;
  }
  auto held = TimeFromJson(Member(j, "held_since_ms"), field + ".held_since_ms",
                           absl::InfinitePast());  // added later: absent in older files
  if (!held.ok()) return held.status();
  plan.held_since = *held;
  auto actor = String(Member(j, "actor"), field + ".actor");
  if (!actor.ok()) return actor.status();
  plan.actor = *actor;
  auto created = TimeFromJson(Member(j, "created_ms"), field + ".created_ms", absl::UnixEpoch());
  if (!created.ok()) return created.status();
  plan.created = *created;
  auto finished =
      TimeFromJson(Member(j, "finished_ms"), field + ".finished_ms", absl::InfinitePast());
  if (!finished.ok()) return finished.status();
  plan.finished = *finished;
  // Capacity (added later: absent in older files).
  if (j.contains("cohort_saviors")) {
    auto rows = CohortRowsFromJson(Member(j, "cohort_saviors"), field + ".cohort_saviors");
    if (!rows.ok()) return rows.status();
    plan.cohort_saviors = *std::move(rows);
  }
  if (j.contains("replaced_cohorts")) {
    auto rows = CohortRowsFromJson(Member(j, "replaced_cohorts"), field + ".replaced_cohorts");
    if (!rows.ok()) return rows.status();
    plan.replaced_cohorts = *std::move(rows);
  }
  for (const char* flag : {"auto_split", "preparing", "forced"}) {
    const json& v = Member(j, flag);
    if (v.is_null()) continue;
    if (!v.is_boolean()) return FieldError(field + "." + flag, "must be true or false");
    const std::string name = flag;
    (name == "auto_split" ? plan.auto_split
     : name == "forced"   ? plan.forced
                          : plan.preparing) = v.get<bool>();
  }
  if (const json& wait = Member(j, "prepare_wait_ms"); !wait.is_null()) {
    auto ms = Unsigned(wait, field + ".prepare_wait_ms", 86400000);
    if (!ms.ok()) return ms.status();
    plan.prepare_wait = absl::Milliseconds(static_cast<int64_t>(*ms));
  }
  if (const json& injected = Member(j, "injected"); !injected.is_null()) {
    if (!injected.is_array() || injected.size() > kMaxRegions) {
      return FieldError(field + ".injected", "must be a list of region names");
    }
    for (const json& r : injected) {
      if (!r.is_string() || !ValidRegionName(r.get<std::string>())) {
        return FieldError(field + ".injected", "must be a list of region names");
      }
      plan.injected.push_back(r.get<std::string>());
    }
  }
  if (const json& hook = Member(j, "hook"); !hook.is_null()) {
    bool known_hook = false;
    for (RampPlan::Hook h : {RampPlan::Hook::kNone, RampPlan::Hook::kPending, RampPlan::Hook::kDone,
                             RampPlan::Hook::kFailed}) {
      if (hook.is_string() && hook.get<std::string>() == RampPlanHookName(h)) {
        plan.hook = h;
        known_hook = true;
      }
    }
    if (!known_hook) return FieldError(field + ".hook", "must be none, pending, done or failed");
  }
  if (j.contains("hook_output")) {
    auto output = String(Member(j, "hook_output"), field + ".hook_output");
    if (!output.ok()) return output.status();
    plan.hook_output = *output;
  }
  auto until = TimeFromJson(Member(j, "prepare_until_ms"), field + ".prepare_until_ms",
                            absl::InfinitePast());
  if (!until.ok()) return until.status();
  plan.prepare_until = *until;
  if (const json& dns = Member(j, "dns"); !dns.is_null()) {
    if (!dns.is_string() || !ParseRampPlanDns(dns.get<std::string>(), &plan.dns)) {
      return FieldError(field + ".dns", "must be none, waiting, pending, applied or failed");
    }
  }
  if (j.contains("dns_message")) {
    auto dns_message = String(Member(j, "dns_message"), field + ".dns_message");
    if (!dns_message.ok()) return dns_message.status();
    plan.dns_message = *dns_message;
  }
  return plan;
}

}  // namespace

absl::StatusOr<uint32_t> BasisPointsFromJson(const json& j, const std::string& field) {
  if (!j.is_number_integer() || j.get<int64_t>() < 0 || j.get<int64_t>() > kBasisPoints) {
    return FieldError(field, "must be an integer 0..10000 (basis points)");
  }
  return static_cast<uint32_t>(j.get<int64_t>());
}

absl::StatusOr<std::map<std::string, uint32_t>> SaviorWeightsFromJson(const json& j,
                                                                      const std::string& field) {
  if (!j.is_object()) return FieldError(field, "must be an object of region: weight");
  std::map<std::string, uint32_t> weights;
  for (const auto& [name, weight] : j.items()) {
    if (!ValidRegionName(name)) {
      return FieldError(field, absl::StrFormat("\"%s\" is not a region name", name));
    }
    if (!weight.is_number_integer() || weight.get<int64_t>() < 0 ||
        weight.get<int64_t>() > kMaxSaviorWeight) {
      return FieldError(field + "." + name, "weight must be an integer 0..100");
    }
    weights[name] = static_cast<uint32_t>(weight.get<int64_t>());
  }
  return weights;
}

namespace {

json CohortRowsToJson(const std::map<std::string, std::map<std::string, uint32_t>>& rows) {
  json out = json::object();
  for (const auto& [cohort, row] : rows) {
    out[cohort] = row.empty() ? json::object() : json(row);
  }
  return out;
}

}  // namespace

json RegionSpecToJson(const RegionSpec& region) {
  json out{{"evacuated_bp", region.evacuated_bp},
           {"healthy", region.healthy},
           {"saviors", region.saviors.empty() ? json::object() : json(region.saviors)},
           {"cohort_saviors", CohortRowsToJson(region.cohort_saviors)}};
  if (region.misrouted) out["misrouted"] = MisroutedModeName(*region.misrouted);
  if (!region.standbys.empty()) out["standbys"] = region.standbys;
  if (region.dns_out) out["dns_out"] = true;  // only when set: older nodes read the state
  return out;
}

json RampPlanToJson(const RampPlan& plan) {
  return json{{"id", plan.id},
              {"kind", RampPlanKindName(plan.kind)},
              {"state", RampPlanStateName(plan.state)},
              {"region", plan.region},
              {"saviors", plan.saviors.empty() ? json::object() : json(plan.saviors)},
              {"replaced_saviors",
               plan.replaced_saviors.empty() ? json::object() : json(plan.replaced_saviors)},
              {"steps_bp", plan.steps_bp},
              {"start_bp", plan.start_bp},
              {"hold_ms", absl::ToInt64Milliseconds(plan.hold)},
              {"step", plan.step},
              {"next_at_ms", TimeToJson(plan.next_at)},
              {"gate_failures", plan.gate_failures},
              {"gate_message", plan.gate_message},
              {"rollbacks", plan.rollbacks},
              {"last_rollback", plan.last_rollback},
              {"held_since_ms", TimeToJson(plan.held_since)},
              {"actor", plan.actor},
              {"created_ms", TimeToJson(plan.created)},
              {"finished_ms", TimeToJson(plan.finished)},
              {"cohort_saviors", CohortRowsToJson(plan.cohort_saviors)},
              {"replaced_cohorts", CohortRowsToJson(plan.replaced_cohorts)},
              {"auto_split", plan.auto_split},
              {"injected", plan.injected},
              {"preparing", plan.preparing},
              {"hook", RampPlanHookName(plan.hook)},
              {"hook_output", plan.hook_output},
              {"prepare_until_ms", TimeToJson(plan.prepare_until)},
              {"prepare_wait_ms", absl::ToInt64Milliseconds(plan.prepare_wait)},
              {"forced", plan.forced},
              {"dns", RampPlanDnsName(plan.dns)},
              {"dns_message", plan.dns_message}};
}

std::string EncodeControllerState(const ControllerState& state) {
  json regions = json::object();
  for (const RegionSpec& region : state.regions) regions[region.name] = RegionSpecToJson(region);
  json plans = json::array();
  for (const RampPlan& plan : state.plans) plans.push_back(RampPlanToJson(plan));
  json out{{"format", kStateFormat},
           {"version", state.version},
           {"next_plan_id", state.next_plan_id},
           {"regions", regions},
           {"plans", plans}};
  // Only once someone set it, so that nodes of an older release still read the state.
  if (!state.detection_mode.empty()) {
    out["detection"] = json{{"mode", state.detection_mode},
                            {"actor", state.detection_actor},
                            {"set_ms", TimeToJson(state.detection_set)}};
  }
  return out.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

absl::StatusOr<ControllerState> DecodeControllerState(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object");
  const json& format = Member(j, "format");
  if (!format.is_string() || format.get<std::string>() != kStateFormat) {
    return FieldError("format", absl::StrFormat("must be \"%s\"", kStateFormat));
  }
  ControllerState state;
  auto version = Unsigned(Member(j, "version"), "version", std::numeric_limits<int64_t>::max());
  if (!version.ok()) return version.status();
  if (*version == 0) return FieldError("version", "must be positive");
  state.version = *version;
  auto next_id =
      Unsigned(Member(j, "next_plan_id"), "next_plan_id", std::numeric_limits<uint32_t>::max());
  if (!next_id.ok()) return next_id.status();
  state.next_plan_id = *next_id;
  const json& regions = Member(j, "regions");
  if (!regions.is_object() || regions.size() > kMaxRegions) {
    return FieldError("regions",
                      absl::StrFormat("must be an object of at most %d regions", kMaxRegions));
  }
  for (const auto& [name, value] : regions.items()) {
    if (!ValidRegionName(name)) {
      return FieldError("regions", absl::StrFormat("\"%s\" is not a region name", name));
    }
    auto region = RegionFromJson(name, value, "regions." + name);
    if (!region.ok()) return region.status();
    state.regions.push_back(*std::move(region));
  }
  const json& plans = Member(j, "plans");
  if (!plans.is_array() || plans.size() > 1000) {
    return FieldError("plans", "must be a list of at most 1000 plans");
  }
  for (size_t i = 0; i < plans.size(); ++i) {
    auto plan = PlanFromJson(plans[i], absl::StrFormat("plans[%d]", i));
    if (!plan.ok()) return plan.status();
    if (plan->id >= state.next_plan_id) {
      return FieldError(absl::StrFormat("plans[%d].id", i), "must be below next_plan_id");
    }
    state.plans.push_back(*std::move(plan));
  }
  if (auto d = j.find("detection"); d != j.end()) {
    if (!d->is_object()) return FieldError("detection", "must be an object");
    const json& mode = Member(*d, "mode");
    DetectionMode parsed;
    if (!mode.is_string() || !ParseDetectionMode(mode.get<std::string>(), &parsed)) {
      return FieldError("detection.mode", "must be off, alert or auto");
    }
    state.detection_mode = mode.get<std::string>();
    if (auto actor = d->find("actor"); actor != d->end() && actor->is_string()) {
      state.detection_actor = actor->get<std::string>().substr(0, 200);
    }
    if (auto set = d->find("set_ms"); set != d->end() && set->is_number_integer()) {
      state.detection_set = absl::FromUnixMillis(set->get<int64_t>());
    }
  }
  return state;
}

}  // namespace sluice
