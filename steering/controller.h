// The steering controller (DESIGN.md, "The controller"): owns the steering state of one node
// (the table's spec and version, and the plans that ramp evacuations) and changes it on
// request: set a region's fraction directly, start a ramp (evacuate REGION to SAVIORS through
// steps with a hold each), abort a ramp where it stands, restore a region (ramp back to 0).
//
// Ramps advance in Tick(): before each step the controller asks a gate for the health of the
// regions that will take more traffic (the saviors of an evacuation, the region itself for a
// restore). A failing gate holds the ramp and re-checks every `recheck`; after
// `rollback_after` failed checks in a row the ramp rolls back one step. Every change bumps
// the version and is returned as an Event (for the log, the audit trail and publishing).
//
// Pure logic: no threads, no I/O, and time is an argument, so tests run without sleeping.
// proxy/ runs it on the control loop, persists State after every change and posts each new
// table to the workers. Not thread-safe.
#ifndef SLUICE_STEERING_CONTROLLER_H_
#define SLUICE_STEERING_CONTROLLER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "steering/steering_table.h"

namespace sluice {

struct RampPlan {
  enum class Kind : uint8_t { kEvacuate, kRestore };
  // kFailed: rolled back GateLimits::max_rollbacks times; the region stays where the last
  // rollback left it.
  enum class State : uint8_t { kRunning, kHolding, kDone, kAborted, kFailed };

  uint64_t id = 0;
  Kind kind = Kind::kEvacuate;
  State state = State::kRunning;
  std::string region;
  std::map<std::string, uint32_t> saviors;  // evacuate: the savior weights it sets
  // Evacuate: the region's own savior weights before the plan set its own (what its failover
  // uses too), put back when the region is restored while the plan's are still in force.
  std::map<std::string, uint32_t> replaced_saviors;
  std::vector<uint32_t> steps_bp;             // fractions in order (restore: down to 0)
  uint32_t start_bp = 0;                      // the region's fraction when the plan started
  absl::Duration hold = absl::Seconds(10);    // after each step, before the next
  int step = -1;                              // index of the last step taken; -1: none yet
  absl::Time next_at = absl::InfinitePast();  // when the next step (or gate re-check) is due
  uint32_t gate_failures = 0;                 // failed checks in a row
  std::string gate_message;                   // why the gate holds ("" when it does not)
  uint32_t rollbacks = 0;                     // steps taken back so far
  std::string last_rollback;                  // "rolled back from 25% to 10%: <why>"
  std::string actor;                          // who started it
  // Since when it holds (at a gate, preparing or at the DNS step), through re-checks and
  // rollbacks, until a step is taken; InfinitePast while it runs or once it is over (and for
  // a holding plan from a state file written before the field existed).
  absl::Time held_since = absl::InfinitePast();
  absl::Time created = absl::UnixEpoch();
  // Evacuate: cohort rows it sets with its first step (cohort -> row), and the region's rows
  // before (put back with the saviors).
  std::map<std::string, std::map<std::string, uint32_t>> cohort_saviors;
  std::map<std::string, std::map<std::string, uint32_t>> replaced_cohorts;
  bool auto_split = false;  // the saviors' weights follow their capacity, re-balanced at steps
  // Capacity before the ramp (DESIGN.md, step 2): the plan injects its saviors' hot standbys
  // (the regions it injected them in, taken out again when the region is restored), may wait
  // for a scale hook, then for the saviors to report capacity, until `prepare_until`; while
  // `preparing` it holds and takes no step.
  enum class Hook : uint8_t { kNone, kPending, kDone, kFailed };
  std::vector<std::string> injected;
  bool preparing = false;
  Hook hook = Hook::kNone;
  std::string hook_output;  // what the hook printed or answered (tail), and how it ended
  absl::Time prepare_until = absl::InfinitePast();  // set once the hook (if any) is done
  absl::Duration prepare_wait = absl::Seconds(30);  // the wait for capacity after the hook
  bool forced = false;  // started past a savior's predicted capacity: short capacity is waived
  absl::Time finished = absl::InfinitePast();  // done or aborted
  // The DNS step (DESIGN.md, step 4). Evacuate: after the last step (at 100 %), gated like a
  // step, the region's records go out of the names it shares (kWaiting until then); or at
  // once, for an edge that is dead. Restore: they come back before the first step. Then the
  // runtime reports (kPending -> kApplied or kFailed, with why); a DNS failure never holds or
  // undoes the ramp, and a plan may be done while its DNS state is still pending.
  enum class Dns : uint8_t { kNone, kWaiting, kPending, kApplied, kFailed };
  Dns dns = Dns::kNone;
  std::string dns_message;  // what was changed, or why not (yet)

