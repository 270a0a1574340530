// What one node of the fleet tells the others (DESIGN.md, "The controller"): the table version
// and store revision it serves with, and its traffic over the gate window, per region it
// knows: its own region's origins, and its tunnels to each savior. Every node publishes its
// view under a key bound to its lease, so a dead node's view disappears with the lease; the
// leader's gates sum the views instead of trusting one node's sample, and the leader publishes
// the sums per region (FleetRegions) for the other nodes, which do not read the views.
//
// Pure logic: encoding, strict decoding (a view or the sums come from another process
// through the store), and the sums. Not thread-safe.
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

// How often a node's changed view (and the leader's sums of them) goes out in a fleet of
// `nodes`: every publish interval, or every nodes / kFleetViewsPerSecond seconds when that is
// longer. So etcd takes about that many views a second and sends each node the sums no more
// often than that, whatever the fleet's size (500 nodes at 1 s: every second; 3,000: every 6 s).
inline constexpr double kFleetViewsPerSecond = 500;
absl::Duration FleetViewInterval(absl::Duration publish_interval, size_t nodes);

// What a node can serve and serves now (DESIGN.md, step 2; steering/capacity.h), and the
// hot standbys it serves with. Absent from older nodes' views.
struct NodeCapacity {
  bool known = false;
  double capacity_rps = 0;  // 0: unknown
  // What it could serve with every standby injected (configured capacity: each standby
  // endpoint adds its share); equal to capacity_rps when none waits.
  double standby_capacity_rps = 0;
  std::string source;   // "configured", "learned" or "none"
  double load_rps = 0;  // requests its region's origins took per second, lately
  std::map<std::string, double> cohort_rps;  // requests entering here per second, by cohort
  std::vector<std::string> standbys;         // clusters whose standbys it serves with ("*": all)
  uint64_t standby_version = 0;              // the table version it applied them from
  uint32_t standby_endpoints = 0;            // standbys still out of service
  uint32_t injected_endpoints = 0;           // standbys in service
};

nlohmann::json CapacityToJson(const NodeCapacity& capacity);
absl::Status CapacityFromJson(const nlohmann::json& j, NodeCapacity* capacity);

// A region's capacity: the sums over the views of its nodes.
struct RegionCapacity {
  uint32_t nodes = 0;
  uint32_t reporting = 0;  // nodes whose view carries a capacity
  uint32_t unknown = 0;    // of those, nodes that do not know theirs
  double capacity_rps = 0;
  double standby_capacity_rps = 0;
  double load_rps = 0;
  std::map<std::string, double> cohort_rps;
  uint32_t standby_endpoints = 0;
  uint32_t injected_endpoints = 0;
  // Nodes that serve with every standby ("*" among their standbys) and apply a table of
  // `version` or later, or that have no standby endpoint at all.
  uint32_t applied = 0;
};
struct NodeView;
std::map<std::string, RegionCapacity> SumCapacity(const std::vector<NodeView>& views,
                                                  uint64_t version);

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
  NodeCapacity capacity;
  // It could lead now: it fits the fleet's steering state and is not stopping (FleetMachine).
  // The leader names standbys only among nodes that say so. Absent from older nodes' views.
  std::optional<bool> can_lead;
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

// One region's nodes summed: what the leader publishes for the followers (who no longer read
// every node's view at fleet scale), and what its own gates read. Each field is what the three
// sums above would find of the region; RegionHealthFromSums, SignalsFromSums and
// CapacityFromSums answer exactly what FleetRegionHealth, SumSignals and SumCapacity(views, 0)
// answer of the views summed. A region appears when a view names it as its own, as a tunnel's
// savior or (a view with a signal) as a serving region; views without a region count nowhere.
struct RegionSum {
  uint32_t nodes = 0;                     // views of nodes of this region
  uint32_t signal_nodes = 0;              // of which carry a signal (has_signal)
  uint32_t silent_nodes = 0;              // of which do not
  std::map<uint64_t, uint32_t> versions;  // table version -> nodes serving with it
  TrafficTotals local;                    // the region's nodes' own origins, summed
  TrafficTotals tunneled;                 // every node's tunnels into this region, summed
  // A node of it finds its origins down: the last such view in the order summed (the one
  // FleetRegionHealth names), with its detail.
  bool origins_down = false;
  std::string origins_node;
  std::string origins_detail;
  double entry_sps = 0;            // over its signal nodes
  double requests_per_second = 0;  // over its signal nodes
  double serving_sps = 0;          // starts it served, over every signal node's serving_sps
  bool served = false;             // some signal node's serving_sps names it
  RegionCapacity capacity;         // SumCapacity(views, 0)'s entry for it (zero without nodes)
};

// The sums of `views` by region. Summed in the order given, as the per-view functions do, so
// the doubles are the same to the bit.
std::map<std::string, RegionSum> SumRegions(const std::vector<NodeView>& views);

// FleetRegionHealth, SumSignals and SumCapacity(views, 0) of the views summed into `sums`.
// (FleetRegionHealth of "" counts the views without a region; the sums never hold one.)
std::optional<RegionHealth> RegionHealthFromSums(const std::map<std::string, RegionSum>& sums,
                                                 const std::string& region,
                                                 uint64_t min_tunnel_requests);
std::map<std::string, SignalPoint> SignalsFromSums(const std::map<std::string, RegionSum>& sums,
                                                   std::map<std::string, size_t>* reported);
std::map<std::string, RegionCapacity> CapacityFromSums(
    const std::map<std::string, RegionSum>& sums);

inline constexpr char kFleetRegionsFormat[] = "sluice-fleet-regions/1";
inline constexpr size_t kMaxFleetRegions = 10000;  // regions in one document
inline constexpr size_t kMaxOriginsDetail = 4096;  // bytes of a region's origins_detail
inline constexpr size_t kMaxFleetStandbys = 8;     // standbys named in one document

// The document the leader publishes under `{prefix}regions`.
struct FleetRegions {
  std::string leader;  // the node that summed them
  absl::Time updated = absl::UnixEpoch();
  int64_t revision = 0;  // the store revision the leader had seen
  std::map<std::string, RegionSum> regions;
  // The nodes that follow the views beside the leader and campaign first when its key goes,
  // in the order they campaign (FleetMachine). Absent from an older leader's document: none.
  std::vector<std::string> standbys;
  // The nodes that could campaign (views that say they can lead, or do not say), what spreads
  // the campaigns when the leader goes. Absent from an older leader's document.
  std::optional<uint32_t> candidates;
};

// The views that could campaign: those with a region (as SumRegions counts them) whose
// can_lead is not false.
uint32_t CountCandidates(const std::vector<NodeView>& views);

// Times are whole milliseconds; an origins_detail longer than kMaxOriginsDetail bytes is cut
// there (and bytes that are not UTF-8 become U+FFFD). Everything else round-trips exactly,
// doubles included.
std::string EncodeFleetRegions(const FleetRegions& regions);
// Strict (the document comes from another process through the store): a document with a
// wrong format, a missing or mistyped field, a negative or inconsistent count, or more than
// kMaxFleetRegions regions is an error naming the field; so is a standbys member that is not
// an array of distinct node names (past kMaxFleetStandbys of them, the rest is left out), and
// candidates that are not a count (more than the nodes summed count as the nodes).
absl::StatusOr<FleetRegions> DecodeFleetRegions(std::string_view text);

}  // namespace sluice

#endif  // SLUICE_STEERING_FLEET_VIEW_H_
