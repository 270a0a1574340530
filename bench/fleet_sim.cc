// sluice_fleet_sim: many simulated fleet nodes in one process (bench/fleet_sim.py runs it).
//
// Each simulated node is a real sluice::Fleet (proxy/fleet/fleet.h) on one libuv loop, against
// a real etcd: its own etcd client, lease, watch and published view. What a node serves is
// left out; its view carries plausible traffic figures of the size a real node publishes,
// which change every second as a real node's do.
//
//   sluice_fleet_sim --etcd http://127.0.0.1:PORT --nodes N [--changes 20]
//                    [--prefix /sluice/sim/] [--lease-ttl-s 5] [--publish-ms 1000]
//                    [--settle-s 10] [--failover 1] [--batch 100] [--batch-ms 50]
//                    [--change-timeout-s 10] [--gate-repeat 100] [--standbys 1] [--api grpc]
//                    [--verbose]
//
// Node i is "sim-<region>-<i>", the regions us-east-1, us-west-2 and eu-west-1 in turn. The run:
//   1. start the nodes, up to --batch every --batch-ms with at most --batch joining at a time
//      (started, not connected yet: a real fleet comes up over minutes, and one that lost etcd
//      together comes back through the resync back-off), and wait until every node is
//      connected, has the fleet's state and exactly one leads (start_s);
//   2. settle for --settle-s: the etcd clients' wire counters over that window, per node and
//      per second;
//   3. --changes steering changes one at a time, each written by the leader (one region's
//      evacuated fraction); the delay from the write until each node has the new version (the
//      leader: until its write is answered or echoed back, whichever comes first), over at
//      most --change-timeout-s per change (missing: the nodes that had not got it by then);
//      a write that fails is written again, up to 3 times (write_errors: what the failed
//      attempts met);
//   4. the leader's gate (Fleet::RegionGate) for each region, --gate-repeat times;
//   5. with --failover 1: the leader dies (Stop: no resignation, its lease must expire) and
//      the time until another node leads, with where it went: the lease's life left when it
//      died, when the first node and each standby saw the leader key go, and whether a
//      standby took over.
// Prints one JSON object on stdout, then stops every node and closes the loop. Progress goes to
// stderr as "fleet_sim: PHASE mono=SECONDS" (CLOCK_MONOTONIC, the clock of Python's
// time.monotonic()), so a harness can sample etcd at the settle window's edges.
// Exit status: 0 once every phase ran (its figures say how well), 1 when the fleet never got
// ready or a change failed three times, 2 on bad arguments.
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "proxy/config/config.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/loop_timer.h"
#include "proxy/fleet/etcd_client.h"
#include "proxy/fleet/fleet.h"
#include "steering/controller.h"
#include "steering/fleet_view.h"
#include "steering/health_window.h"
#include "steering/state_file.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr const char* kRegions[] = {"us-east-1", "us-west-2", "eu-west-1"};
constexpr int kRegionCount = 3;

struct Options {
  std::string etcd;
  int nodes = 0;
  int changes = 20;
  std::string prefix = "/sluice/sim/";
  int lease_ttl_s = 5;
  int publish_ms = 1000;
  double settle_s = 10;
  bool failover = true;
  int batch = 100;
  int batch_ms = 50;
  double change_timeout_s = 10;
  int gate_repeat = 100;
  int standbys = 1;  // fleet.standbys
  bool verbose = false;
  bool grpc = true;  // --api: the etcd clients' keep-alives and watches over gRPC, or JSON
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr,
               "sluice_fleet_sim: %s\nusage: sluice_fleet_sim --etcd http://HOST:PORT --nodes N "
               "[--changes K] [--prefix P] [--lease-ttl-s S] [--publish-ms MS] [--settle-s S] "
               "[--failover 0|1] [--batch N] [--batch-ms MS] [--change-timeout-s S] "
               "[--gate-repeat N] [--standbys N] [--api grpc|json] [--verbose]\n",
               why.c_str());
  std::exit(2);
}

int IntArg(const std::string& name, const char* value, int low, int high) {
  int n = 0;
  if (!absl::SimpleAtoi(value, &n) || n < low || n > high) {
    Usage(absl::StrFormat("%s: must be an integer %d..%d, got \"%s\"", name, low, high, value));
  }
  return n;
}

