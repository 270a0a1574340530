// This node's view of every region's health, on the control loop: what the controller's gates
// ask before each ramp step, and what GET /v1/health answers.
//
// Two sources, combined per region:
//  - this node's own traffic, sampled every second from the workers' counters into sliding
//    windows (steering/health_window.h): the local region's origins, and the tunnels to each
//    peer region (the requests this node sends a savior are its own view of that savior);
//  - each peer region's own report: its sluice's /v1/health, polled through that region's
//    tunnel endpoints with a signed hop marker (a peer answers /v1/health only to a verified
//    marker, on its traffic listener).
// A peer whose report has not arrived within three poll intervals is unreachable.
//
// Control thread only.
#ifndef SLUICE_PROXY_CONTROL_REGION_HEALTH_H_
#define SLUICE_PROXY_CONTROL_REGION_HEALTH_H_

#include <uv.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include "proxy/config/config.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/loop_timer.h"
#include "proxy/http/control_http_client.h"
#include "proxy/observe/node_traffic.h"
#include "steering/controller.h"
#include "steering/fleet_view.h"
#include "steering/health_window.h"

namespace sluice {

// What "now" means for the detector's signal: rates between the last two samples (a second
// apart). The detector averages them over its own window; a longer one here would only add
// to the time a fault takes to show.
inline constexpr absl::Duration kSignalWindow = absl::Seconds(1);
// What "now" means for a node's load (capacity): long enough to smooth a second's burst,
// short enough that a ramp step shows within its hold.
inline constexpr absl::Duration kLoadWindow = absl::Seconds(5);

class RegionHealthMonitor {
 public:
  using Sampler = std::function<NodeTraffic()>;
  // Runs after every sample (for the health document the workers answer peers with).
  using OnSampled = std::function<void()>;

  RegionHealthMonitor(LoopContext* context, Sampler sampler, OnSampled on_sampled);
  RegionHealthMonitor(const RegionHealthMonitor&) = delete;
  RegionHealthMonitor& operator=(const RegionHealthMonitor&) = delete;
  ~RegionHealthMonitor();

  // (Re)reads the regions, their tunnel endpoints (`resolved`: the addresses of those named
  // by host, "cluster|host:port"), the window and the poll interval.
  void Configure(const Config& config,
                 const std::map<std::string, std::vector<SocketAddress>>& resolved);
  void Stop();

  // The gate's answer for `region` (the local region: its own window).
  RegionHealth Gate(const std::string& region) const;
  // Where the local origins' active health checks come from (HealthChecker::DownClusters).
  void SetCheckedDown(std::function<std::vector<std::string>()> down_clusters) {
    checked_down_ = std::move(down_clusters);
  }
  // The local region as this node sees it: its window, and whether its origins are down.
  RegionHealth LocalHealth() const;
  const std::string& local_region() const { return local_region_; }
  // This node's view for GET /v1/health (the caller adds readiness and the table version).
  nlohmann::json Health() const;
  // The traffic part of this node's view for the fleet (steering/fleet_view.h).
  void FillView(NodeView* view) const;
  // This node's business signal over the last kSignalWindow: the detector's input
  // (region, has_signal, entry_sps, requests_per_second, serving_sps of a NodeView).
  NodeView Signal() const;
  // The load part of this node's capacity (load_rps, cohort_rps) over kLoadWindow.
  void FillCapacity(NodeCapacity* capacity) const;
  // The learned capacity from the last sample: requests/s the adaptive limits admit at their
  // latency, and how many limiters said (0: nothing learned).
  double learned_rps() const { return learned_rps_; }
  int learned_limiters() const { return learned_limiters_; }
  // Each reachable peer region's capacity as its last /v1/health reported it (region and
  // capacity set; no fleet: each peer region is taken to be the one node that answers).
  std::vector<NodeView> PeerCapacities() const;
  // Each reachable peer region's signal as its last /v1/health reported it (no fleet: each
  // peer region is taken to be the one node that answers).
  std::vector<NodeView> PeerSignals() const;

 private:
  struct Peer {
    std::vector<SocketAddress> endpoints;
    std::vector<std::string> server_names;  // by endpoint: what its certificate must name
    ClientTlsContext tls;                   // the tunnels' TLS; null: cleartext
    uint64_t nonce = 0;  // of the poll in flight: its reply must be signed for it
    size_t next = 0;     // endpoint of the next poll (they take turns)
    ControlHttpRequest* request = nullptr;
    absl::Time last_ok = absl::InfinitePast();
    std::string last_error = "no answer yet";
    double error_rate = 0;
    double shed_rate = 0;
    absl::Duration p99;
    uint64_t requests = 0;
    bool origins_down = false;
    std::string origins_detail;
    NodeView signal;  // has_signal: its last report carried one
  };

  void OnSample();
  void OnPoll();
  void PollPeer(const std::string& region, Peer* peer);
  void OnPeerReply(const std::string& region, const ControlHttpReply& reply);
  bool PeerReachable(const Peer& peer) const;

  LoopContext* context_;
  std::function<std::vector<std::string>()> checked_down_;
  bool origins_down_ = false;  // as of the last sample (its changes are logged)
  Sampler sampler_;
  OnSampled on_sampled_;
  LoopTimer sample_timer_;
  LoopTimer poll_timer_;
  absl::Duration window_ = absl::Seconds(30);
  absl::Duration interval_ = absl::Seconds(2);
  std::string local_region_;
  std::shared_ptr<const HopSigner> signer_;
  std::string request_id_header_;
  TrafficWindow local_{absl::Seconds(30)};
  std::map<std::string, TrafficWindow> tunnels_;
  std::map<std::string, TrafficWindow> starts_;
  // The detector's signal: requests entered (requests) with their starts (starts), and starts
  // by serving region, over kSignalWindow.
  TrafficWindow signal_entered_{kSignalWindow};
  std::map<std::string, TrafficWindow> signal_starts_;
  std::map<std::string, Peer> peers_;
  TrafficWindow load_{kLoadWindow};   // requests at the local origins
  std::vector<std::string> cohorts_;  // the table's, by id
  std::map<std::string, TrafficWindow> cohort_load_;
  double learned_rps_ = 0;
  int learned_limiters_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_REGION_HEALTH_H_
