#include "proxy/control/capacity_control.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "proxy/control/dns_control.h"
#include "proxy/control/region_health.h"
#include "proxy/fleet/fleet.h"
#include "steering/signal_history.h"

namespace sluice {
namespace {

using nlohmann::json;

constexpr uint64_t kCapacityTickMs = 1000;

json Rate(double v) { return std::isfinite(v) ? json(std::round(v * 10) / 10) : json(nullptr); }
json Ratio(double v) {
  return std::isfinite(v) ? json(std::round(v * 10000) / 10000) : json(nullptr);
}

std::string Percent(double utilization) {
  return std::isfinite(utilization) ? absl::StrFormat("%.0f%%", utilization * 100)
                                    : std::string("unknown (no capacity reported)");
}

}  // namespace

CapacityControl::CapacityControl(LoopContext* context, RegionHealthMonitor* health,
                                 SteeringControl* steering, std::function<NodeCapacity()> self)
    : context_(context), health_(health), steering_(steering), self_(std::move(self)) {}

CapacityControl::~CapacityControl() { Stop(); }

void CapacityControl::Configure(const Config& config) {
  headroom_ = config.capacity.headroom;
  hook_config_ = config.controller.hooks.scale;
  // A hook that runs finishes with the runner it started on; the next one uses the new one.
  if (!(hook_ && hook_->running())) {
    hook_.reset();
    if (hook_config_) hook_ = std::make_unique<ScaleHookRunner>(context_, *hook_config_);
  }
  if (!timer_.active())
    timer_.Start(context_->loop(), kCapacityTickMs, kCapacityTickMs, [this] { OnTick(); });
}

void CapacityControl::Stop() {
  timer_.Close();
  if (hook_) hook_->Close();
}

std::map<std::string, RegionCapacity> CapacityControl::Regions() {
  // The fleet's sums (the leader's, from the live views); this node and its peers without.
  if (fleet_ && !fleet_->RegionSums().empty()) return CapacityFromSums(fleet_->RegionSums());
  std::vector<NodeView> views;
  NodeView mine;
  mine.region = health_->local_region();
  mine.capacity = self_();
  views.push_back(std::move(mine));
  for (NodeView& peer : health_->PeerCapacities()) views.push_back(std::move(peer));
  return SumCapacity(views, 0);
}

absl::StatusOr<EvacuationInput> CapacityControl::Inputs(
    const std::string& region, const std::map<std::string, uint32_t>& weights,
    const std::map<std::string, std::map<std::string, uint32_t>>& cohorts,
    const std::vector<uint32_t>& steps, absl::Duration hold) {
  const Controller* c = steering_->controller();
  if (!c) return absl::NotFoundError("steering is not configured");
  const SteeringSpec& spec = c->spec();
  const RegionSpec* evacuated = nullptr;
  for (const RegionSpec& r : spec.regions) {
    if (r.name == region) evacuated = &r;
  }
  if (!evacuated)
    return absl::NotFoundError(absl::StrFormat("region: no region named \"%s\"", region));
  const absl::Time now = absl::Now();
  const absl::Time end = now + hold * static_cast<int64_t>(std::max<size_t>(steps.size(), 1));
  std::map<std::string, RegionCapacity> regions = Regions();
  EvacuationInput in;
  in.region = region;
  in.start_bp = evacuated->evacuated_bp;
  in.steps_bp = steps;
  in.weights = weights;
  in.cohort_rows = evacuated->cohort_saviors;
  for (const auto& [cohort, row] : cohorts) in.cohort_rows[cohort] = row;
  in.headroom = headroom_;
  // What moves: the region's members' requests, by the history's forecast for the end of the
  // ramp (the rate entering it now without history).
  const RegionCapacity& own = regions[region];
  double entering = own.load_rps;
  {
    std::map<std::string, size_t> reported;
    std::map<std::string, SignalPoint> sums;
    if (fleet_ && !fleet_->RegionSums().empty()) {
      sums = SignalsFromSums(fleet_->RegionSums(), &reported);
    } else {
      std::vector<NodeView> signals;
      signals.push_back(health_->Signal());
      for (NodeView& peer : health_->PeerSignals()) signals.push_back(std::move(peer));
      sums = SumSignals(signals, &reported);
    }
    if (auto it = sums.find(region); it != sums.end() && reported.count(region)) {
      entering = it->second.requests_per_second;
    }
  }
  in.region_rps = history_ ? ForecastLoad(*history_, region, now, end, entering).at_rps : entering;
  double cohort_total = 0;
  for (const auto& [cohort, rate] : own.cohort_rps) cohort_total += rate;
  const double base = std::max(entering, cohort_total);
  for (const auto& [cohort, rate] : own.cohort_rps) {
    if (base > 0) in.cohort_share[cohort] = rate / base;
  }
  HealthGate gate = steering_->gate();
  for (const RegionSpec& r : spec.regions) {
    if (r.name == region) continue;
    SaviorState s;
    s.region = r.name;
    const RegionCapacity& cap = regions[r.name];
    // With its standbys in where the plan will inject them (every savior in a fleet; without
    // one, only this node's region).
    const bool injects = fleet_ != nullptr || r.name == health_->local_region();
    s.capacity_rps = (injects ? cap.standby_capacity_rps : cap.capacity_rps) * headroom_;
    s.load_rps = cap.load_rps;
    s.standby_endpoints = cap.standby_endpoints;
    s.nodes = cap.nodes;
    if (history_) {
      LoadForecast f = ForecastLoad(*history_, r.name, now, end, cap.load_rps);
      if (f.weeks > 0 || f.method.find("day before") != std::string::npos) {
        s.growth_rps = f.at_rps - f.now_rps;
      }
    }
    if (!r.healthy) {
      s.usable = false;
      s.unusable = "marked unhealthy";
    } else if (r.evacuated_bp >= kBasisPoints) {
      s.usable = false;
      s.unusable = "evacuated itself";
    } else if (gate) {
      RegionHealth h = gate(r.name);
      if (!h.reachable) {
        s.usable = false;
        s.unusable = "unreachable (" + h.detail + ")";
      } else if (h.origins_down) {
        s.usable = false;
        s.unusable = "its origins are down (" + h.detail + ")";
      }
    }
    in.saviors.push_back(std::move(s));
  }
  // What the saviors' load already holds of the region (its fraction now, by its rows now)
  // is not new load: the prediction adds the region's moved share on top of the rest.
  if (in.start_bp > 0) {
    EvacuationInput now_in = in;
    now_in.steps_bp = {in.start_bp};
    now_in.weights = evacuated->saviors;
    now_in.cohort_rows = evacuated->cohort_saviors;
    EvacuationPrediction already = PredictEvacuation(now_in);
    for (SaviorState& s : in.saviors) {
      for (const SaviorPrediction& p : already.saviors) {
        if (p.region == s.region && !p.extra_rps.empty()) {
          s.load_rps = std::max(0.0, s.load_rps - p.extra_rps[0]);
        }
      }
    }
  }
  return in;
}

absl::StatusOr<EvacuationPrediction> CapacityControl::Plan(PlanRequest* request,
                                                           const EvacuationOptions& options) {
  const Controller* c = steering_->controller();
  if (!c) return absl::NotFoundError("steering is not configured");
  std::vector<uint32_t> steps = request->steps_bp;
  if (steps.empty()) steps = DefaultRampBasisPoints();
  std::map<std::string, uint32_t> weights = request->saviors;
  if (weights.empty() && !options.auto_split) {
    for (const RegionSpec& r : c->spec().regions) {
      if (r.name == request->region) weights = r.saviors;
    }
  }
  for (const auto& [cohort, row] : request->cohort_saviors) {
    if (std::find(c->spec().cohorts.begin(), c->spec().cohorts.end(), cohort) ==
        c->spec().cohorts.end()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "cohorts.%s: not a cohort named by steering.cohorts rules (known: %s)", cohort,
          c->spec().cohorts.empty() ? std::string("none")
                                    : absl::StrJoin(c->spec().cohorts, ", ")));
    }
  }
  absl::StatusOr<EvacuationInput> in =
      Inputs(request->region, weights, request->cohort_saviors, steps, request->hold);
  if (!in.ok()) return in.status();
  if (options.auto_split) {
    bool any_capacity = false;
    for (const SaviorState& s : in->saviors) {
      bool candidate = options.candidates.empty() ||
                       std::find(options.candidates.begin(), options.candidates.end(), s.region) !=
                           options.candidates.end();
      any_capacity = any_capacity || (candidate && s.usable && s.capacity_rps > 0);
    }
    absl::StatusOr<SplitResult> split = absl::FailedPreconditionError("no capacity reported");
    if (any_capacity) split = SplitByCapacity(*in, options.candidates);
    if (split.ok()) {
      request->saviors = split->weights;
      request->auto_split = true;
    } else if (!absl::IsFailedPrecondition(split.status())) {
      return split.status();
    } else {
      // Nobody reports a capacity: the region's own saviors, else the candidates (or every
      // region) alike; said in the plan's log line by its weights.
      for (const RegionSpec& r : c->spec().regions) {
        if (r.name == request->region) request->saviors = r.saviors;
      }
      if (request->saviors.empty() || !options.candidates.empty()) {
        request->saviors.clear();
        for (const SaviorState& s : in->saviors) {
          bool listed = options.candidates.empty() ||
                        std::find(options.candidates.begin(), options.candidates.end(), s.region) !=
                            options.candidates.end();
          if (listed && s.usable) request->saviors[s.region] = 1;
        }
      }
      if (request->saviors.empty()) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "no savior for %s: no region reports a capacity and none is usable", request->region));
      }
      LOG_WARN("capacity: no savior of %s reports a capacity; splitting by weights {%s}",
               request->region, absl::StrJoin(request->saviors, ",", absl::PairFormatter("=")));
    }
    in->weights = request->saviors;
  }
  return PredictEvacuation(*in);
}

