// Savior capacity as this node runs it (DESIGN.md, "Failing a region over", step 2), on the
// control loop: the inputs of steering/capacity.h gathered from the fleet's sums per region
// (the leader's from the live views, the others' from the leader's published sums; this node
// and its peer regions' /v1/health without a fleet) and the history, and what they are
// used for:
//  - POST /v1/plans:preview and `sluicectl evacuate ... --dry-run`: each savior's load now,
//    its predicted extra at each step and its utilization, the standbys a plan would inject;
//  - starting an evacuation: `saviors: auto` (and the detector's evacuations) get the weights
//    that minimize the highest predicted utilization; a plan that would take a savior past
//    its capacity is refused (409, with the figures) unless forced; a configured scale hook
//    makes the plan wait for it;
//  - the controller's PlanAdvisor: whether a preparing plan's saviors serve their standbys on
//    every node and report the capacity the plan needs, and whether an auto-split plan's
//    weights should change before a step (predictions drifted past kRebalanceMargin);
//  - running the scale hook of a plan that waits for it, on the leader (or the only node).
//
// A savior's capacity for planning is the sum over its live nodes of what each could serve
// with its standbys injected (the plan injects them first), times capacity.headroom.
//
// Control thread only.
#ifndef SLUICE_PROXY_CONTROL_CAPACITY_CONTROL_H_
#define SLUICE_PROXY_CONTROL_CAPACITY_CONTROL_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include "absl/status/statusor.h"
#include "proxy/config/config.h"
#include "proxy/control/scale_hook.h"
#include "proxy/control/steering_control.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/loop_timer.h"
#include "steering/capacity.h"
#include "steering/controller.h"
#include "steering/fleet_view.h"

namespace sluice {

class DnsControl;
class Fleet;
class RegionHealthMonitor;
class SignalHistory;

// An auto-split plan's weights change before a step only when the busiest savior's predicted
// utilization would drop by more than this.
inline constexpr double kRebalanceMargin = 0.10;
// Without a scale hook, how long a plan waits for its saviors' standbys to show.
inline constexpr absl::Duration kStandbyWait = absl::Seconds(30);

// What an evacuation asks beyond the controller's PlanRequest.
struct EvacuationOptions {
  bool auto_split = false;              // saviors by capacity
  std::vector<std::string> candidates;  // for auto: these only (empty: every usable region)
  bool no_hook = false;                 // skip the configured scale hook
  // The DNS step: asked for (true), refused (false), or the configuration's default (unset:
  // dns.plans, for regions with records under a shared name, in plans that end at 100 %).
  std::optional<bool> dns;
};

class CapacityControl final : public PlanAdvisor {
 public:
  // `self`: this node's own capacity view (the server knows its endpoints and standbys).
  CapacityControl(LoopContext* context, RegionHealthMonitor* health, SteeringControl* steering,
                  std::function<NodeCapacity()> self);
  CapacityControl(const CapacityControl&) = delete;
  CapacityControl& operator=(const CapacityControl&) = delete;
  ~CapacityControl() override;

  void Configure(const Config& config);
  void SetFleet(const Fleet* fleet) { fleet_ = fleet; }
  void SetHistory(const SignalHistory* history) { history_ = history; }
  void SetDns(const DnsControl* dns) { dns_ = dns; }
  // Whether an evacuation of `region` can run the DNS step (dns: configured, records shared).
  bool dns_enabled_for(const std::string& region) const;
  void Stop();

  // The preview of an evacuation (with the weights auto chooses): JSON for the API.
  absl::StatusOr<nlohmann::json> Preview(const PlanRequest& request,
                                         const EvacuationOptions& options);
  // Starts an evacuation (or a restore, passed through): weights, the capacity check, the
  // hook. `done` as SteeringControl::StartPlan's.
  void StartPlan(PlanRequest request, const EvacuationOptions& options, const std::string& actor,
                 SteeringControl::PlanDone done);
  // Every region's capacity as this node sees it (GET /v1/health "regions_capacity",
  // sluicectl status).
  nlohmann::json RegionsJson();

  // PlanAdvisor
  CapacityCheck CheckCapacity(const RampPlan& plan) override;
  std::optional<std::map<std::string, uint32_t>> Rebalance(const RampPlan& plan) override;

 private:
  // The capacity of every region: the fleet's sums, or this node and its peers.
  std::map<std::string, RegionCapacity> Regions();
  // What an evacuation of `region` to `weights` (and `cohorts`) would do, as of now.
  absl::StatusOr<EvacuationInput> Inputs(
      const std::string& region, const std::map<std::string, uint32_t>& weights,
      const std::map<std::string, std::map<std::string, uint32_t>>& cohorts,
      const std::vector<uint32_t>& steps, absl::Duration hold);
  // Fills in auto weights; the prediction of the request as it will run.
  absl::StatusOr<EvacuationPrediction> Plan(PlanRequest* request, const EvacuationOptions& options);
  void OnTick();
  void RunHook(const RampPlan& plan);
  // Records a hook's result in the steering state (HookDone), once at a time.
  void ReportHook(uint64_t id, bool ok, const std::string& output);

  LoopContext* context_;
  RegionHealthMonitor* health_;
  SteeringControl* steering_;
  std::function<NodeCapacity()> self_;
  const Fleet* fleet_ = nullptr;
  const SignalHistory* history_ = nullptr;
  const DnsControl* dns_ = nullptr;
  double headroom_ = 1.0;
  std::optional<ScaleHookConfig> hook_config_;
  std::unique_ptr<ScaleHookRunner> hook_;
  uint64_t hook_plan_ = 0;  // the plan whose hook runs
  // Hooks that ran, by plan, until the state records their result: never run twice.
  std::map<uint64_t, std::pair<bool, std::string>> hook_results_;
  bool reporting_ = false;  // a HookDone write is in flight
  LoopTimer timer_;
};

nlohmann::json PredictionToJson(const EvacuationPrediction& prediction);

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_CAPACITY_CONTROL_H_
