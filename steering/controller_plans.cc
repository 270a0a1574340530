// A plan's life in the Controller (steering/controller.h): starting one, aborting it, its ramp
// (Tick and Advance: a step taken, held at the gate, rolled back, completed), finishing it, and
// what a finished plan gives back (the standbys it injected, the saviors it replaced). Split
// from controller.cc, which keeps the table changes people make and the guardrails;
// steering/plan_stages.cc holds the stages around the ramp (preparing, the gate, DNS).
#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "steering/controller.h"
#include "steering/controller_internal.h"

namespace sluice {

using controller_internal::CheckSaviorsUsable;
using controller_internal::FormatSaviors;
using controller_internal::Percent;

namespace {

// Finished plans kept for GET /v1/plans and the state file.
constexpr size_t kFinishedPlansKept = 20;

}  // namespace

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