absl::StatusOr<json> CapacityControl::Preview(const PlanRequest& request,
                                              const EvacuationOptions& options) {
  if (request.kind != RampPlan::Kind::kEvacuate) {
    return absl::InvalidArgumentError("kind: only an evacuation has a preview");
  }
  PlanRequest planned = request;
  absl::StatusOr<EvacuationPrediction> prediction = Plan(&planned, options);
  if (!prediction.ok()) return prediction.status();
  json out = PredictionToJson(*prediction);
  out["saviors_weights"] = planned.saviors;
  out["auto_split"] = planned.auto_split;
  out["hook"] = hook_config_.has_value() && !options.no_hook;
  const bool over = std::isfinite(prediction->max_utilization) && prediction->max_utilization > 1.0;
  out["would_refuse"] = over;
  if (over) {
    out["refusal"] = absl::StrFormat(
        "%s would run at %s of its capacity at %s", prediction->busiest,
        Percent(prediction->max_utilization),
        FormatBasisPoints(prediction->steps_bp.empty() ? 0 : prediction->steps_bp.back()));
  }
  // Where the region already stands, its steps and the members each moves.
  const Controller* c = steering_->controller();
  std::string one_at_a_time;
  for (const RegionSpec& r : c->spec().regions) {
    if (r.name != request.region && r.evacuated_bp > 0) {
      one_at_a_time =
          absl::StrFormat("%s is evacuated %s", r.name, FormatBasisPoints(r.evacuated_bp));
    }
  }
  for (const RampPlan& plan : c->state().plans) {
    if (plan.active() && plan.kind == RampPlan::Kind::kEvacuate && plan.region != request.region) {
      one_at_a_time = absl::StrFormat("%s is being evacuated (plan %d)", plan.region, plan.id);
    }
  }
  if (!one_at_a_time.empty()) out["second_evacuation"] = one_at_a_time;
  return out;
}