double SecondsArg(const std::string& name, const char* value, double low, double high) {
  double d = 0;
  if (!absl::SimpleAtod(value, &d) || !(d >= low && d <= high)) {
    Usage(absl::StrFormat("%s: must be a number of seconds %g..%g, got \"%s\"", name, low, high,
                          value));
  }
  return d;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--verbose") {
      o.verbose = true;
      continue;
    }
    if (i + 1 >= argc) Usage(flag + ": needs a value");
    const char* value = argv[++i];
    if (flag == "--etcd") {
      o.etcd = value;
    } else if (flag == "--nodes") {
      o.nodes = IntArg(flag, value, 1, 100000);
    } else if (flag == "--changes") {
      o.changes = IntArg(flag, value, 0, 100000);
    } else if (flag == "--prefix") {
      o.prefix = value;
    } else if (flag == "--lease-ttl-s") {
      o.lease_ttl_s = IntArg(flag, value, 2, 3600);
    } else if (flag == "--standbys") {
      o.standbys = IntArg(flag, value, 0, static_cast<int>(kMaxFleetStandbys));
    } else if (flag == "--publish-ms") {
      o.publish_ms = IntArg(flag, value, 10, 600000);
    } else if (flag == "--settle-s") {
      o.settle_s = SecondsArg(flag, value, 0, 86400);
    } else if (flag == "--failover") {
      o.failover = IntArg(flag, value, 0, 1) == 1;
    } else if (flag == "--batch") {
      o.batch = IntArg(flag, value, 1, 100000);
    } else if (flag == "--batch-ms") {
      o.batch_ms = IntArg(flag, value, 1, 60000);
    } else if (flag == "--change-timeout-s") {
      o.change_timeout_s = SecondsArg(flag, value, 0.1, 3600);
    } else if (flag == "--gate-repeat") {
      o.gate_repeat = IntArg(flag, value, 1, 1000000);
    } else if (flag == "--api") {
      if (std::string(value) != "grpc" && std::string(value) != "json") {
        Usage("--api: grpc or json");
      }
      o.grpc = std::string(value) == "grpc";
    } else {
      Usage("unknown flag " + flag);
    }
  }
  if (o.etcd.empty()) Usage("--etcd is required");
  if (o.nodes == 0) Usage("--nodes is required");
  if (o.prefix.empty() || o.prefix.back() != '/') Usage("--prefix: must end with /");
  if (o.publish_ms >= o.lease_ttl_s * 1000) {
    Usage("--publish-ms: must be shorter than the lease TTL (the keep-alives go with it)");
  }
  return o;
}

double SecondsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// CLOCK_MONOTONIC in seconds: steady_clock's epoch on Linux, and Python's time.monotonic().
double Mono(Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double RssMib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    long kib = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %ld kB", &kib) == 1)
      return static_cast<double>(kib) / 1024;
  }
  return 0;
}

// The descriptor limit's soft value raised to the hard one: each node holds a few sockets.
void RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    std::fprintf(stderr, "sluice_fleet_sim: could not raise the descriptor limit\n");
  }
}

