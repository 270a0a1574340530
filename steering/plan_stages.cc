// The stages around a plan's ramp (steering/controller.h): preparing the saviors (the scale
// hook's outcome, then their capacity), the gate a step or the DNS step must pass, and the DNS
// step with the runtime's reports on it. Part of the Controller, beside controller.cc (the
// table changes) and controller_plans.cc (plan starts and the ramp itself).
#include "absl/strings/str_format.h"
#include "steering/controller.h"

namespace sluice {
namespace {

std::string HookFailed(const RampPlan& plan) {
  return "the scale hook failed (" + plan.hook_output +
         "); the ramp does not start blind: abort the plan, fix the hook or the capacity, and "
         "start it again";
}

}  // namespace

absl::Status Controller::HookDone(uint64_t id, bool ok, const std::string& output,
                                  const std::string& actor, absl::Time now) {
  for (RampPlan& plan : state_.plans) {
    if (plan.id != id) continue;
    if (!plan.active() || !plan.preparing || plan.hook != RampPlan::Hook::kPending) {
      return absl::FailedPreconditionError(
          absl::StrFormat("plan %d is not waiting for its scale hook", id));
    }
    plan.hook = ok ? RampPlan::Hook::kDone : RampPlan::Hook::kFailed;
    plan.hook_output = output;
    plan.next_at = now;
    plan.prepare_until = now + plan.prepare_wait;  // the capacity wait starts now
    if (!ok) {
      plan.Hold(now);
      plan.gate_message = HookFailed(plan);
    }
    Record(actor,
           absl::StrFormat("plan %d: scale hook %s%s", id, ok ? "done" : "failed",
                           ok ? "" : "; the plan holds until it is aborted"),
           now, state_.version, /*warning=*/!ok);
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrFormat("plan: no plan %d", id));
}

absl::Status Controller::DnsReport(uint64_t id, RampPlan::Dns state, const std::string& message,
                                   const std::string& actor, absl::Time now) {
  if (state != RampPlan::Dns::kPending && state != RampPlan::Dns::kApplied &&
      state != RampPlan::Dns::kFailed) {
    return absl::InvalidArgumentError("dns: a report is pending, applied or failed");
  }
  const bool final_state = state != RampPlan::Dns::kPending;
  if (id == 0) {
    if (final_state) {
      Record(actor, absl::StrFormat("DNS %s: %s", RampPlanDnsName(state), message), now,
             state_.version, /*warning=*/state == RampPlan::Dns::kFailed);
    }
    return absl::OkStatus();
  }
  for (RampPlan& plan : state_.plans) {
    if (plan.id != id) continue;
    if (plan.dns == RampPlan::Dns::kNone || plan.dns == RampPlan::Dns::kWaiting) {
      return absl::FailedPreconditionError(
          absl::StrFormat("plan %d has no DNS change under way", id));
    }
    if (plan.dns == state && plan.dns_message == message) return absl::OkStatus();
    plan.dns = state;
    plan.dns_message = message;
    if (final_state) {
      Record(actor, absl::StrFormat("plan %d: DNS %s: %s", id, RampPlanDnsName(state), message),
             now, state_.version, /*warning=*/state == RampPlan::Dns::kFailed);
    }
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrFormat("plan: no plan %d", id));
}

bool Controller::Prepare(RampPlan* plan, absl::Time now, PlanAdvisor* advisor) {
  auto hold = [&](std::string why, absl::Duration again) {
    if (plan->state != RampPlan::State::kHolding) {  // figures change: said once
      Record("controller", absl::StrFormat("plan %d holds: %s", plan->id, why), now,
             state_.version);
    }
    plan->Hold(now);
    plan->gate_message = std::move(why);
    plan->next_at = now + again;
    return false;
  };
  if (plan->hook == RampPlan::Hook::kPending) {
    return hold("waiting for the scale hook", absl::Seconds(1));
  }
  if (plan->hook == RampPlan::Hook::kFailed) return hold(HookFailed(*plan), absl::Hours(1));
  CapacityCheck check = advisor ? advisor->CheckCapacity(*plan) : CapacityCheck{};
  if (check.ready) {
    plan->preparing = false;
    Record("controller",
           absl::StrFormat("plan %d: saviors ready%s", plan->id,
                           check.message.empty() ? "" : " (" + check.message + ")"),
           now, state_.version);
    return true;
  }
  if (now < plan->prepare_until) {
    return hold("preparing the saviors: " + check.message, absl::Seconds(1));
  }
  if (check.enough || plan->forced) {
    plan->preparing = false;
    Record("controller",
           absl::StrFormat("plan %d: ramping though not every savior node confirmed its "
                           "standbys after the capacity timeout (%s)",
                           plan->id, check.message),
           now, state_.version, /*warning=*/true);
    return true;
  }
  return hold("the saviors' capacity is short after the capacity timeout: " + check.message,
              absl::Seconds(5));
}

std::string Controller::GateHolds(const RampPlan& plan, const HealthGate& gate) const {
  // The gate: the regions that take more traffic with the next step must be healthy.
  std::vector<std::string> takers;
  if (plan.kind == RampPlan::Kind::kEvacuate) {
    for (const auto& [savior, weight] : plan.saviors) {
      if (weight > 0) takers.push_back(savior);
    }
  } else {
    takers.push_back(plan.region);
  }
  std::string why;
  for (const std::string& region : takers) {
    RegionHealth h = gate ? gate(region) : RegionHealth{};
    if (!h.reachable) {
      why = absl::StrFormat("%s unreachable (%s)", region, h.detail);
    } else if (h.origins_down) {
      why = absl::StrFormat("%s origins down (%s)", region, h.detail);
    } else if (h.error_rate > limits_.max_error_rate) {
      why = absl::StrFormat("%s error rate %.2f%% > %.2f%%", region, h.error_rate * 100,
                            limits_.max_error_rate * 100);
    } else if (h.shed_rate > limits_.max_shed_rate) {
      why = absl::StrFormat("%s shed rate %.2f%% > %.2f%%", region, h.shed_rate * 100,
                            limits_.max_shed_rate * 100);
    } else if (h.p99 > limits_.max_p99) {
      why = absl::StrFormat("%s p99 about %s (interpolated in its latency bucket) > %s", region,
                            absl::FormatDuration(absl::Trunc(h.p99, absl::Milliseconds(1))),
                            absl::FormatDuration(limits_.max_p99));
    }
    if (!why.empty()) break;
  }
  return why;
}

void Controller::DnsStep(RampPlan* plan, absl::Time now, const HealthGate& gate) {
  const uint64_t id = plan->id;
  if (std::string why = GateHolds(*plan, gate); !why.empty()) {
    // Held, never rolled back: the ramp is done; the records stay in until the saviors are
    // healthy (or the plan is aborted).
    if (plan->state != RampPlan::State::kHolding) {
      Record("controller", absl::StrFormat("plan %d: DNS step holds: %s", id, why), now,
             state_.version);
    }
    plan->Hold(now);
    plan->gate_message = "DNS step: " + why;
    plan->next_at = now + limits_.recheck;
    return;
  }
  SteeringSpec next_spec = spec_;
  RegionSpec* region = FindRegion(&next_spec, plan->region);
  plan->gate_message.clear();
  plan->Run();
  plan->dns = RampPlan::Dns::kPending;
  plan->dns_message.clear();
  if (region) {
    region->dns_out = true;
    Commit(std::move(next_spec), "controller",
           absl::StrFormat("plan %d DNS step: %s's records out of the names it shares", id,
                           plan->region),
           now)
        .IgnoreError();  // the flag alone: the table builds
  }
  Finish(plan, RampPlan::State::kDone, now);  // reorders the plans: `plan` is gone
  Record("controller", absl::StrFormat("plan %d done", id), now, state_.version);
}

}  // namespace sluice
