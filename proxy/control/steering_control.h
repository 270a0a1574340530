// The steering controller as this node runs it, on the control thread's loop: the Controller
// (steering/controller.h) plus what it must not know about: the clock, a timer for the ramps,
// the state file (written atomically after every change, read at start), the audit log, and
// publishing each new table to the workers.
//
// Every change goes through the same path: the controller changes a copy, the copy is saved,
// and only then is it adopted, audited and published. A change that cannot be saved is
// refused (an API change gets the error, a ramp step is tried again later), so what the
// workers serve with is always what a restart would load.
//
// With a fleet (proxy/fleet/fleet.h) the store is the authority instead: a change is written to
// etcd first (a compare-and-swap on the state's revision, tried again on the newer state when
// another write came first) and adopted only once written; states written by other nodes
// arrive from the fleet's watch and are adopted the same way (saved locally as the
// last-known-good copy, then published). Only the fleet's leader advances ramps.
//
// Control thread only.
#ifndef SLUICE_PROXY_CONTROL_STEERING_CONTROL_H_
#define SLUICE_PROXY_CONTROL_STEERING_CONTROL_H_

#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proxy/config/config.h"
#include "proxy/control/audit_trail.h"
#include "proxy/event/loop_timer.h"
#include "steering/controller.h"

namespace sluice {

// Writes `contents` to `path` so that a crash leaves either the old file or the new one: a
// temporary file in the same directory, fsync, rename over `path`, fsync of the directory.
absl::Status WriteFileAtomically(const std::string& path, std::string_view contents);

// Reads the state file: NotFound when there is none (a first start), InvalidArgument with the
// path and what is wrong when it cannot be used.
absl::StatusOr<ControllerState> LoadStateFile(const std::string& path);

class Fleet;

class SteeringControl {
 public:
  using Publish = std::function<void(SteeringTablePtr)>;
  using Done = std::function<void(const absl::Status&)>;
  using PlanDone = std::function<void(const absl::StatusOr<uint64_t>&)>;

  SteeringControl(uv_loop_t* loop, Publish publish);
  SteeringControl(const SteeringControl&) = delete;
  SteeringControl& operator=(const SteeringControl&) = delete;
  ~SteeringControl();

  // Builds the controller from the configuration and the saved state (which wins). Fails,
  // and sluice refuses to start, when the state file is unreadable or corrupt: serving an
  // older table than the one saved could send traffic back into an evacuated region.
  absl::Status Start(const Config& config);
  // A reloaded configuration: the controller is rebuilt on it, keeping its state. On failure
  // nothing changes and the reload must be refused.
  absl::Status CheckReconfigure(const Config& config) const;
  void Reconfigure(const Config& config);
  void Stop();

  bool enabled() const { return controller_.has_value(); }
  // The table the workers should serve with; null when steering is off.
  SteeringTablePtr table() const { return controller_ ? controller_->table() : nullptr; }
  const Controller* controller() const { return controller_ ? &*controller_ : nullptr; }

  // The gate's view of each region's health (null: every region passes).
  void SetHealthGate(HealthGate gate) { gate_ = std::move(gate); }
  const HealthGate& gate() const { return gate_; }
  // Whether preparing plans' saviors are ready, and re-balancing (null: neither).
  void SetAdvisor(PlanAdvisor* advisor) { advisor_ = advisor; }

  // The fleet this node belongs to (null: this node's controller is the authority). Set once,
  // after Start().
  void SetFleet(Fleet* fleet) { fleet_ = fleet; }
  // From the fleet: a newer state at `revision`, and changes of leadership.
  void AdoptFromFleet(ControllerState state, int64_t revision);
  void OnLeadership(bool leader);
  // Why the last state from the fleet was not adopted ("" when it was).
  const std::string& fleet_error() const { return fleet_error_; }
  // A binary upgrade is handing this node over: no ramp step and no change here until it
  // ends (the new process has read the state; a change now would be lost or taken twice).
  // false again when the upgrade failed and this process goes on.
  void SetHandingOver(bool handing_over);

  // The admin API. `done` runs once, at once without a fleet, once the store answered with
  // one. Errors carry the status codes documented on Controller, plus Internal when the state
  // file cannot be written, Unavailable without the store, and Aborted when other writers kept
  // changing the table (nothing changed in each case).
  void SetRegion(const RegionChange& change, const std::string& actor, Done done);
  void StartPlan(const PlanRequest& request, const std::string& actor, PlanDone done);
  void AbortPlan(uint64_t id, const std::string& actor, Done done);
  // The detector's mode, kept with the state (Controller::SetDetectionMode).
  void SetDetectionMode(const std::string& mode, const std::string& actor, Done done);
  // Standbys of `cluster` ("*": all) on every node of `region` (Controller::SetStandbys).
  void SetStandbys(const std::string& region, const std::string& cluster, bool inject,
                   const std::string& actor, Done done);
  // A plan's scale hook ended (Controller::HookDone).
  void HookDone(uint64_t id, bool ok, const std::string& output, const std::string& actor,
                Done done);
  // The DNS step's state on plan `id` (Controller::DnsReport).
  void DnsReport(uint64_t id, RampPlan::Dns state, const std::string& message,
                 const std::string& actor, Done done);

  // One line of the audit trail (controller.audit_log, the log, and the in-memory ring that
  // GET /v1/audit reads), for changes made outside the steering table too (standby injection).
  void Audit(const ControllerEvent& event);
  // The newest audit events of this process (kept with or without controller.audit_log).
  const AuditTrail& audit_trail() const { return audit_trail_; }

 private:
  // A change to make on a copy of the controller.
  using Change = std::function<absl::Status(Controller* next, absl::Time now)>;
  // Applies `change` to a copy and adopts it: directly (saved first) without a fleet, written
  // to the store first with one.
  void Apply(Change change, Done done, int attempts_left);
  // Saves `next` and adopts it; audits and publishes what changed.
  absl::Status Adopt(Controller next);
  // Adopts a controller whose state the store holds at `revision` (saving is best effort:
  // the store has it). `from_store`: another writer made it (audited here); otherwise this
  // node did, and audited it.
  void AdoptStored(Controller next, int64_t revision, const char* source, bool from_store);
  void Reschedule();
  void OnTimer();
  void OnTimerFleet();

  uv_loop_t* loop_;
  Publish publish_;
  std::optional<Controller> controller_;
  std::string state_file_;
  std::string audit_log_;
  int audit_fd_ = -1;
  AuditTrail audit_trail_;
  HealthGate gate_;
  PlanAdvisor* advisor_ = nullptr;
  LoopTimer timer_;      // the next ramp step or gate check
  bool timing_ = false;  // between Start (or a reload that enabled steering) and Stop
  SteeringSpec spec_;    // the configuration's, for states from the fleet
  GateLimits limits_;
  Fleet* fleet_ = nullptr;
  int64_t adopted_revision_ = 0;  // the store revision of the state in force
  bool leader_write_ = false;     // a ramp step is being written
  bool handing_over_ = false;     // SetHandingOver
  std::string fleet_error_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_STEERING_CONTROL_H_