// Nearest rank; `sorted` is not empty.
double Percentile(const std::vector<double>& sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

void OnHeartbeat(uv_timer_t*) {}

class Simulation {
 public:
  Simulation(const Options& options, LoopContext* context) : options_(options), context_(context) {
    state_.version = 1;
    for (int r = 0; r < kRegionCount; ++r) {
      RegionSpec region;
      region.name = kRegions[r];
      region.saviors = {{kRegions[(r + 1) % kRegionCount], 50},
                        {kRegions[(r + 2) % kRegionCount], 50}};
      state_.regions.push_back(region);
    }
  }

  // The whole run; the figures go to `out`. Every node is stopped before it returns; the
  // caller then runs the loop until every handle is closed, before the simulation goes.
  absl::Status Run(json* out);

 private:
  struct Node {
    std::unique_ptr<Fleet> fleet;
    int region = 0;
    uint64_t version = 0;  // of the newest state it was handed (or wrote)
    bool stopped = false;
  };

  void MakeNodes();
  NodeView View(int i) const;
  void OnState(int i, const ControllerState& state);
  // `node` has the state of `version`: the change's delay, once per node.
  void Arrived(Node* node, uint64_t version);
  void OnLeadership(int i, bool leader);
  // Runs the loop until `done()` or `seconds` passed; returns done().
  bool RunUntil(const std::function<bool()>& done, double seconds);
  void RunFor(double seconds) {
    RunUntil([] { return false; }, seconds);
  }
  // The one node that leads now, or -1 (none, or more than one).
  int Leader() const;
  void Phase(const char* phase) const {
    std::fprintf(stderr, "fleet_sim: %s mono=%.6f\n", phase, Mono(Clock::now()));
    std::fflush(stderr);
  }

  absl::Status StartNodes(json* out);
  void Settle(json* out);
  absl::Status Changes(json* out);
  void Gate(json* out);
  void Failover(json* out);
  void StopAll();

  const Options& options_;
  LoopContext* context_;
  uv_timer_t heartbeat_{};
  std::vector<Node> nodes_;
  ControllerState state_;  // the newest the simulation knows of

  // The change in flight: its version, when it was written, and its delays so far; the
  // delays and write times of the changes that took effect.
  struct ChangeWrite {
    bool current = true;
    bool answered = false;
    absl::Status status;
    std::optional<double> ms;
  };
  static constexpr int kChangeAttempts = 3;
  uint64_t change_version_ = 0;
  Clock::time_point change_started_;
  int change_arrived_ = 0;
  std::vector<double> delays_this_change_;
  std::vector<double> delays_ms_;
  std::vector<double> writes_ms_;

  // The failover: the node that died, when, and the first other node to lead after.
  int dead_leader_ = -1;
  Clock::time_point died_;
  std::optional<Clock::time_point> new_leader_at_;
  int new_leader_ = -1;
};

absl::Status Simulation::Run(json* out) {
  uv_timer_init(context_->loop(), &heartbeat_);
  // Keeps uv_run(UV_RUN_ONCE) from returning at once when only the fleets' (unreferenced)
  // timers and sockets are left, and bounds how late a wait notices its end.
  uv_timer_start(&heartbeat_, OnHeartbeat, 5, 5);
  MakeNodes();
  absl::Status status = StartNodes(out);
  if (status.ok()) {
    Settle(out);
    status = Changes(out);
  }
  if (status.ok()) {
    Gate(out);
    Failover(out);
    Phase("done");
  }
  StopAll();
  uv_close(reinterpret_cast<uv_handle_t*>(&heartbeat_), nullptr);
  return status;
}

void Simulation::MakeNodes() {
  FleetConfig config;
  config.enabled = true;
  config.etcd_endpoints = {options_.etcd};
  config.prefix = options_.prefix;
  config.lease_ttl = absl::Seconds(options_.lease_ttl_s);
  config.standbys = static_cast<uint32_t>(options_.standbys);
  config.publish_interval = absl::Milliseconds(options_.publish_ms);
  config.etcd_grpc = options_.grpc;
  nodes_.resize(static_cast<size_t>(options_.nodes));
  for (int i = 0; i < options_.nodes; ++i) {
    Node& node = nodes_[static_cast<size_t>(i)];
    node.region = i % kRegionCount;
    config.node = absl::StrFormat("sim-%s-%d", kRegions[node.region], i);
    Fleet::Hooks hooks;
    hooks.on_state = [this, i](ControllerState state, int64_t) { OnState(i, state); };
    hooks.on_leadership = [this, i](bool leader) { OnLeadership(i, leader); };
    hooks.view = [this, i] { return View(i); };
    hooks.initial_state = [this] { return EncodeControllerState(state_); };
    node.fleet = std::make_unique<Fleet>(context_, config, config.node, std::move(hooks));
  }
}

// Figures of the size and shape a real node publishes: its region's origins over the window,
// tunnels to the two saviors, the detector's signal and a configured capacity.
NodeView Simulation::View(int i) const {
  const Node& node = nodes_[static_cast<size_t>(i)];
  const std::string region = kRegions[node.region];
  NodeView view;
  view.region = region;
  view.admin = absl::StrFormat("10.%d.%d.%d:9901", node.region, (i / 256) % 256, i % 256);
  view.version = node.version;
  view.window = absl::Seconds(30);
  // Like a real node's counts over the window, they move every second.
  const auto second = static_cast<uint64_t>(Mono(Clock::now()));
  const uint64_t requests = 1000 + static_cast<uint64_t>(i) + second % 600;
  view.local.requests = requests;
  view.local.errors = static_cast<uint64_t>(i % 3);
  view.local.starts = requests / 5;
  view.local.latency[2] = requests / 2;
  view.local.latency[4] = requests / 4;
  view.local.latency[6] = requests / 8;
  view.local.latency[8] = requests - requests / 2 - requests / 4 - requests / 8;
  for (int s = 1; s < kRegionCount; ++s) {
    TrafficTotals tunnel;
    tunnel.requests = 20 + static_cast<uint64_t>(i % 10);
    tunnel.starts = tunnel.requests / 5;
    tunnel.latency[5] = tunnel.requests;
    view.tunnels[kRegions[(node.region + s) % kRegionCount]] = tunnel;
  }
  view.starts_per_second[region] = static_cast<double>(view.local.starts) / 30;
  view.has_signal = true;
  view.entry_sps = static_cast<double>(view.local.starts) / 30;
  view.requests_per_second = static_cast<double>(requests) / 30;
  view.serving_sps[region] = view.entry_sps;
  view.capacity.known = true;
  view.capacity.source = "configured";
  view.capacity.capacity_rps = 500;
  view.capacity.standby_capacity_rps = 500;
  view.capacity.load_rps = view.requests_per_second;
  return view;
}

void Simulation::OnState(int i, const ControllerState& state) {
  Node& node = nodes_[static_cast<size_t>(i)];
  Arrived(&node, state.version);
  if (state.version > state_.version) state_ = state;
}

void Simulation::Arrived(Node* node, uint64_t version) {
  // The leader may be handed its own write (when the watch echoes it before etcd answers the
  // write): each node counts once per change.
  if (change_version_ != 0 && version == change_version_ && node->version < version) {
    delays_this_change_.push_back(SecondsBetween(change_started_, Clock::now()) * 1000);
    ++change_arrived_;
  }
  node->version = std::max(node->version, version);
}

void Simulation::OnLeadership(int i, bool leader) {
  if (options_.verbose) {
    std::fprintf(stderr, "fleet_sim: node %d %s leading\n", i, leader ? "started" : "stopped");
  }
  if (leader && dead_leader_ >= 0 && i != dead_leader_ && !new_leader_at_) {
    new_leader_at_ = Clock::now();
    new_leader_ = i;
  }
}

bool Simulation::RunUntil(const std::function<bool()>& done, double seconds) {
  const Clock::time_point deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                        std::chrono::duration<double>(seconds));
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    uv_run(context_->loop(), UV_RUN_ONCE);
  }
  return true;
}