bool CapacityControl::dns_enabled_for(const std::string& region) const {
  return dns_ && dns_->enabled() && dns_->Manages(region);
}

void CapacityControl::StartPlan(PlanRequest request, const EvacuationOptions& options,
                                const std::string& actor, SteeringControl::PlanDone done) {
  if (request.kind == RampPlan::Kind::kEvacuate) {
    const bool to_full = request.steps_bp.empty() || request.steps_bp.back() == kBasisPoints;
    const bool manages = dns_ && dns_->Manages(request.region);
    if (options.dns.value_or(false) || request.dns_first) {
      if (!dns_ || !dns_->enabled()) {
        done(absl::InvalidArgumentError("dns: no dns section is configured on this node"));
        return;
      }
      if (!manages) {
        done(absl::InvalidArgumentError(absl::StrFormat(
            "dns: %s has no record under a name it shares with another region (dns.records)",
            request.region)));
        return;
      }
      request.dns = true;
    } else if (!options.dns.has_value()) {
      request.dns = manages && dns_->in_plans() && to_full;
    }
    absl::StatusOr<EvacuationPrediction> prediction = Plan(&request, options);
    if (!prediction.ok()) {
      done(prediction.status());
      return;
    }
    if (std::isfinite(prediction->max_utilization) && prediction->max_utilization > 1.0 &&
        !request.force) {
      std::vector<std::string> figures;
      for (const SaviorPrediction& s : prediction->saviors) {
        if (s.share <= 0) continue;
        figures.push_back(absl::StrFormat("%s: %.0f of %.0f rps (%s)", s.region, s.predicted_rps,
                                          s.capacity_rps, Percent(s.max_utilization)));
      }
      done(absl::FailedPreconditionError(absl::StrFormat(
          "the evacuation of %s would take %s past its capacity at %s (%s); add capacity, "
          "choose other saviors, or force",
          request.region, prediction->busiest,
          FormatBasisPoints(prediction->steps_bp.empty() ? 0 : prediction->steps_bp.back()),
          absl::StrJoin(figures, "; "))));
      return;
    }
    if (!fleet_) {
      // Without a fleet, peer regions' nodes keep their own state: only this node's region
      // injects what this state says.
      request.inject_regions = std::set<std::string>{health_->local_region()};
    }
    request.hook = hook_config_.has_value() && !options.no_hook;
    request.prepare_timeout = request.hook ? hook_config_->capacity_timeout : kStandbyWait;
  }
  steering_->StartPlan(request, actor, std::move(done));
}

