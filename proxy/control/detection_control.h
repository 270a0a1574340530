// The sick-region detector as this node runs it, on the control thread's loop: the Detector
// (steering/detector.h) plus what it must not know about: the clock, a timer, where the
// regions' signal comes from, the history on disk, and the controller it asks to evacuate.
//
// Every second:
//  1. The fleet-wide signal of each region: with a fleet, the leader sums the nodes' published
//     views (its own from its fresh sample) and the other nodes read the leader's sums
//     (steering/fleet_view.h, SignalsFromSums); without one, this node's sample plus each
//     peer region's last /v1/health report (SumSignals).
//  2. The history records it (every node keeps the fleet's series, so whichever node leads
//     has it); closed 10 s slots and their minutes go to the store.
//  3. The detector judges; verdict changes are logged and audited (actor "detector").
//  4. In auto mode, on the node that acts (the fleet's leader, or any node without a fleet),
//     a sick verdict starts an evacuation plan through SteeringControl::StartPlan: the same
//     controller, gates and audit trail as a person's.
//
// The mode is the configuration's until someone sets it through the API; then the steering
// state carries it (every node of a fleet, and a restart, use it).
//
// Control thread only.
#ifndef SLUICE_PROXY_CONTROL_DETECTION_CONTROL_H_
#define SLUICE_PROXY_CONTROL_DETECTION_CONTROL_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>
#include "absl/status/statusor.h"
#include "proxy/config/config.h"
#include "proxy/control/history_store.h"
#include "proxy/control/prometheus_baseline.h"
#include "proxy/control/region_health.h"
#include "proxy/control/steering_control.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/loop_timer.h"
#include "proxy/observe/metrics.h"
#include "steering/detector.h"
#include "steering/edge_watch.h"
#include "steering/signal_chart.h"
#include "steering/signal_history.h"

namespace sluice {

class Fleet;
class CapacityControl;

class DetectionControl {
 public:
  DetectionControl(LoopContext* context, RegionHealthMonitor* health, SteeringControl* steering);
  DetectionControl(const DetectionControl&) = delete;
  DetectionControl& operator=(const DetectionControl&) = delete;
  ~DetectionControl();

  // Start and reload: options, the configured mode, the history file (opened and loaded the
  // first time, and again when its path changes).
  void Configure(const Config& config);
  void SetFleet(const Fleet* fleet) { fleet_ = fleet; }
  // Evacuations go through it (saviors by capacity); null: straight to the controller.
  void SetCapacity(CapacityControl* capacity) { capacity_ = capacity; }
  void Stop();
  // The fleet's signal history (the capacity forecast reads it too).
  const SignalHistory& history() const { return history_; }

  // The mode in force: the steering state's when set through the API, else the config's.
  DetectionMode mode() const;
  // GET /v1/detection.
  nlohmann::json Status() const;
  // POST /v1/history: CSV (steering/signal_history.h), all or nothing. Returns the rows.
  absl::StatusOr<size_t> Import(std::string_view csv);
  // GET /v1/history: CSV of [from, to).
  std::string Export(absl::Time from, absl::Time to) const;
  // GET /v1/history/chart: each region's entry SPS over `window` with the expected value and
  // the same window a day and a week before (steering/signal_chart.h), for the console.
  nlohmann::json Chart(absl::Duration window, absl::Time now) const;
  void FillGauges(NodeGauges* node) const;

 private:
  void OnTick();
  // Persists what changed: the slots and the minutes they belong to.
  void Persist(const std::vector<SignalRecord>& slots);
  void Act(const DetectorAction& action, absl::Time now);
  // The dead-edge watch: observes every region's nodes and reachability, audits its verdicts
  // and, in auto mode on the node that acts, evacuates a dead region at once, DNS first.
  void WatchEdges(const Controller& c, absl::Time now);
  void EvacuateDeadEdge(const std::string& region, absl::Time now);
  bool Acting() const;

  LoopContext* context_;
  RegionHealthMonitor* health_;
  SteeringControl* steering_;
  CapacityControl* capacity_ = nullptr;
  const Fleet* fleet_ = nullptr;
  LoopTimer timer_;
  DetectionConfig config_;
  std::string node_;  // this node's name in the fleet
  SignalHistory history_;
  std::unique_ptr<HistoryStore> store_;
  std::string store_path_;
  std::string store_error_;  // why the history lives in memory only ("" when on disk)
  Detector detector_{DetectorOptions{}, &history_};
  // The console's expected lines (Chart): cleared wherever the detector's history changes.
  mutable ExpectedMemo chart_memo_;
  EdgeWatch edges_;
  std::map<std::string, absl::Time> edge_acted_;  // dead edges evacuated, and when
  absl::Time last_trim_ = absl::InfinitePast();
  // detection.baseline: prometheus: the baselines come from there, into their own history.
  void FetchBaseline(absl::Time now);
  std::unique_ptr<PrometheusBaseline> prometheus_;
  SignalHistory baseline_;
  int64_t baseline_minute_ = -1;                   // the minute last fetched
  absl::Time baseline_at_ = absl::InfinitePast();  // when
  absl::Time baseline_tried_ = absl::InfinitePast();
  std::string baseline_error_;
  std::map<std::string, uint64_t> evacuations_;  // by the signal that dipped
  std::string last_action_;                      // what the detector last did, for Status
  absl::Time last_action_at_ = absl::InfinitePast();
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_DETECTION_CONTROL_H_
