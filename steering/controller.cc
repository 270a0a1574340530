// The Controller (steering/controller.h): the names of a plan's kinds and states, creating it
// from the configuration and the saved state, committing a change (a new table version and its
// event), the large-move warning, the guardrails, and the changes people make by hand (a
// region's values, standbys, the detection mode). A plan's start, ramp and end are in
// controller_plans.cc; the stages around the ramp in plan_stages.cc.
#include "steering/controller.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "steering/controller_internal.h"
#include "steering/detector.h"

namespace sluice {

using controller_internal::CheckSaviorsUsable;
using controller_internal::FormatSaviors;
using controller_internal::Percent;

const char* RampPlanKindName(RampPlan::Kind kind) {
  return kind == RampPlan::Kind::kEvacuate ? "evacuate" : "restore";
}

const char* RampPlanStateName(RampPlan::State state) {
  switch (state) {
    case RampPlan::State::kRunning:
      return "running";
    case RampPlan::State::kHolding:
      return "holding";
    case RampPlan::State::kDone:
      return "done";
    case RampPlan::State::kAborted:
      return "aborted";
    case RampPlan::State::kFailed:
      return "failed";
  }
  return "unknown";
}

const char* RampPlanHookName(RampPlan::Hook hook) {
  switch (hook) {
    case RampPlan::Hook::kNone:
      return "none";
    case RampPlan::Hook::kPending:
      return "pending";
    case RampPlan::Hook::kDone:
      return "done";
    case RampPlan::Hook::kFailed:
      return "failed";
  }
  return "unknown";
}

const char* RampPlanDnsName(RampPlan::Dns dns) {
  switch (dns) {
    case RampPlan::Dns::kNone:
      return "none";
    case RampPlan::Dns::kWaiting:
      return "waiting";
    case RampPlan::Dns::kPending:
      return "pending";
    case RampPlan::Dns::kApplied:
      return "applied";
    case RampPlan::Dns::kFailed:
      return "failed";
  }
  return "unknown";
}

bool ParseRampPlanDns(const std::string& text, RampPlan::Dns* out) {
  for (RampPlan::Dns d : {RampPlan::Dns::kNone, RampPlan::Dns::kWaiting, RampPlan::Dns::kPending,
                          RampPlan::Dns::kApplied, RampPlan::Dns::kFailed}) {
    if (text == RampPlanDnsName(d)) {
      *out = d;
      return true;
    }
  }
  return false;
}

std::vector<uint32_t> DefaultRampBasisPoints() { return {100, 500, 1000, 2500, 5000, 10000}; }

ControllerState Controller::StateFromSpec(const SteeringSpec& spec) {
  ControllerState state;
  state.regions = spec.regions;
  return state;
}

absl::StatusOr<Controller> Controller::Create(SteeringSpec base, ControllerState state,
                                              GateLimits limits) {
  // The saved values win over the configuration's; regions the configuration no longer has
  // are dropped (their tunnels are gone), regions it added start from the configuration.
  for (const RegionSpec& saved : state.regions) {
    for (RegionSpec& region : base.regions) {
      if (region.name != saved.name) continue;
      region.evacuated_bp = saved.evacuated_bp;
      region.healthy = saved.healthy;
      region.saviors = saved.saviors;
      region.cohort_saviors = saved.cohort_saviors;
      region.misrouted = saved.misrouted;
      region.standbys = saved.standbys;
      region.dns_out = saved.dns_out;
    }
  }
  std::vector<RampPlan> plans;
  for (RampPlan& plan : state.plans) {
    bool known = std::any_of(base.regions.begin(), base.regions.end(),
                             [&](const RegionSpec& r) { return r.name == plan.region; });
    if (known || !plan.active()) plans.push_back(std::move(plan));
  }
  state.plans = std::move(plans);
  if (state.version == 0) state.version = 1;
  auto table = BuildSteeringTable(base, state.version);
  if (!table.ok()) return table.status();
  state.regions = base.regions;
  Controller controller(std::move(base), std::move(state), limits);
  controller.table_ = *std::move(table);
  return controller;
}

RegionSpec* Controller::FindRegion(SteeringSpec* spec, const std::string& name) {
  for (RegionSpec& region : spec->regions) {
    if (region.name == name) return &region;
  }
  return nullptr;
}

const RampPlan* Controller::FindPlan(uint64_t id) const {
  for (const RampPlan& plan : state_.plans) {
    if (plan.id == id) return &plan;
  }
  return nullptr;
}

const RampPlan* Controller::ActivePlanFor(const std::string& region) const {
  for (const RampPlan& plan : state_.plans) {
    if (plan.active() && plan.region == region) return &plan;
  }
  return nullptr;
}

absl::Status Controller::Commit(SteeringSpec next, const std::string& actor,
                                const std::string& action, absl::Time now) {
  uint64_t before = state_.version;
  auto table = BuildSteeringTable(next, before + 1);
  if (!table.ok()) return table.status();
  spec_ = std::move(next);
  state_.regions = spec_.regions;
  state_.version = before + 1;
  table_ = *std::move(table);
  Record(actor, action, now, before);
  return absl::OkStatus();
}

void Controller::Record(const std::string& actor, const std::string& action, absl::Time now,
                        uint64_t before, bool warning) {
  events_.push_back({now, actor, action, before, state_.version, warning});
}

namespace {

// served[y][s]: the share of region y's members that region s serves, by the decision's rules
// (decision.h) in expectation: the evacuated share split over the usable saviors by weight,
// or evenly over every usable region when no savior is usable, and the rest by y itself.
std::vector<std::vector<double>> ServedShares(const SteeringSpec& spec) {
  const size_t n = spec.regions.size();
  std::vector<std::vector<double>> served(n, std::vector<double>(n, 0.0));
  auto index = [&](const std::string& name) -> int {
    for (size_t i = 0; i < n; ++i) {
      if (spec.regions[i].name == name) return static_cast<int>(i);
    }
    return -1;
  };
  auto usable = [&](size_t s, size_t from) {
    const RegionSpec& r = spec.regions[s];
    return s != from && r.healthy && r.evacuated_bp < kBasisPoints;
  };
  for (size_t y = 0; y < n; ++y) {
    const double moved = spec.regions[y].evacuated_bp / static_cast<double>(kBasisPoints);
    served[y][y] = 1.0 - moved;
    if (moved == 0) continue;
    double total = 0;
    for (const auto& [name, weight] : spec.regions[y].saviors) {
      int s = index(name);
      if (s >= 0 && usable(static_cast<size_t>(s), y)) total += weight;
    }
    if (total > 0) {
      for (const auto& [name, weight] : spec.regions[y].saviors) {
        int s = index(name);
        if (s >= 0 && usable(static_cast<size_t>(s), y)) {
          served[y][static_cast<size_t>(s)] += moved * weight / total;
        }
      }
      continue;
    }
    size_t any = 0;
    for (size_t s = 0; s < n; ++s) any += usable(s, y) ? 1 : 0;
    for (size_t s = 0; s < n; ++s) {
      if (any == 0 && s == y) served[y][s] += moved;  // nobody can: they stay
      if (any > 0 && usable(s, y)) served[y][s] += moved / static_cast<double>(any);
    }
  }
  return served;
}

}  // namespace

Arrival LargestArrival(const SteeringSpec& before, const SteeringSpec& after) {
  Arrival largest;
  if (before.regions.size() != after.regions.size()) return largest;
  std::vector<std::vector<double>> was = ServedShares(before);
  std::vector<std::vector<double>> now = ServedShares(after);
  const size_t n = after.regions.size();
  for (size_t s = 0; s < n; ++s) {
    Arrival arrival;
    arrival.region = after.regions[s].name;
    std::vector<std::string> parts;
    for (size_t y = 0; y < n; ++y) {
      double gain = now[y][s] - was[y][s];
      if (y == s || gain < 1e-9) continue;  // a region's own members coming back are not a move
      arrival.share += gain;
      parts.push_back(absl::StrFormat("%.0f%% of %s's", gain * 100, after.regions[y].name));
    }
    arrival.from_regions = absl::StrJoin(parts, ", ");
    if (arrival.share > largest.share) largest = std::move(arrival);
  }
  return largest;
}

void Controller::WarnIfLargeMove(const SteeringSpec& before, const std::string& what,
                                 absl::Time now) {
  Arrival arrival = LargestArrival(before, spec_);
  if (arrival.share <= limits_.warn_step_share + 1e-9) return;
  Record("controller",
         absl::StrFormat("warning: %s moves about %.0f%% of a region's members onto %s at once "
                         "(%s), above the %.0f%% warning level; smaller steps spread the load",
                         what, arrival.share * 100, arrival.region, arrival.from_regions,
                         limits_.warn_step_share * 100),
         now, state_.version, /*warning=*/true);
}

std::vector<ControllerEvent> Controller::TakeEvents() {
  std::vector<ControllerEvent> events;
  events.swap(events_);
  return events;
}

namespace {

// Why `savior` cannot take members now ("" when it can): the table's view and the gate's.
std::string SaviorUnusable(const SteeringSpec& spec, const std::string& leaving,
                           const std::string& savior, const HealthGate& gate) {
  if (savior == leaving) return "it is the region being evacuated";
  const RegionSpec* r = nullptr;
  for (const RegionSpec& candidate : spec.regions) {
    if (candidate.name == savior) r = &candidate;
  }
  if (!r) return "no such region";
  if (!r->healthy) return "marked unhealthy";
  if (r->evacuated_bp >= kBasisPoints) return "evacuated itself";
  if (gate) {
    RegionHealth h = gate(savior);
    if (!h.reachable) return "unreachable (" + h.detail + ")";
    if (h.origins_down) return "its origins are down (" + h.detail + ")";
  }
  return "";
}

}  // namespace

absl::Status controller_internal::CheckSaviorsUsable(const SteeringSpec& spec,
                                                     const std::string& region,
                                                     const std::map<std::string, uint32_t>& saviors,
                                                     const HealthGate& gate) {
  std::vector<std::string> why;
  for (const auto& [savior, weight] : saviors) {
    if (weight == 0) continue;
    std::string unusable = SaviorUnusable(spec, region, savior, gate);
    if (unusable.empty()) return absl::OkStatus();
    why.push_back(savior + ": " + unusable);
  }
  return absl::FailedPreconditionError(
      absl::StrFormat("no savior can take %s's members (%s); force to evacuate anyway", region,
                      why.empty() ? std::string("none listed") : absl::StrJoin(why, "; ")));
}

absl::Status Controller::CheckOneAtATime(const std::string& region) const {
  for (const RampPlan& plan : state_.plans) {
    if (plan.active() && plan.kind == RampPlan::Kind::kEvacuate && plan.region != region) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s is being evacuated (plan %d); one region at a time: abort or restore it first, or "
          "force",
          plan.region, plan.id));
    }
  }
  for (const RegionSpec& r : spec_.regions) {
    if (r.name != region && r.evacuated_bp > 0) {
      const RampPlan* active = ActivePlanFor(r.name);
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s is evacuated %s%s; one region at a time: restore it first, or force", r.name,
          Percent(r.evacuated_bp),
          active ? absl::StrFormat(" (plan %d, %s)", active->id, RampPlanKindName(active->kind))
                 : std::string()));
    }
  }
  return absl::OkStatus();
}