int Simulation::Leader() const {
  int leader = -1;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].stopped || !nodes_[i].fleet->leader()) continue;
    if (leader >= 0) return -1;
    leader = static_cast<int>(i);
  }
  return leader;
}

absl::Status Simulation::StartNodes(json* out) {
  Phase("start");
  const Clock::time_point started = Clock::now();
  size_t next = 0;
  // In batches, so that etcd is not asked for every lease at once.
  LoopTimer batches;
  batches.Start(context_->loop(), 0, static_cast<uint64_t>(options_.batch_ms), [&] {
    int joining = 0;
    for (size_t i = 0; i < next; ++i) joining += nodes_[i].fleet->connected() ? 0 : 1;
    for (int n = joining; n < options_.batch && next < nodes_.size(); ++n) {
      nodes_[next++].fleet->Start();
    }
    if (next == nodes_.size()) batches.Stop();
  });
  auto ready = [&] {
    if (next < nodes_.size()) return false;
    for (Node& node : nodes_) {
      if (!node.fleet->connected()) return false;
      // The node whose resync created the state is not handed it (it offered it): it has it
      // once the fleet says it holds a state revision (only Status() tells).
      if (node.version < 1 && node.fleet->Status().value("state_revision", int64_t{0}) > 0) {
        node.version = state_.version;
      }
      if (node.version < 1) return false;
    }
    return Leader() >= 0;
  };
  const double bound = 60 + options_.nodes / 50.0;
  const bool ok = RunUntil(ready, bound);
  batches.Close();
  if (!ok) {
    size_t connected = 0, with_state = 0, leaders = 0;
    for (const Node& node : nodes_) {
      connected += node.fleet->connected() ? 1 : 0;
      with_state += node.version >= 1 ? 1 : 0;
      leaders += node.fleet->leader() ? 1 : 0;
    }
    return absl::DeadlineExceededError(absl::StrFormat(
        "the fleet was not ready after %.0f s: %d of %d nodes started, %d connected, %d with the "
        "state, %d leading (one must)",
        bound, next, nodes_.size(), connected, with_state, leaders));
  }
  (*out)["start_s"] = SecondsBetween(started, Clock::now());
  Phase("started");
  return absl::OkStatus();
}