  bool active() const { return state == State::kRunning || state == State::kHolding; }
  // kHolding, from `now` unless it was already holding.
  void Hold(absl::Time now) {
    if (state != State::kHolding) held_since = now;
    state = State::kHolding;
  }
  // kRunning: it moved on.
  void Run() {
    state = State::kRunning;
    held_since = absl::InfinitePast();
  }
};

const char* RampPlanKindName(RampPlan::Kind kind);
const char* RampPlanStateName(RampPlan::State state);
const char* RampPlanHookName(RampPlan::Hook hook);  // "none", "pending", "done", "failed"
// "none", "waiting", "pending", "applied", "failed"
const char* RampPlanDnsName(RampPlan::Dns dns);
bool ParseRampPlanDns(const std::string& text, RampPlan::Dns* out);

// The gate thresholds over the last window of a region's traffic.
struct GateLimits {
  double max_error_rate = 0.05;  // 5xx and failed tunnels / requests
  double max_shed_rate = 0.05;   // shed and rate-limited / requests
  absl::Duration max_p99 = absl::Seconds(2);
  absl::Duration recheck = absl::Seconds(5);  // how often a holding gate is checked again
  uint32_t rollback_after = 3;                // failed checks in a row before a step back
  uint32_t max_rollbacks = 3;                 // rollbacks before the plan fails
  // A change (a step, or a direct set) that sends more than this share of a region's members
  // at once onto one region is logged as a warning (members of several regions add up).
  double warn_step_share = 0.5;
};

// A region's health as the gate sees it.
struct RegionHealth {
  bool reachable = true;  // its /v1/health answered recently
  uint64_t requests = 0;  // attempts at its origins in the window
  double error_rate = 0;  // failed attempts / attempts, 0..1
  double shed_rate = 0;   // 0..1
  absl::Duration p99 = absl::ZeroDuration();
  // No attempt at its origins succeeded in the window, and they failed their health checks or
  // every attempt failed: the region cannot serve, whatever its (small) request count says.
  bool origins_down = false;
  std::string detail;  // why it is unreachable, or why its origins count as down
};

// Answers the health of a region by name, as of now.
using HealthGate = std::function<RegionHealth(const std::string& region)>;

// Whether a preparing plan's saviors are ready for its ramp.
struct CapacityCheck {
  bool ready = true;    // standbys serving on every savior node, and capacity for the plan
  bool enough = true;   // the reported capacity covers the predicted load (the rest may lag)
  std::string message;  // what is missing, or the figures
};

// The runtime's capacity view for plans (proxy/control/capacity_control.h). Optional: without
// one a plan does not wait and keeps its weights.
class PlanAdvisor {
 public:
  virtual ~PlanAdvisor() = default;
  virtual CapacityCheck CheckCapacity(const RampPlan& plan) = 0;
  // New weights for an auto-split plan before its next step, when the predictions drifted
  // past the margin; nullopt to keep them.
  virtual std::optional<std::map<std::string, uint32_t>> Rebalance(const RampPlan& plan) = 0;
};

// Everything that persists: the per-region steering values and the plans.
struct ControllerState {
  uint64_t version = 1;
  uint64_t next_plan_id = 1;
  std::vector<RegionSpec> regions;  // evacuated_bp, healthy, saviors, cohort_saviors by name
  std::vector<RampPlan> plans;      // active ones, then the most recent finished ones
  // The detector's mode as last set through the API ("": the configuration's), by whom, when.
  std::string detection_mode;
  std::string detection_actor;
  absl::Time detection_set = absl::InfinitePast();
};

// A direct change of one region (PUT /v1/steering/regions/{region}). Unset fields keep their
// value.
struct RegionChange {
  std::string region;
  bool has_fraction = false;
  uint32_t evacuated_bp = 0;
  bool has_saviors = false;
  std::map<std::string, uint32_t> saviors;
  bool has_healthy = false;
  bool healthy = true;
  bool has_cohorts = false;  // replaces every cohort row of the region
  std::map<std::string, std::map<std::string, uint32_t>> cohort_saviors;
  bool has_misrouted = false;
  std::optional<MisroutedMode> misrouted;  // unset: the configuration's
  uint64_t expected_version = 0;           // 0: any; otherwise a stale version is refused
  bool force = false;                      // abort an active plan on the region first
};

struct PlanRequest {
  RampPlan::Kind kind = RampPlan::Kind::kEvacuate;
  std::string region;
  std::map<std::string, uint32_t> saviors;  // evacuate: required unless the region has some
  std::vector<uint32_t> steps_bp;           // empty: the default ramp
  absl::Duration hold = absl::Seconds(10);
  // Evacuate: cohort rows to set (cohort -> row); cohorts not named keep theirs.
  std::map<std::string, std::map<std::string, uint32_t>> cohort_saviors;
  bool auto_split = false;      // the saviors were chosen by capacity (re-balanced at steps)
  bool inject_standbys = true;  // inject the saviors' hot standbys before the ramp
  // Only in these regions (those whose nodes share this state: without a fleet, this node's
  // own); unset: every savior.
  std::optional<std::set<std::string>> inject_regions;
  bool hook = false;  // wait for the scale hook (the runtime runs it)
  absl::Duration prepare_timeout = absl::Seconds(30);  // for the saviors' capacity
  // Replace an active plan on the same region; evacuate a second region; ramp past a
  // savior's predicted capacity.
  bool force = false;
  // Evacuate: end with the DNS step (the plan must end at 100 %); `dns_first`: take the
  // records out with the plan's start (the region's edge is dead: steering cannot reach its
  // clients). A restore puts records that are out back first, whatever it says.
  bool dns = false;
  bool dns_first = false;
};

// One change, for the log and the audit trail.
struct ControllerEvent {
  absl::Time time;
  std::string actor;   // "controller" for ramp steps
  std::string action;  // "set us-east-1 25%", "plan 3 step 2/6: us-east-1 10%", ...
  uint64_t version_before = 0;
  uint64_t version_after = 0;  // equal to version_before when the table did not change
  bool warning = false;        // something people should look at (logged as a warning)
};

// How much moves onto one region when the table goes from `before` to `after`: for each
// region, the members of every region it serves after but not before, in shares of their
// region (0.5 + 0.25: half of one region's members and a quarter of another's), by the
// weights and the usable rule of the decision (cohort rows and reachability left out).
struct Arrival {
  std::string region;
  double share = 0;          // the sum over the regions the members come from
  std::string from_regions;  // "50% of us-west-2's, 50% of us-east-1's"
};
// The region that takes the most; share 0 when nobody moves onto anyone.
Arrival LargestArrival(const SteeringSpec& before, const SteeringSpec& after);

// The default ramp: 1, 5, 10, 25, 50, 100 %.
std::vector<uint32_t> DefaultRampBasisPoints();

class Controller {
 public:
  // `base` is the configuration's spec (region names, salts, local region, cohorts); `state`
  // overrides the values it carries. Fails when the combination does not make a valid table.
  static absl::StatusOr<Controller> Create(SteeringSpec base, ControllerState state,
                                           GateLimits limits);
  // The state a configuration's spec stands for, before anything was changed.
  static ControllerState StateFromSpec(const SteeringSpec& spec);