absl::Status Controller::SetRegion(const RegionChange& change, const std::string& actor,
                                   absl::Time now, const HealthGate& gate) {
  SteeringSpec next = spec_;
  RegionSpec* region = FindRegion(&next, change.region);
  if (!region) {
    return absl::NotFoundError(absl::StrFormat("region: no region named \"%s\"", change.region));
  }
  if (change.expected_version != 0 && change.expected_version != state_.version) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "version: the table is at version %d, the change was made against version %d; read it "
        "again and retry",
        state_.version, change.expected_version));
  }
  const RampPlan* active = ActivePlanFor(change.region);
  if (active && !change.force) {
    return absl::FailedPreconditionError(
        absl::StrFormat("region %s has an active plan (%d, %s); abort it first or force the change",
                        change.region, active->id, RampPlanKindName(active->kind)));
  }
  std::string action = "set " + change.region;
  if (change.has_fraction) {
    if (change.evacuated_bp > kBasisPoints) {
      return absl::InvalidArgumentError("fraction: must be 0..100%");
    }
    region->evacuated_bp = change.evacuated_bp;
    absl::StrAppend(&action, " fraction ", Percent(change.evacuated_bp));
  }
  if (change.has_saviors) {
    region->saviors = change.saviors;
    absl::StrAppend(&action, " saviors {", FormatSaviors(change.saviors), "}");
  }
  if (change.has_healthy) {
    region->healthy = change.healthy;
    absl::StrAppend(&action, change.healthy ? " healthy" : " unhealthy");
  }
  if (change.has_cohorts) {
    region->cohort_saviors = change.cohort_saviors;
    absl::StrAppend(&action, " cohorts {",
                    absl::StrJoin(change.cohort_saviors, "; ",
                                  [](std::string* out, const auto& c) {
                                    absl::StrAppend(out, c.first, ": ", FormatSaviors(c.second));
                                  }),
                    "}");
  }
  if (change.has_misrouted) {
    region->misrouted = change.misrouted;
    absl::StrAppend(&action, " misrouted ",
                    change.misrouted ? MisroutedModeName(*change.misrouted) : "(configured)");
  }
  // Check before aborting anything, so a refused change leaves the plan running.
  if (absl::Status valid = BuildSteeringTable(next, state_.version + 1).status(); !valid.ok()) {
    return absl::InvalidArgumentError(valid.message());
  }
  const RegionSpec* before = nullptr;
  for (const RegionSpec& r : spec_.regions) {
    if (r.name == change.region) before = &r;
  }
  if (!change.force && region->evacuated_bp > 0 &&
      (region->evacuated_bp > before->evacuated_bp || change.has_saviors)) {
    if (absl::Status usable = CheckSaviorsUsable(next, change.region, region->saviors, gate);
        !usable.ok()) {
      return usable;
    }
  }
  if (!change.force && region->evacuated_bp > 0 && before->evacuated_bp == 0) {
    if (absl::Status one = CheckOneAtATime(change.region); !one.ok()) return one;
  }
  if (change.has_fraction && change.evacuated_bp == 0 && !change.has_saviors) {
    // Back at 0% by hand: the saviors an evacuation replaced come back, as after a restore.
    std::string note = RestoreReplacedSaviors(&next, change.region);
    if (!note.empty()) absl::StrAppend(&action, "; ", note);
  }
  if (active) {
    // The plan's standbys: out with this change when it leaves the region at 0%, kept
    // otherwise (a later restore takes them out); `next` is the spec this change commits.
    const RampPlan aborted = *active;
    AbortPlan(aborted.id, actor, now, /*keep_standbys=*/true).IgnoreError();
    if (aborted.kind == RampPlan::Kind::kEvacuate && region->evacuated_bp == 0) {
      std::string note = TakeOutStandbys(&next, aborted);
      if (!note.empty()) absl::StrAppend(&action, "; ", note);
    }
  }
  const SteeringSpec previous = spec_;
  if (absl::Status s = Commit(std::move(next), actor, action, now); !s.ok()) return s;
  WarnIfLargeMove(previous, "setting " + change.region, now);
  return absl::OkStatus();
}