CapacityCheck CapacityControl::CheckCapacity(const RampPlan& plan) {
  CapacityCheck check;
  absl::StatusOr<EvacuationInput> in =
      Inputs(plan.region, plan.saviors, plan.cohort_saviors,
             std::vector<uint32_t>(plan.steps_bp.begin(), plan.steps_bp.end()), plan.hold);
  if (!in.ok()) {
    check.ready = check.enough = false;
    check.message = std::string(in.status().message());
    return check;
  }
  // Planning figures use the capacity with standbys; readiness wants it reported now.
  std::map<std::string, RegionCapacity> regions = Regions();
  for (SaviorState& s : in->saviors) s.capacity_rps = regions[s.region].capacity_rps * headroom_;
  EvacuationPrediction p = PredictEvacuation(*in);
  std::vector<std::string> parts;
  for (const SaviorPrediction& s : p.saviors) {
    if (s.share <= 0) continue;
    const RegionCapacity& r = regions[s.region];
    // Only nodes that share this steering state inject what it says: every node of a fleet,
    // or this node alone without one (a peer region's own node keeps its own state).
    bool shared = fleet_ != nullptr || s.region == health_->local_region();
    bool injected = shared && std::find(plan.injected.begin(), plan.injected.end(), s.region) !=
                                  plan.injected.end();
    bool serving = !injected || (r.reporting > 0 && r.applied == r.reporting);
    // Unknown capacity is no claim either way: the gates watch the ramp.
    // A forced plan was started past capacity on purpose: only its standbys are waited for.
    bool enough = plan.forced || !std::isfinite(s.max_utilization) || s.max_utilization <= 1.0;
    check.ready = check.ready && serving && enough;
    check.enough = check.enough && enough;
    parts.push_back(absl::StrFormat(
        "%s: %s%.0f of %.0f rps predicted (%s)", s.region,
        injected ? absl::StrFormat("standbys in on %d/%d nodes, ", r.applied, r.nodes) : "",
        s.predicted_rps, s.capacity_rps, Percent(s.max_utilization)));
  }
  check.message = absl::StrJoin(parts, "; ");
  return check;
}

std::optional<std::map<std::string, uint32_t>> CapacityControl::Rebalance(const RampPlan& plan) {
  absl::StatusOr<EvacuationInput> in =
      Inputs(plan.region, plan.saviors, plan.cohort_saviors, {kBasisPoints}, plan.hold);
  if (!in.ok()) return std::nullopt;
  std::vector<std::string> candidates;
  for (const auto& [savior, weight] : plan.saviors) candidates.push_back(savior);
  absl::StatusOr<SplitResult> split = SplitByCapacity(*in, candidates);
  if (!split.ok()) return std::nullopt;
  if (!ShouldRebalance(*in, plan.saviors, split->weights, kRebalanceMargin)) return std::nullopt;
  // Keep every savior in the row (weight 0 would leave the decision's fallback to every
  // usable region should the others become unusable).
  std::map<std::string, uint32_t> weights = split->weights;
  for (const auto& [savior, weight] : plan.saviors) weights.try_emplace(savior, 1);
  return weights;
}

json CapacityControl::RegionsJson() {
  json out = json::object();
  for (const auto& [region, r] : Regions()) {
    out[region] = json{
        {"nodes", r.nodes},
        {"reporting", r.reporting},
        {"capacity_rps", Rate(r.capacity_rps)},
        {"standby_capacity_rps", Rate(r.standby_capacity_rps)},
        {"load_rps", Rate(r.load_rps)},
        {"utilization", Ratio(r.capacity_rps > 0 ? r.load_rps / r.capacity_rps : std::nan(""))},
        {"standby_endpoints", r.standby_endpoints},
        {"injected_endpoints", r.injected_endpoints},
        {"nodes_with_all_standbys", r.applied}};
  }
  return out;
}