  // Status codes: InvalidArgument (bad values: 400), NotFound (no such region or plan: 404),
  // FailedPrecondition (an active plan is in the way, or the version is stale: 409).
  // With `gate`, guardrails that need health too (FailedPrecondition unless forced): an
  // evacuation whose saviors cannot take anyone (each evacuated, unhealthy, unreachable or
  // with its origins down), and a restore into a region whose origins are down.
  absl::Status SetRegion(const RegionChange& change, const std::string& actor, absl::Time now,
                         const HealthGate& gate = nullptr);
  absl::StatusOr<uint64_t> StartPlan(const PlanRequest& request, const std::string& actor,
                                     absl::Time now, const HealthGate& gate = nullptr);
  // `keep_standbys`: a plan replacing it takes over the standbys it injected.
  absl::Status AbortPlan(uint64_t id, const std::string& actor, absl::Time now,
                         bool keep_standbys = false);
  // The detector's mode ("off", "alert", "auto"; InvalidArgument otherwise), kept with the
  // state so that every node of a fleet and a restart use it. The table does not change.
  absl::Status SetDetectionMode(const std::string& mode, const std::string& actor, absl::Time now);

  // Injects (or takes out) the hot standbys of `cluster` ("*": every cluster) on every node
  // of `region`.
  absl::Status SetStandbys(const std::string& region, const std::string& cluster, bool inject,
                           const std::string& actor, absl::Time now);
  // The scale hook of a preparing plan ended: ok lets it go on to the capacity check; a
  // failure holds it (with `output` shown) until it is aborted.
  absl::Status HookDone(uint64_t id, bool ok, const std::string& output, const std::string& actor,
                        absl::Time now);