void Simulation::Settle(json* out) {
  const size_t n = nodes_.size();
  std::vector<EtcdClientStats> before(n);
  for (size_t i = 0; i < n; ++i) before[i] = nodes_[i].fleet->etcd_stats();
  const double cpu_before = CpuSeconds();
  const Clock::time_point from = Clock::now();
  Phase("settle_begin");
  RunFor(options_.settle_s);
  const Clock::time_point to = Clock::now();
  Phase("settle_end");
  const double seconds = std::max(1e-3, SecondsBetween(from, to));
  const double cpu = CpuSeconds() - cpu_before;
  double conn_max = 0, conn_sum = 0, rx = 0, tx = 0, requests = 0, events = 0, messages = 0;
  for (size_t i = 0; i < n; ++i) {
    const EtcdClientStats after = nodes_[i].fleet->etcd_stats();
    const double connections = static_cast<double>(after.connections - before[i].connections);
    conn_max = std::max(conn_max, connections / seconds);
    conn_sum += connections / seconds;
    rx += static_cast<double>(after.rx_bytes - before[i].rx_bytes);
    tx += static_cast<double>(after.tx_bytes - before[i].tx_bytes);
    requests += static_cast<double>(after.requests - before[i].requests);
    events += static_cast<double>(after.watch_events - before[i].watch_events);
    messages += static_cast<double>(after.watch_messages - before[i].watch_messages);
  }
  const double nodes = static_cast<double>(n);
  json& j = *out;
  j["settle_s"] = seconds;
  j["settle_from_mono"] = Mono(from);
  j["settle_to_mono"] = Mono(to);
  j["conn_per_node_per_s_max"] = conn_max;
  j["conn_per_node_per_s_mean"] = conn_sum / nodes;
  j["node_rx_bytes_per_s"] = rx / seconds / nodes;
  j["node_tx_bytes_per_s"] = tx / seconds / nodes;
  j["node_requests_per_s"] = requests / seconds / nodes;
  j["requests_per_s"] = requests / seconds;
  j["watch_events_per_s"] = events / seconds;
  j["watch_messages_per_s"] = messages / seconds;
  j["sim_cpu_pct"] = cpu / seconds * 100;
  j["view_bytes"] = EncodeNodeView(View(0)).size();
}