void CapacityControl::OnTick() {
  const Controller* c = steering_->controller();
  if (!c) return;
  auto pending = [c](uint64_t id) {
    const RampPlan* plan = c->FindPlan(id);
    return plan && plan->active() && plan->preparing && plan->hook == RampPlan::Hook::kPending;
  };
  // A hook whose plan no longer waits for it (aborted, or another node recorded it) stops.
  if (hook_plan_ != 0 && !pending(hook_plan_) && hook_ && hook_->running()) {
    LOG_INFO("plan %d no longer waits for its scale hook: stopping it", hook_plan_);
    hook_->Cancel();
    hook_plan_ = 0;
  }
  for (auto it = hook_results_.begin(); it != hook_results_.end();) {
    it = pending(it->first) ? std::next(it) : hook_results_.erase(it);
  }
  if (fleet_ && !fleet_->leader()) return;
  for (const RampPlan& plan : c->state().plans) {
    if (!pending(plan.id)) continue;
    if (auto done = hook_results_.find(plan.id); done != hook_results_.end()) {
      // It ran; its result is not recorded yet (a write in flight, or refused): say it again
      // rather than run the hook twice.
      if (!reporting_) ReportHook(plan.id, done->second.first, done->second.second);
      continue;
    }
    if (hook_ && hook_->running()) return;  // one at a time
    RunHook(plan);
    return;
  }
}

void CapacityControl::ReportHook(uint64_t id, bool ok, const std::string& output) {
  reporting_ = true;
  steering_->HookDone(id, ok, output, "scale-hook", [this, id](const absl::Status& s) {
    reporting_ = false;
    if (!s.ok()) {
      LOG_WARN("scale hook of plan %d: its result is not recorded yet: %s", id, s.message());
    }
  });
}

void CapacityControl::RunHook(const RampPlan& plan) {
  const uint64_t id = plan.id;
  auto report = [this, id](bool ok, const std::string& output) {
    hook_results_[id] = {ok, output};
    ReportHook(id, ok, output);
  };
  if (!hook_) {
    report(false, "no scale hook is configured on the leader (controller.hooks.scale)");
    return;
  }
  ScaleHookCall call;
  call.plan_id = id;
  call.region = plan.region;
  call.saviors = plan.saviors;
  absl::StatusOr<EvacuationInput> in =
      Inputs(plan.region, plan.saviors, plan.cohort_saviors, plan.steps_bp, plan.hold);
  if (in.ok()) {
    for (const SaviorPrediction& s : PredictEvacuation(*in).saviors) {
      if (s.share <= 0) continue;
      call.predictions.push_back({s.region, s.capacity_rps, s.load_rps, s.predicted_rps,
                                  std::isfinite(s.max_utilization) ? s.max_utilization : -1});
    }
  }
  LOG_INFO("plan %d: running the scale hook for %s", id, plan.region);
  hook_plan_ = id;
  hook_->Run(call, [this, report](ScaleHookResult result) {
    hook_plan_ = 0;
    std::string output = result.ok ? result.output : result.error;
    if (!result.ok && !result.output.empty()) output += ": " + result.output;
    if (output.size() > 2000) output = "..." + output.substr(output.size() - 2000);
    report(result.ok, output);
  });
}

json PredictionToJson(const EvacuationPrediction& p) {
  json saviors = json::array();
  for (const SaviorPrediction& s : p.saviors) {
    json extra = json::array();
    for (double e : s.extra_rps) extra.push_back(Rate(e));
    json utilization = json::array();
    for (double u : s.utilization) utilization.push_back(Ratio(u));
    json one{{"region", s.region},
             {"capacity_rps", Rate(s.capacity_rps)},
             {"load_rps", Rate(s.load_rps)},
             {"share", Ratio(s.share)},
             {"extra_rps", extra},
             {"utilization", utilization},
             {"predicted_rps", Rate(s.predicted_rps)},
             {"predicted_utilization", Ratio(s.max_utilization)},
             {"standbys_to_inject", s.share > 0 ? s.standby_endpoints : 0}};
    if (!s.usable) one["unusable"] = s.unusable;
    saviors.push_back(std::move(one));
  }
  json moved = json::array();
  for (size_t i = 0; i < p.steps_bp.size(); ++i) {
    moved.push_back(json{{"step", FormatBasisPoints(p.steps_bp[i])},
                         {"members_share", Ratio(p.moved_share[i])},
                         {"requests_per_second", Rate(p.moved_rps[i])}});
  }
  return json{{"region", p.region},
              {"region_rps", Rate(p.region_rps)},
              {"steps", moved},
              {"saviors", saviors},
              {"max_utilization", Ratio(p.max_utilization)},
              {"busiest", p.busiest},
              {"stays_rps", Rate(p.stays_rps)}};
}

}  // namespace sluice