absl::Status Controller::SetStandbys(const std::string& region_name, const std::string& cluster,
                                     bool inject, const std::string& actor, absl::Time now) {
  if (!ValidStandbyName(cluster)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cluster: \"%s\" is not a cluster name (or \"*\" for every one)", cluster));
  }
  SteeringSpec next = spec_;
  RegionSpec* region = FindRegion(&next, region_name);
  if (!region) {
    return absl::NotFoundError(absl::StrFormat("region: no region named \"%s\"", region_name));
  }
  bool changed =
      inject ? region->standbys.insert(cluster).second : region->standbys.erase(cluster) > 0;
  if (!changed) {
    Record(actor,
           absl::StrFormat("standbys of %s in %s already %s", cluster, region_name,
                           inject ? "injected" : "out"),
           now, state_.version);
    return absl::OkStatus();
  }
  return Commit(std::move(next), actor,
                absl::StrFormat("%s the hot standbys of %s on every node of %s",
                                inject ? "inject" : "take out",
                                cluster == "*" ? "every cluster" : cluster, region_name),
                now);
}

absl::Status Controller::SetDetectionMode(const std::string& mode, const std::string& actor,
                                          absl::Time now) {
  DetectionMode parsed;
  if (!ParseDetectionMode(mode, &parsed)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("mode: expected off, alert or auto, got \"%s\"", mode));
  }
  const std::string before = state_.detection_mode;
  state_.detection_mode = mode;
  state_.detection_actor = actor;
  state_.detection_set = now;
  Record(actor,
         absl::StrFormat("detection mode %s%s", mode,
                         before.empty() || before == mode ? "" : " (was " + before + ")"),
         now, state_.version);
  return absl::OkStatus();
}

}  // namespace sluice