absl::Status Simulation::Changes(json* out) {
  Phase("changes_begin");
  int missing = 0;
  json write_errors = json::array();
  for (int k = 0; k < options_.changes; ++k) {
    // A write that fails (etcd timed out, the leader lost its lease meanwhile) is written again,
    // as an operator would, at most kChangeAttempts times; the figures count from the attempt
    // that took effect, and write_errors says what the others met.
    bool applied = false;
    for (int attempt = 1; !applied; ++attempt) {
      int leader = -1;
      const double leader_bound = options_.lease_ttl_s + 10;
      if (!RunUntil([&] { return (leader = Leader()) >= 0; }, leader_bound)) {
        return absl::DeadlineExceededError(
            absl::StrFormat("change %d: no single leader for %.0f s", k + 1, leader_bound));
      }
      ControllerState next = state_;
      next.version = state_.version + 1;
      RegionSpec& region = next.regions[static_cast<size_t>(k % kRegionCount)];
      region.evacuated_bp = (region.evacuated_bp + 500) % 10500;
      change_version_ = next.version;
      change_arrived_ = 0;
      delays_this_change_.clear();
      // Outlives this attempt: a late answer finds it no longer current and is dropped.
      auto write = std::make_shared<ChangeWrite>();
      change_started_ = Clock::now();
      nodes_[static_cast<size_t>(leader)].fleet->Write(
          next, /*as_leader=*/true,
          [this, write, leader, next](const absl::Status& status, int64_t) {
            if (!write->current) return;
            write->answered = true;
            write->status = status;
            if (!status.ok()) return;
            // A node is not handed its own write: the leader has it once etcd answered.
            write->ms = SecondsBetween(change_started_, Clock::now()) * 1000;
            Arrived(&nodes_[static_cast<size_t>(leader)], next.version);
            if (next.version > state_.version) state_ = next;
          });
      const int live = options_.nodes - (dead_leader_ >= 0 ? 1 : 0);
      RunUntil([&] { return write->answered && change_arrived_ >= live; },
               options_.change_timeout_s);
      write->current = false;
      // Written even when the answer was lost: a node has the version from its watch.
      applied = (write->answered && write->status.ok()) || state_.version >= next.version;
      if (applied) {
        if (write->ms) writes_ms_.push_back(*write->ms);
        delays_ms_.insert(delays_ms_.end(), delays_this_change_.begin(), delays_this_change_.end());
        missing += live - change_arrived_;
        break;
      }
      const std::string why =
          write->answered
              ? absl::StrFormat("change %d: the leader's write: %s", k + 1, write->status.message())
              : absl::StrFormat("change %d: the leader's write was not answered in %g s", k + 1,
                                options_.change_timeout_s);
      write_errors.push_back(why);
      std::fprintf(stderr, "fleet_sim: %s (attempt %d of %d)\n", why.c_str(), attempt,
                   kChangeAttempts);
      if (attempt == kChangeAttempts) {
        change_version_ = 0;
        return absl::UnavailableError(why);
      }
    }
    change_version_ = 0;
  }
  Phase("changes_end");
  json& j = *out;
  j["changes"] = options_.changes;
  j["missing"] = missing;
  j["write_errors"] = write_errors;
  std::sort(delays_ms_.begin(), delays_ms_.end());
  std::sort(writes_ms_.begin(), writes_ms_.end());
  j["delays"] = delays_ms_.size();
  j["p50_ms"] = delays_ms_.empty() ? json(nullptr) : json(Percentile(delays_ms_, 50));
  j["p99_ms"] = delays_ms_.empty() ? json(nullptr) : json(Percentile(delays_ms_, 99));
  j["full_ms"] = delays_ms_.empty() ? json(nullptr) : json(delays_ms_.back());
  j["write_p50_ms"] = writes_ms_.empty() ? json(nullptr) : json(Percentile(writes_ms_, 50));
  return absl::OkStatus();
}

void Simulation::Gate(json* out) {
  const int leader = Leader();
  if (leader < 0) {
    (*out)["gate_us"] = nullptr;
    return;
  }
  const Fleet& fleet = *nodes_[static_cast<size_t>(leader)].fleet;
  size_t answered = 0;
  const Clock::time_point from = Clock::now();
  Clock::time_point first_round;
  for (int r = 0; r < options_.gate_repeat; ++r) {
    for (const char* region : kRegions) answered += fleet.RegionGate(region) ? 1 : 0;
    if (r == 0) first_round = Clock::now();
  }
  const double seconds = SecondsBetween(from, Clock::now());
  (*out)["gate_us"] = seconds * 1e6 / (options_.gate_repeat * kRegionCount);
  // The fleet may keep what the gates sum for a while: the first round pays for it.
  (*out)["gate_first_us"] = SecondsBetween(from, first_round) * 1e6 / kRegionCount;
  (*out)["gate_views"] = fleet.node_count();
  (*out)["gate_answered"] = answered == static_cast<size_t>(options_.gate_repeat * kRegionCount);
}