  // The runtime's DNS control reports on plan `id`'s DNS step: pending (being retried; the
  // message says why), applied or failed. Id 0: a change no plan asked for (a region set to
  // 0 %): only recorded.
  absl::Status DnsReport(uint64_t id, RampPlan::Dns state, const std::string& message,
                         const std::string& actor, absl::Time now);

  // Takes every step that is due, asking `gate` first (and `advisor`, when set, whether the
  // saviors are ready and whether to re-balance). Returns true when the state changed.
  bool Tick(absl::Time now, const HealthGate& gate, PlanAdvisor* advisor = nullptr);
  // When Tick next has something to do; InfiniteFuture when no plan is active.
  absl::Time NextDue() const;

  const SteeringTablePtr& table() const { return table_; }
  const ControllerState& state() const { return state_; }
  const SteeringSpec& spec() const { return spec_; }
  const GateLimits& limits() const { return limits_; }
  const RampPlan* FindPlan(uint64_t id) const;
  const RampPlan* ActivePlanFor(const std::string& region) const;
  // Events since the last call, oldest first.
  std::vector<ControllerEvent> TakeEvents();

 private:
  Controller(SteeringSpec spec, ControllerState state, GateLimits limits)
      : spec_(std::move(spec)), state_(std::move(state)), limits_(limits) {}
  // Builds the table for `next` with version + 1; on success the spec, state and table move on
  // and an event is recorded. On failure nothing changes.
  absl::Status Commit(SteeringSpec next, const std::string& actor, const std::string& action,
                      absl::Time now);
  void Record(const std::string& actor, const std::string& action, absl::Time now, uint64_t before,
              bool warning = false);
  // Records a warning when going from `before` to the current spec moved more than
  // GateLimits::warn_step_share of a region's members onto one region; `what` names the change.
  void WarnIfLargeMove(const SteeringSpec& before, const std::string& what, absl::Time now);
  RegionSpec* FindRegion(SteeringSpec* spec, const std::string& name);
  void Advance(RampPlan* plan, absl::Time now, const HealthGate& gate, PlanAdvisor* advisor);
  // Why the regions that take more traffic with the plan's next move are not healthy; "" when
  // they are.
  std::string GateHolds(const RampPlan& plan, const HealthGate& gate) const;
  // An evacuation at 100 % whose DNS step is due: takes the region's records out, gated.
  void DnsStep(RampPlan* plan, absl::Time now, const HealthGate& gate);
  // A preparing plan: true when its ramp may start now.
  bool Prepare(RampPlan* plan, absl::Time now, PlanAdvisor* advisor);
  // FailedPrecondition naming the other region when a region other than `region` is
  // evacuated or has an active evacuation (one region at a time).
  absl::Status CheckOneAtATime(const std::string& region) const;
  // Takes out the standbys `plan` injected that no other active plan needs; says what.
  std::string TakeOutStandbys(SteeringSpec* next, const RampPlan& plan);
  // Ends a plan. Reorders the plans: `plan` must not be used afterwards.
  void Finish(RampPlan* plan, RampPlan::State state, absl::Time now);
  // When `region` is at 0% in `next`: puts back the savior weights and cohort rows its last
  // evacuation replaced (while they are still the ones it set) and takes out the standbys it
  // injected; says so ("" when nothing changed).
  std::string RestoreReplacedSaviors(SteeringSpec* next, const std::string& region);
  void TrimHistory();

  SteeringSpec spec_;
  ControllerState state_;
  GateLimits limits_;
  SteeringTablePtr table_;
  std::vector<ControllerEvent> events_;
};

}  // namespace sluice

#endif  // SLUICE_STEERING_CONTROLLER_H_
