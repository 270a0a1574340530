#include "steering/controller.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "steering/detector.h"

namespace sluice {
namespace {

// Finished plans kept for GET /v1/plans and the state file.
constexpr size_t kFinishedPlansKept = 20;

std::string FormatSaviors(const std::map<std::string, uint32_t>& saviors) {
  return absl::StrJoin(saviors, ",", [](std::string* out, const auto& s) {
    absl::StrAppend(out, s.first, "=", s.second);
  });
}

std::string Percent(uint32_t bp) { return FormatBasisPoints(bp); }

}  // namespace

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

// FailedPrecondition naming why, when no savior in `saviors` can take `region`'s members.
absl::Status CheckSaviorsUsable(const SteeringSpec& spec, const std::string& region,
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

}  // namespace

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

absl::StatusOr<uint64_t> Controller::StartPlan(const PlanRequest& request, const std::string& actor,
                                               absl::Time now, const HealthGate& gate) {
  const RegionSpec* region = nullptr;
  for (const RegionSpec& r : spec_.regions) {
    if (r.name == request.region) region = &r;
  }
  if (!region) {
    return absl::NotFoundError(absl::StrFormat("region: no region named \"%s\"", request.region));
  }
  if (request.hold < absl::ZeroDuration() || request.hold > absl::Hours(24)) {
    return absl::InvalidArgumentError("hold: must be 0s..24h");
  }
  const RampPlan* active = ActivePlanFor(request.region);
  if (active && !request.force) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "region %s has an active plan (%d, %s); abort it first or force the new one",
        request.region, active->id, RampPlanKindName(active->kind)));
  }

  RampPlan plan;
  plan.kind = request.kind;
  plan.region = request.region;
  plan.hold = request.hold;
  plan.actor = actor;
  plan.created = now;
  plan.next_at = now;
  uint32_t current = region->evacuated_bp;
  plan.start_bp = current;
  std::vector<uint32_t> steps = request.steps_bp;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (steps[i] > kBasisPoints) return absl::InvalidArgumentError("ramp: steps must be 0..100%");
    bool ordered = i == 0 || (request.kind == RampPlan::Kind::kEvacuate ? steps[i] > steps[i - 1]
                                                                        : steps[i] < steps[i - 1]);
    if (!ordered) {
      return absl::InvalidArgumentError(request.kind == RampPlan::Kind::kEvacuate
                                            ? "ramp: the steps of an evacuation must increase"
                                            : "ramp: the steps of a restore must decrease");
    }
  }
  if (request.kind == RampPlan::Kind::kEvacuate) {
    if (steps.empty()) steps = DefaultRampBasisPoints();
    plan.saviors = request.saviors.empty() ? region->saviors : request.saviors;
    plan.replaced_saviors = region->saviors;
    plan.cohort_saviors = request.cohort_saviors;
    plan.replaced_cohorts = region->cohort_saviors;
    plan.auto_split = request.auto_split;
    if (request.prepare_timeout < absl::ZeroDuration() ||
        request.prepare_timeout > absl::Hours(24)) {
      return absl::InvalidArgumentError("capacity_timeout: must be 0s..24h");
    }
    if (plan.saviors.empty()) {
      return absl::InvalidArgumentError("saviors: an evacuation needs at least one savior");
    }
    // Steps at or below where the region already is are done.
    for (uint32_t s : steps) {
      if (s > current) plan.steps_bp.push_back(s);
    }
    if (plan.steps_bp.empty()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("ramp: %s is already evacuated %s; no step is above that", request.region,
                          Percent(current)));
    }
    // Would the last step make a valid table? Checked now so the ramp cannot fail halfway.
    SteeringSpec probe = spec_;
    RegionSpec* target = FindRegion(&probe, request.region);
    target->saviors = plan.saviors;
    for (const auto& [cohort, row] : plan.cohort_saviors) target->cohort_saviors[cohort] = row;
    target->evacuated_bp = plan.steps_bp.back();
    if (absl::Status valid = BuildSteeringTable(probe, 1).status(); !valid.ok()) {
      return absl::InvalidArgumentError(valid.message());
    }
    if (!request.force) {
      if (absl::Status usable = CheckSaviorsUsable(spec_, request.region, plan.saviors, gate);
          !usable.ok()) {
        return usable;
      }
      if (absl::Status one = CheckOneAtATime(request.region); !one.ok()) return one;
    }
  } else {
    if (steps.empty()) {
      std::vector<uint32_t> ramp = DefaultRampBasisPoints();
      steps.assign(ramp.rbegin(), ramp.rend());
      steps.push_back(0);
    }
    for (uint32_t s : steps) {
      if (s < current) plan.steps_bp.push_back(s);
    }
    if (plan.steps_bp.empty() || plan.steps_bp.back() != 0) plan.steps_bp.push_back(0);
    if (current == 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("region %s is not evacuated; nothing to restore", request.region));
    }
    if (gate && !request.force) {
      RegionHealth h = gate(request.region);
      if (h.origins_down) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "%s's origins are down (%s): a restore would send its members back to them; force "
            "to restore anyway",
            request.region, h.detail));
      }
    }
  }
  std::vector<std::string> inherited;
  if (active) {
    inherited = active->injected;  // the standbys the plan it replaces injected stay its
    AbortPlan(active->id, actor, now, /*keep_standbys=*/true).IgnoreError();
  }
  plan.id = state_.next_plan_id++;
  std::string capacity;
  SteeringSpec with_standbys = spec_;
  std::vector<std::string> now_injected;
  if (request.kind == RampPlan::Kind::kEvacuate) {
    plan.injected = inherited;
    for (const auto& [savior, weight] : plan.saviors) {
      RegionSpec* s = FindRegion(&with_standbys, savior);
      if (!request.inject_standbys || weight == 0 || !s || s->standbys.count("*")) continue;
      if (request.inject_regions && !request.inject_regions->count(savior)) continue;
      s->standbys.insert("*");
      now_injected.push_back(savior);
      if (std::find(plan.injected.begin(), plan.injected.end(), savior) == plan.injected.end()) {
        plan.injected.push_back(savior);
      }
    }
    plan.preparing = request.inject_standbys || request.hook;
    plan.hook = request.hook ? RampPlan::Hook::kPending : RampPlan::Hook::kNone;
    plan.prepare_wait = request.prepare_timeout;
    plan.prepare_until = request.hook ? absl::InfiniteFuture() : now + request.prepare_timeout;
    plan.forced = request.force;
    if (plan.preparing) {
      capacity = request.hook ? ", scale hook first" : ", saviors' capacity first";
    }
  }
  // The DNS step.
  std::string dns_note;
  if (request.kind == RampPlan::Kind::kEvacuate && (request.dns || request.dns_first)) {
    if (plan.steps_bp.back() != kBasisPoints) {
      return absl::InvalidArgumentError(
          "dns: the DNS step needs a plan that ends at 100% (a region's records go out only "
          "when all its members are served elsewhere)");
    }
    if (request.dns_first) {
      RegionSpec* target = FindRegion(&with_standbys, request.region);
      target->dns_out = true;
      plan.dns = RampPlan::Dns::kPending;
      dns_note = absl::StrFormat("plan %d: DNS step first (the edge is dead): %s's records out",
                                 plan.id, request.region);
    } else {
      plan.dns = RampPlan::Dns::kWaiting;
    }
  } else if (request.kind == RampPlan::Kind::kRestore && region->dns_out) {
    RegionSpec* target = FindRegion(&with_standbys, request.region);
    target->dns_out = false;
    plan.dns = RampPlan::Dns::kPending;
    dns_note = absl::StrFormat("plan %d: DNS first: %s's records back", plan.id, request.region);
  }
  Record(actor,
         absl::StrFormat(
             "plan %d: %s %s%s%s, ramp %s, hold %s%s", plan.id, RampPlanKindName(plan.kind),
             plan.region,
             plan.kind == RampPlan::Kind::kEvacuate ? " to {" + FormatSaviors(plan.saviors) + "}"
                                                    : std::string(),
             plan.auto_split ? " (by capacity)" : "",
             absl::StrJoin(plan.steps_bp, ",",
                           [](std::string* out, uint32_t bp) { out->append(Percent(bp)); }),
             absl::FormatDuration(plan.hold),
             capacity + (plan.dns == RampPlan::Dns::kWaiting ? ", then DNS" : "")),
         now, state_.version);
  const uint64_t id = plan.id;
  state_.plans.insert(state_.plans.begin(), std::move(plan));
  std::vector<std::string> changes;
  if (!now_injected.empty()) {
    changes.push_back(absl::StrFormat("plan %d: inject the hot standbys of %s on every node", id,
                                      absl::StrJoin(now_injected, ", ")));
  }
  if (!dns_note.empty()) changes.push_back(dns_note);
  if (!changes.empty()) {
    // Only a "*" added to valid regions, or the DNS flag: the table builds.
    Commit(std::move(with_standbys), actor, absl::StrJoin(changes, "; "), now).IgnoreError();
  }
  return id;
}

