#include "proxy/control/steering_control.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "proxy/fleet/fleet.h"
#include "steering/state_file.h"

namespace sluice {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrFormat("%s: %s", what, std::strerror(errno)));
}

// Writes all of `data` or fails.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// A ramp step that could not be saved (or written to the store) is tried again this much later.
constexpr uint64_t kRetryAfterFailedSaveMs = 1000;
// A change that lost the compare-and-swap is made again on the newer state this many times.
constexpr int kWriteAttempts = 5;

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, std::string_view contents) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  if (dir.empty()) dir = "/";
  // A new file of an unpredictable name (mkostemp: O_CREAT|O_EXCL, mode 0600): nothing planted
  // beside the state file, a symbolic link say, is ever opened or overwritten.
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return Errno("cannot create " + tmp);
  if (!WriteAll(fd, contents) || ::fsync(fd) != 0) {
    absl::Status s = Errno("cannot write " + tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  if (::close(fd) != 0) {
    absl::Status s = Errno("cannot write " + tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = Errno("cannot rename " + tmp + " to " + path);
    ::unlink(tmp.c_str());
    return s;
  }
  // The rename is durable only once the directory entry is.
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return Errno("cannot open " + dir);
  int synced = ::fsync(dir_fd);
  ::close(dir_fd);
  if (synced != 0) return Errno("cannot sync " + dir);
  return absl::OkStatus();
}

absl::StatusOr<ControllerState> LoadStateFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return absl::NotFoundError(path + ": no saved state");
    return absl::InvalidArgumentError(
        absl::StrFormat("steering state %s: cannot read it: %s", path, std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<ControllerState> state = DecodeControllerState(text.str());
  if (!state.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "steering state %s is damaged (%s); it was left as it is. Repair it, or move it away "
        "to start from the configuration's table",
        path, state.status().message()));
  }
  return state;
}

SteeringControl::SteeringControl(uv_loop_t* loop, Publish publish)
    : loop_(loop), publish_(std::move(publish)) {}

SteeringControl::~SteeringControl() { Stop(); }

absl::Status SteeringControl::Start(const Config& config) {
  state_file_ = config.controller.state_file;
  audit_log_ = config.controller.audit_log;
  if (!audit_log_.empty()) {
    audit_fd_ = ::open(audit_log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (audit_fd_ < 0) {
      return absl::InvalidArgumentError(absl::StrFormat("controller.audit_log: cannot open %s: %s",
                                                        audit_log_, std::strerror(errno)));
    }
  }
  if (!config.steering.enabled) return absl::OkStatus();
  spec_ = config.steering.spec;
  limits_ = config.controller.gates;
  ControllerState state = Controller::StateFromSpec(config.steering.spec);
  bool restored = false;
  if (!state_file_.empty()) {
    absl::StatusOr<ControllerState> saved = LoadStateFile(state_file_);
    if (saved.ok()) {
      state = *std::move(saved);
      restored = true;
    } else if (!absl::IsNotFound(saved.status())) {
      return saved.status();
    }
  }
  absl::StatusOr<Controller> controller =
      Controller::Create(config.steering.spec, std::move(state), config.controller.gates);
  if (!controller.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("steering state %s does not fit the configuration: %s", state_file_,
                        controller.status().message()));
  }
  controller_ = *std::move(controller);
  if (restored) {
    size_t active = 0;
    for (const RampPlan& plan : controller_->state().plans) active += plan.active() ? 1 : 0;
    LOG_INFO("steering state restored from %s: table version %d, %d active plans", state_file_,
             controller_->state().version, active);
  } else if (state_file_.empty()) {
    LOG_WARN("controller.state_file is not set: steering changes last until sluice exits");
  } else {
    // The first start with a state file: write it, so that a file that cannot be written is
    // found now and not in the middle of an evacuation.
    if (absl::Status s =
            WriteFileAtomically(state_file_, EncodeControllerState(controller_->state()));
        !s.ok()) {
      return absl::InvalidArgumentError("controller.state_file: " + std::string(s.message()));
    }
  }
  timing_ = true;
  Reschedule();
  return absl::OkStatus();
}

absl::Status SteeringControl::CheckReconfigure(const Config& config) const {
  if (!config.steering.enabled || !controller_) return absl::OkStatus();
  return Controller::Create(config.steering.spec, controller_->state(), config.controller.gates)
      .status();
}

void SteeringControl::Reconfigure(const Config& config) {
  if (!config.steering.enabled) {
    if (controller_) LOG_WARN("reload: steering is no longer configured; every request is local");
    controller_.reset();
    return;
  }
  ControllerState state =
      controller_ ? controller_->state() : Controller::StateFromSpec(config.steering.spec);
  absl::StatusOr<Controller> next =
      Controller::Create(config.steering.spec, std::move(state), config.controller.gates);
  if (!next.ok()) {
    LOG_ERROR("reload: steering kept as it was: %s", std::string(next.status().message()));
    return;
  }
  bool was = controller_.has_value();
  controller_ = *std::move(next);
  spec_ = config.steering.spec;
  limits_ = config.controller.gates;
  if (!was) timing_ = true;
  Reschedule();
}

void SteeringControl::Stop() {
  timer_.Close();
  timing_ = false;
  if (audit_fd_ >= 0) {
    ::close(audit_fd_);
    audit_fd_ = -1;
  }
}

absl::Status SteeringControl::Adopt(Controller next) {
  // Saved even without events: a holding ramp's failed gate checks are state too.
  std::vector<ControllerEvent> events = next.TakeEvents();
  if (!state_file_.empty()) {
    if (absl::Status s = WriteFileAtomically(state_file_, EncodeControllerState(next.state()));
        !s.ok()) {
      LOG_ERROR("steering change not made, the state cannot be saved: %s",
                std::string(s.message()));
      return absl::InternalError("the steering state cannot be saved: " + std::string(s.message()));
    }
  }
  bool table_changed = next.table() != controller_->table();
  controller_ = std::move(next);
  for (const ControllerEvent& event : events) Audit(event);
  if (table_changed) publish_(controller_->table());
  Reschedule();
  return absl::OkStatus();
}

void SteeringControl::Audit(const ControllerEvent& event) {
  audit_trail_.Add(event);
  if (event.warning) {
    LOG_WARN("steering: %s", event.action);
  } else {
    LOG_INFO("steering: %s (by %s, table version %d -> %d)", event.action, event.actor,
             event.version_before, event.version_after);
  }
  if (audit_fd_ < 0) return;
  nlohmann::json line{
      {"time", absl::FormatTime(absl::RFC3339_full, event.time, absl::UTCTimeZone())},
      {"actor", event.actor},
      {"action", event.action},
      {"version_before", event.version_before},
      {"version_after", event.version_after}};
  if (event.warning) line["warning"] = true;
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (!WriteAll(audit_fd_, text)) {
    LOG_ERROR("audit log %s: %s", audit_log_, std::strerror(errno));
  }
}

void SteeringControl::AdoptStored(Controller next, int64_t revision, const char* source,
                                  bool from_store) {
  if (revision <= adopted_revision_) {  // a newer state is already in force
    Reschedule();
    return;
  }
  if (!state_file_.empty()) {
    if (absl::Status s = WriteFileAtomically(state_file_, EncodeControllerState(next.state()));
        !s.ok()) {
      // The store holds it: only the local last-known-good copy is behind.
      LOG_ERROR("steering state %s not saved: %s", state_file_, std::string(s.message()));
    }
  }
  bool table_changed = next.table() != controller_->table();
  uint64_t before = controller_->state().version;
  controller_ = std::move(next);
  adopted_revision_ = revision;
  if (table_changed || before != controller_->state().version) {
    LOG_INFO("steering: table version %d %s (etcd revision %d)", controller_->state().version,
             source, revision);
    if (from_store) {
      // Made by another node (or written to etcd by hand): on this node's trail too.
      Audit(ControllerEvent{absl::Now(), "fleet",
                            absl::StrFormat("adopted from etcd revision %d", revision), before,
                            controller_->state().version});
    }
  }
  if (table_changed) publish_(controller_->table());
  Reschedule();
}

void SteeringControl::AdoptFromFleet(ControllerState state, int64_t revision) {
  if (!controller_ || revision <= adopted_revision_) return;
  // Regions of the fleet's table that this node's configuration lacks: it can serve the rest
  // (it could not tunnel there anyway), but a change or a ramp step written from its copy
  // would drop them from every node's table.
  std::string missing;
  for (const RegionSpec& region : state.regions) {
    bool known = std::any_of(spec_.regions.begin(), spec_.regions.end(),
                             [&](const RegionSpec& r) { return r.name == region.name; });
    if (!known) missing += (missing.empty() ? "" : ", ") + region.name;
  }
  absl::StatusOr<Controller> next = Controller::Create(spec_, std::move(state), limits_);
  if (!next.ok()) {
    fleet_error_ = absl::StrFormat(
        "the fleet's steering state at etcd revision %d does not fit this node's configuration "
        "(%s); serving with table version %d, making no changes and not leading",
        revision, next.status().message(), controller_->state().version);
    LOG_ERROR("%s", fleet_error_);
    if (fleet_) fleet_->SetEligible(false);
    return;
  }
  next->TakeEvents();
  if (missing.empty()) {
    fleet_error_.clear();
  } else {
    fleet_error_ = absl::StrFormat(
        "the fleet's table has regions this node's configuration lacks (%s): it serves the "
        "rest, but makes no changes and does not lead; change the table through a node that "
        "has them, and add them here",
        missing);
    LOG_ERROR("%s", fleet_error_);
  }
  if (fleet_) fleet_->SetEligible(fleet_error_.empty());
  AdoptStored(*std::move(next), revision, "from the fleet", /*from_store=*/true);
}

void SteeringControl::OnLeadership(bool leader) {
  if (leader) {
    // Plans continue from the step the store has: the first due step is taken now.
    OnTimer();
  } else {
    timer_.Stop();
  }
}

void SteeringControl::SetHandingOver(bool handing_over) {
  handing_over_ = handing_over;
  if (handing_over) {
    timer_.Stop();
  } else {
    Reschedule();
  }
}

void SteeringControl::Apply(Change change, Done done, int attempts_left) {
  if (!controller_) {
    done(absl::NotFoundError("steering is not configured"));
    return;
  }
  if (handing_over_) {
    done(absl::UnavailableError(
        "a binary upgrade is handing this node over to a new process; try again in a moment"));
    return;
  }
  if (fleet_ && !fleet_error_.empty()) {
    // A change made on this node's older state would overwrite the fleet's newer one.
    done(absl::FailedPreconditionError(fleet_error_));
    return;
  }
  Controller next = *controller_;
  if (absl::Status s = change(&next, absl::Now()); !s.ok()) {
    done(s);
    return;
  }
  if (!fleet_) {
    done(Adopt(std::move(next)));
    return;
  }
  std::vector<ControllerEvent> events = next.TakeEvents();
  ControllerState state = next.state();
  fleet_->Write(
      state, /*as_leader=*/false,
      [this, next = std::move(next), events = std::move(events), change = std::move(change),
       done = std::move(done), attempts_left](const absl::Status& s, int64_t revision) mutable {
        if (s.ok()) {
          for (const ControllerEvent& event : events) Audit(event);
          AdoptStored(std::move(next), revision, "written to the fleet", /*from_store=*/false);
          done(absl::OkStatus());
          return;
        }
        if (absl::IsAborted(s) && attempts_left > 1) {
          // Another node wrote first; its state is in force now: make the change on it.
          Apply(std::move(change), std::move(done), attempts_left - 1);
          return;
        }
        done(s);
      });
}

void SteeringControl::SetRegion(const RegionChange& change, const std::string& actor, Done done) {
  Apply(
      [this, change, actor](Controller* next, absl::Time now) {
        return next->SetRegion(change, actor, now, gate_);
      },
      std::move(done), kWriteAttempts);
}

void SteeringControl::StartPlan(const PlanRequest& request, const std::string& actor,
                                PlanDone done) {
  auto id = std::make_shared<uint64_t>(0);
  Apply(
      [this, request, actor, id](Controller* next, absl::Time now) {
        absl::StatusOr<uint64_t> started = next->StartPlan(request, actor, now, gate_);
        if (!started.ok()) return started.status();
        *id = *started;
        return absl::OkStatus();
      },
      [this, id, done = std::move(done)](const absl::Status& s) {
        if (!s.ok()) {
          done(s);
          return;
        }
        // The first step is due now: take it without waiting for the timer (with a fleet,
        // only the leader does, and it learns of the plan from the store if it is another).
        OnTimer();
        done(*id);
      },
      kWriteAttempts);
}

void SteeringControl::AbortPlan(uint64_t id, const std::string& actor, Done done) {
  Apply([id, actor](Controller* next, absl::Time now) { return next->AbortPlan(id, actor, now); },
        std::move(done), kWriteAttempts);
}

void SteeringControl::SetDetectionMode(const std::string& mode, const std::string& actor,
                                       Done done) {
  Apply([mode, actor](Controller* next,
                      absl::Time now) { return next->SetDetectionMode(mode, actor, now); },
        std::move(done), kWriteAttempts);
}

void SteeringControl::SetStandbys(const std::string& region, const std::string& cluster,
                                  bool inject, const std::string& actor, Done done) {
  Apply(
      [region, cluster, inject, actor](Controller* next, absl::Time now) {
        return next->SetStandbys(region, cluster, inject, actor, now);
      },
      std::move(done), kWriteAttempts);
}

void SteeringControl::HookDone(uint64_t id, bool ok, const std::string& output,
                               const std::string& actor, Done done) {
  Apply(
      [id, ok, output, actor](Controller* next, absl::Time now) {
        return next->HookDone(id, ok, output, actor, now);
      },
      [this, done = std::move(done)](const absl::Status& s) {
        if (s.ok()) OnTimer();  // the plan goes on at once
        done(s);
      },
      kWriteAttempts);
}

void SteeringControl::DnsReport(uint64_t id, RampPlan::Dns state, const std::string& message,
                                const std::string& actor, Done done) {
  Apply(
      [id, state, message, actor](Controller* next, absl::Time now) {
        return next->DnsReport(id, state, message, actor, now);
      },
      std::move(done), kWriteAttempts);
}

void SteeringControl::Reschedule() {
  if (!timing_ || !controller_ || handing_over_) return;
  if (fleet_ && (!fleet_->leader() || leader_write_)) {
    // Only the leader advances ramps; a write in flight reschedules when it is answered.
    if (!leader_write_) timer_.Stop();
    return;
  }
  absl::Time due = controller_->NextDue();
  if (due == absl::InfiniteFuture()) {
    timer_.Stop();
    return;
  }
  int64_t ms = absl::ToInt64Milliseconds(due - absl::Now());
  timer_.Start(loop_, static_cast<uint64_t>(std::max<int64_t>(ms, 0)), 0, [this] { OnTimer(); });
}

void SteeringControl::OnTimer() {
  if (!controller_ || handing_over_) return;
  if (fleet_) {
    OnTimerFleet();
    return;
  }
  if (controller_->NextDue() > absl::Now()) {
    Reschedule();
    return;
  }
  Controller next = *controller_;
  next.Tick(absl::Now(), gate_, advisor_);
  if (!Adopt(std::move(next)).ok() && timing_) {
    timer_.Start(loop_, kRetryAfterFailedSaveMs, 0, [this] { OnTimer(); });
    return;
  }
  Reschedule();
}

void SteeringControl::OnTimerFleet() {
  // A leader that cannot use the fleet's state takes no step on its own older one.
  if (!fleet_->leader() || leader_write_ || !fleet_error_.empty()) return;
  if (controller_->NextDue() > absl::Now()) {
    Reschedule();
    return;
  }
  Controller next = *controller_;
  next.Tick(absl::Now(), gate_, advisor_);
  if (EncodeControllerState(next.state()) == EncodeControllerState(controller_->state())) {
    Reschedule();
    return;
  }
  std::vector<ControllerEvent> events = next.TakeEvents();
  ControllerState state = next.state();
  leader_write_ = true;
  fleet_->Write(state, /*as_leader=*/true,
                [this, next = std::move(next), events = std::move(events)](
                    const absl::Status& s, int64_t revision) mutable {
                  leader_write_ = false;
                  if (s.ok()) {
                    for (const ControllerEvent& event : events) Audit(event);
                    AdoptStored(std::move(next), revision, "written to the fleet",
                                /*from_store=*/false);
                    return;
                  }
                  if (absl::IsAborted(s)) {
                    // The newer state is in force: look at its plans again.
                    Reschedule();
                    return;
                  }
                  if (absl::IsUnavailable(s)) {
                    // The ramp pauses until the store is back: never a step without it.
                    LOG_WARN("steering: ramp step not taken: %s", std::string(s.message()));
                    if (timing_) {
                      timer_.Start(loop_, kRetryAfterFailedSaveMs, 0, [this] { OnTimer(); });
                    }
                  }
                  // FailedPrecondition: no longer the leader; the new one continues.
                });
}

}  // namespace sluice