void Simulation::Failover(json* out) {
  json& j = *out;
  j["failover_s"] = nullptr;
  if (!options_.failover) return;
  const int leader = Leader();
  if (leader < 0) {
    j["failover_error"] = "no single leader to stop";
    return;
  }
  Phase("failover_begin");
  Fleet& dying = *nodes_[static_cast<size_t>(leader)].fleet;
  const std::string dead_name = dying.node();
  // Where the time goes: the lease's life left (the most of it), the moment its end reached
  // the first node and the standbys, and whether a standby took over.
  j["failover_lease_left_s"] = absl::ToDoubleSeconds(dying.lease_expiry() - absl::Now());
  struct Standby {
    int index = -1;
    std::optional<Clock::time_point> saw;
  };
  std::vector<Standby> standbys;
  json standby_docs = json::array();
  for (const std::string& name : dying.standbys()) {
    Standby standby;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i].fleet->node() == name) standby.index = static_cast<int>(i);
    }
    json doc{{"node", name}};
    if (standby.index >= 0) {
      const Fleet& fleet = *nodes_[static_cast<size_t>(standby.index)].fleet;
      doc["rank"] = fleet.standby_rank();
      doc["has_views"] = fleet.has_views();
    }
    standby_docs.push_back(doc);
    standbys.push_back(standby);
  }
  died_ = Clock::now();
  dead_leader_ = leader;
  dying.Stop();  // dies: no resignation, no revoke
  nodes_[static_cast<size_t>(leader)].stopped = true;
  auto gone = [&](const Fleet& fleet) {
    return !fleet.known_leader() || fleet.known_leader()->node != dead_name;
  };
  std::optional<Clock::time_point> first_saw;
  Clock::time_point polled;
  auto poll = [&](bool now_or_never) {
    // Every 2 ms at most: the poll is not to cost the nodes their loop.
    const Clock::time_point now = Clock::now();
    if (!now_or_never && now - polled < std::chrono::milliseconds(2)) return;
    polled = now;
    for (Standby& standby : standbys) {
      if (standby.index < 0 || standby.saw) continue;
      if (gone(*nodes_[static_cast<size_t>(standby.index)].fleet)) standby.saw = now;
    }
    if (first_saw) return;
    for (const Node& node : nodes_) {
      if (!node.stopped && gone(*node.fleet)) {
        first_saw = now;
        break;
      }
    }
  };
  const double bound = options_.lease_ttl_s + 10;
  if (RunUntil(
          [&] {
            poll(false);
            return new_leader_at_.has_value();
          },
          bound)) {
    // A standby that saw the key go and won within one poll's 2 ms is seen now.
    poll(true);
    j["failover_s"] = SecondsBetween(died_, *new_leader_at_);
    j["failover_from"] = dead_name;
    j["failover_to"] = nodes_[static_cast<size_t>(new_leader_)].fleet->node();
    j["failover_to_standby"] = std::any_of(
        standbys.begin(), standbys.end(), [&](const Standby& s) { return s.index == new_leader_; });
  } else {
    j["failover_error"] = absl::StrFormat("no node led within %.0f s", bound);
  }
  if (first_saw) j["failover_seen_s"] = SecondsBetween(died_, *first_saw);
  for (size_t k = 0; k < standbys.size(); ++k) {
    if (standbys[k].saw) standby_docs[k]["seen_s"] = SecondsBetween(died_, *standbys[k].saw);
  }
  j["failover_standbys"] = standby_docs;
  Phase("failover_end");
}

void Simulation::StopAll() {
  for (Node& node : nodes_) {
    if (node.fleet) node.fleet->Stop();
  }
  // Their timers' handles are freed by close callbacks: the caller runs the loop to its end.
  nodes_.clear();
}

int Main(int argc, char** argv) {
  const Options options = Parse(argc, argv);
  std::signal(SIGPIPE, SIG_IGN);
  RaiseDescriptorLimit();
  SetLogLevel(options.verbose ? LogLevel::kInfo : LogLevel::kWarning);
  uv_loop_t loop;
  uv_loop_init(&loop);
  auto context = std::make_unique<LoopContext>(&loop);
  json out{{"nodes", options.nodes},
           {"regions", kRegionCount},
           {"lease_ttl_s", options.lease_ttl_s},
           {"publish_ms", options.publish_ms},
           {"standbys", options.standbys}};
  auto simulation = std::make_unique<Simulation>(options, context.get());
  const absl::Status status = simulation->Run(&out);
  if (status.ok()) {
    out["sim_rss_mib"] = RssMib();
    std::printf("%s\n", out.dump().c_str());
    std::fflush(stdout);
  } else {
    std::fprintf(stderr, "sluice_fleet_sim: %s\n", std::string(status.message()).c_str());
  }
  context->Close();
  uv_run(&loop, UV_RUN_DEFAULT);  // the close callbacks of the nodes' and the run's handles
  simulation.reset();
  context.reset();
  if (int rc = uv_loop_close(&loop); rc != 0) {
    std::fprintf(stderr, "sluice_fleet_sim: the loop did not close: %s\n", uv_strerror(rc));
    return 1;
  }
  return status.ok() ? 0 : 1;
}

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) { return sluice::Main(argc, argv); }