absl::Status Controller::AbortPlan(uint64_t id, const std::string& actor, absl::Time now,
                                   bool keep_standbys) {
  for (RampPlan& plan : state_.plans) {
    if (plan.id != id) continue;
    if (!plan.active()) {
      return absl::FailedPreconditionError(
          absl::StrFormat("plan %d is already %s", id, RampPlanStateName(plan.state)));
    }
    uint32_t bp = 0;
    for (const RegionSpec& r : spec_.regions) {
      if (r.name == plan.region) bp = r.evacuated_bp;
    }
    std::string action =
        absl::StrFormat("plan %d aborted: %s stays at %s", id, plan.region, Percent(bp));
    plan.gate_message.clear();  // nothing holds a plan that is over
    plan.preparing = false;
    RampPlan copy = plan;
    Finish(&plan, RampPlan::State::kAborted, now);  // reorders the plans
    Record(actor, action, now, state_.version);
    if (!keep_standbys && copy.kind == RampPlan::Kind::kEvacuate && bp == 0 &&
        !copy.injected.empty()) {
      // Nothing moved (or everything is back): the standbys it injected are not needed.
      SteeringSpec next = spec_;
      std::string note = TakeOutStandbys(&next, copy);
      if (!note.empty()) {
        Commit(std::move(next), actor, absl::StrFormat("plan %d: %s", id, note), now).IgnoreError();
      }
    }
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrFormat("plan: no plan %d", id));
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

std::string Controller::TakeOutStandbys(SteeringSpec* next, const RampPlan& plan) {
  std::vector<std::string> out;
  for (const std::string& name : plan.injected) {
    bool needed = false;
    for (const RampPlan& other : state_.plans) {
      if (other.id == plan.id || !other.active()) continue;
      needed = needed || std::find(other.injected.begin(), other.injected.end(), name) !=
                             other.injected.end();
    }
    RegionSpec* region = FindRegion(next, name);
    if (!needed && region && region->standbys.erase("*") > 0) out.push_back(name);
  }
  for (RampPlan& p : state_.plans) {
    if (p.id == plan.id) p.injected.clear();  // taken out once; a later injection is not its
  }
  if (out.empty()) return "";
  return "took out the hot standbys of " + absl::StrJoin(out, ", ");
}

std::string Controller::RestoreReplacedSaviors(SteeringSpec* next, const std::string& region_name) {
  RegionSpec* region = FindRegion(next, region_name);
  if (!region || region->evacuated_bp != 0) return "";
  std::vector<std::string> notes;
  if (region->dns_out) {
    region->dns_out = false;
    notes.push_back("its DNS records are back");
  }
  // The newest evacuation of this region that took a step (and so set its saviors): if they
  // are still the region's, the ones it replaced come back (the configured failover row, say).
  for (const RampPlan& plan : state_.plans) {
    if (plan.kind != RampPlan::Kind::kEvacuate || plan.region != region_name || plan.step < 0) {
      continue;
    }
    if (!plan.replaced_saviors.empty() && region->saviors == plan.saviors &&
        plan.replaced_saviors != plan.saviors) {
      region->saviors = plan.replaced_saviors;
      notes.push_back(absl::StrFormat("its saviors are {%s} again (plan %d had set {%s})",
                                      FormatSaviors(plan.replaced_saviors), plan.id,
                                      FormatSaviors(plan.saviors)));
    }
    // The cohort rows it set, where they are still its: back to what they were.
    bool back = false;
    for (const auto& [cohort, row] : plan.cohort_saviors) {
      auto it = region->cohort_saviors.find(cohort);
      if (it == region->cohort_saviors.end() || it->second != row) continue;
      auto before = plan.replaced_cohorts.find(cohort);
      if (before == plan.replaced_cohorts.end()) {
        region->cohort_saviors.erase(it);
      } else {
        it->second = before->second;
      }
      back = true;
    }
    if (back)
      notes.push_back(absl::StrFormat("its cohort rows are back (plan %d had set them)", plan.id));
    break;
  }
  // The standbys every finished evacuation of it injected (one that ended before its first
  // step too) are out once it is back at 0%.
  std::vector<RampPlan> finished;
  for (const RampPlan& plan : state_.plans) {
    if (plan.kind == RampPlan::Kind::kEvacuate && plan.region == region_name && !plan.active() &&
        !plan.injected.empty()) {
      finished.push_back(plan);
    }
  }
  for (const RampPlan& plan : finished) {
    std::string standbys = TakeOutStandbys(next, plan);
    if (!standbys.empty()) notes.push_back(standbys);
  }
  return absl::StrJoin(notes, "; ");
}

void Controller::Finish(RampPlan* plan, RampPlan::State state, absl::Time now) {
  plan->state = state;
  plan->held_since = absl::InfinitePast();
  plan->finished = now;
  plan->next_at = absl::InfiniteFuture();
  TrimHistory();
}

void Controller::TrimHistory() {
  // Active plans first (newest first among them), then finished ones by recency.
  std::stable_sort(state_.plans.begin(), state_.plans.end(),
                   [](const RampPlan& a, const RampPlan& b) { return a.active() && !b.active(); });
  size_t finished = 0;
  for (size_t i = 0; i < state_.plans.size(); ++i) {
    if (!state_.plans[i].active() && ++finished > kFinishedPlansKept) {
      state_.plans.resize(i);
      break;
    }
  }
}

absl::Time Controller::NextDue() const {
  absl::Time due = absl::InfiniteFuture();
  for (const RampPlan& plan : state_.plans) {
    if (plan.active()) due = std::min(due, plan.next_at);
  }
  return due;
}

bool Controller::Tick(absl::Time now, const HealthGate& gate, PlanAdvisor* advisor) {
  uint64_t before = state_.version;
  // Advance() may reorder plans (Finish sorts and trims them): look each one up by id.
  std::vector<uint64_t> due;
  for (const RampPlan& plan : state_.plans) {
    if (plan.active() && plan.next_at <= now) due.push_back(plan.id);
  }
  for (uint64_t id : due) {
    for (RampPlan& plan : state_.plans) {
      if (plan.id == id) {
        Advance(&plan, now, gate, advisor);
        break;
      }
    }
  }
  return state_.version != before;
}

void Controller::Advance(RampPlan* plan, absl::Time now, const HealthGate& gate,
                         PlanAdvisor* advisor) {
  if (plan->preparing && !Prepare(plan, now, advisor)) return;
  const size_t next = static_cast<size_t>(plan->step + 1);
  const uint64_t id = plan->id;
  if (next >= plan->steps_bp.size()) {
    if (plan->dns == RampPlan::Dns::kWaiting) {
      DnsStep(plan, now, gate);
      return;
    }
    Finish(plan, RampPlan::State::kDone, now);
    return;
  }
  if (plan->kind == RampPlan::Kind::kEvacuate && plan->auto_split && advisor) {
    if (std::optional<std::map<std::string, uint32_t>> weights = advisor->Rebalance(*plan);
        weights && !weights->empty() && *weights != plan->saviors) {
      Record("controller",
             absl::StrFormat("plan %d: saviors re-balanced by capacity: {%s} -> {%s}", id,
                             FormatSaviors(plan->saviors), FormatSaviors(*weights)),
             now, state_.version);
      plan->saviors = *std::move(weights);
    }
  }
  std::string why = GateHolds(*plan, gate);

  SteeringSpec next_spec = spec_;
  RegionSpec* region = FindRegion(&next_spec, plan->region);
  if (!region) {
    std::string action = absl::StrFormat("plan %d aborted: region %s is gone", id, plan->region);
    Finish(plan, RampPlan::State::kAborted, now);
    Record("controller", action, now, state_.version);
    return;
  }
  if (!why.empty()) {
    bool first = plan->state != RampPlan::State::kHolding;
    plan->Hold(now);
    plan->gate_message = why;
    ++plan->gate_failures;
    plan->next_at = now + limits_.recheck;
    if (plan->gate_failures >= limits_.rollback_after && plan->step >= 0) {
      // Step back: to the previous step, or to where the region was before the first one.
      uint32_t back =
          plan->step > 0 ? plan->steps_bp[static_cast<size_t>(plan->step - 1)] : plan->start_bp;
      const uint32_t from = region->evacuated_bp;
      region->evacuated_bp = back;
      plan->gate_failures = 0;
      plan->next_at = now + plan->hold;
      ++plan->rollbacks;
      plan->last_rollback =
          absl::StrFormat("rolled back from %s to %s: %s", Percent(from), Percent(back), why);
      std::string action =
          absl::StrFormat("plan %d: gate failed %d times (%s): %s rolled back to %s", id,
                          limits_.rollback_after, why, plan->region, Percent(back));
      --plan->step;
      if (!Commit(std::move(next_spec), "controller", action, now).ok()) {
        Finish(plan, RampPlan::State::kAborted, now);
      } else if (plan->rollbacks >= limits_.max_rollbacks) {
        // It keeps failing: stop, where the last rollback left the region, and say so.
        std::string failed = absl::StrFormat("plan %d failed after %d rollbacks: %s stays at %s",
                                             id, plan->rollbacks, plan->region, Percent(back));
        Finish(plan, RampPlan::State::kFailed, now);
        Record("controller", failed, now, state_.version);
      }
    } else if (first) {
      Record("controller", absl::StrFormat("plan %d holds: %s", id, why), now, state_.version);
    }
    return;
  }

  uint32_t bp = plan->steps_bp[next];
  region->evacuated_bp = bp;
  if (plan->kind == RampPlan::Kind::kEvacuate) {
    region->saviors = plan->saviors;
    for (const auto& [cohort, row] : plan->cohort_saviors) region->cohort_saviors[cohort] = row;
  }
  std::string action = absl::StrFormat("plan %d step %d/%d: %s %s", id, next + 1,
                                       plan->steps_bp.size(), plan->region, Percent(bp));
  const SteeringSpec previous = spec_;
  if (absl::Status s = Commit(std::move(next_spec), "controller", action, now); !s.ok()) {
    Finish(plan, RampPlan::State::kAborted, now);
    Record("controller", absl::StrFormat("plan %d aborted: %s", id, s.message()), now,
           state_.version);
    return;
  }
  WarnIfLargeMove(previous, absl::StrFormat("plan %d step %d", id, next + 1), now);
  plan->step = static_cast<int>(next);
  plan->Run();
  plan->gate_failures = 0;
  plan->gate_message.clear();
  plan->next_at = now + plan->hold;
  if (next + 1 == plan->steps_bp.size() && plan->dns != RampPlan::Dns::kWaiting) {
    const std::string restored = plan->region;
    Finish(plan, RampPlan::State::kDone, now);  // reorders the plans: `plan` is gone
    Record("controller", absl::StrFormat("plan %d done", id), now, state_.version);
    if (bp != 0) return;
    SteeringSpec saviors_back = spec_;
    std::string note = RestoreReplacedSaviors(&saviors_back, restored);
    if (!note.empty()) {
      Commit(std::move(saviors_back), "controller", restored + " restored: " + note, now)
          .IgnoreError();  // touches no plan
    }
  }
}

}  // namespace sluice
