// What one node of the fleet tells the others (DESIGN.md, "The controller"): the table version
// and store revision it serves with, and its traffic over the gate window, per region it
// knows: its own region's origins, and its tunnels to each savior. Every node publishes its
// view under a key bound to its lease, so a dead node's view disappears with the lease; the
// leader's gates sum the views instead of trusting one node's sample.
//
// Pure logic: encoding, strict decoding (a view comes from another process through the
// store), and the sum. Not thread-safe.
#ifndef SLUICE_STEERING_FLEET_VIEW_H_
#define SLUICE_STEERING_FLEET_VIEW_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "steering/controller.h"
#include "steering/health_window.h"
#include "steering/signal_history.h"

namespace sluice {

inline constexpr char kNodeViewFormat[] = "sluice-node-view/1";

// Below this many tunneled requests in the window, a view of a savior through tunnels says
// nothing (a single failure out of three is not a 33% error rate).
inline constexpr uint64_t kMinTunnelRequests = 20;

struct NodeView {
  std::string node;      // its name in the fleet
  std::string region;    // its local region
  std::string admin;     // its admin API address ("" when it has none)
  uint64_t version = 0;  // the table version it serves with
  int64_t revision = 0;  // the store revision it has seen
  absl::Time updated = absl::UnixEpoch();
  absl::Duration window = absl::Seconds(30);        // what the counts cover
  TrafficTotals local;                              // its region's origins, over the window
  std::map<std::string, TrafficTotals> tunnels;     // by savior region, over the window
  std::map<std::string, double> starts_per_second;  // by serving region
  // Its region's origins fail their health checks everywhere (and none answered lately): what
  // the counts alone cannot say of a region that gets no traffic (an evacuated one).
  bool origins_down = false;
  std::string origins_detail;
  // The detector's input over the last seconds (absent from older nodes' views): stream
  // starts of the requests that entered here, the requests that entered here, and stream
  // starts of those requests by the region that served them.
  bool has_signal = false;
  double entry_sps = 0;
  double requests_per_second = 0;
  std::map<std::string, double> serving_sps;
};

// The "signal" member of a view and of GET /v1/health. Strict: a bad one is an error.
nlohmann::json SignalToJson(const NodeView& view);
absl::Status SignalFromJson(const nlohmann::json& signal, NodeView* view);

// The business signal of every region from the nodes' views: a region's entry SPS and
// request rate are the sums over its nodes; its serving SPS is the sum over every node of the
// starts it served. `reported`: the regions each of whose views carries a signal, with how
// many nodes (a region with a node that does not say, an older release, is not reported:
// its sum would be short, a false dip).
std::map<std::string, SignalPoint> SumSignals(const std::vector<NodeView>& views,
                                              std::map<std::string, size_t>* reported);

std::string EncodeNodeView(const NodeView& view);
absl::StatusOr<NodeView> DecodeNodeView(std::string_view text);

// The fleet's view of `region` for the gates: requests, errors and sheds summed over the nodes
// of that region, p99 from their merged latency buckets; the error rate is raised to what the
// other nodes' tunnels into the region saw once those carried at least `min_tunnel_requests`.
// nullopt when no node of the region publishes a view (the caller falls back to its own).
std::optional<RegionHealth> FleetRegionHealth(const std::vector<NodeView>& views,
                                              const std::string& region,
                                              uint64_t min_tunnel_requests);

}  // namespace sluice

#endif  // SLUICE_STEERING_FLEET_VIEW_H_
