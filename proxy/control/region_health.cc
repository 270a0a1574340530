#include "proxy/control/region_health.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/log.h"

namespace sluice {
namespace {

constexpr uint64_t kSampleEveryMs = 1000;
constexpr size_t kMaxHealthReply = 256 * 1024;
double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

nlohmann::json SummaryJson(const TrafficSummary& s) {
  return nlohmann::json{{"requests", s.requests},   {"errors", s.errors},
                        {"sheds", s.sheds},         {"error_rate", s.error_rate},
                        {"shed_rate", s.shed_rate}, {"p99_ms", Ms(s.p99)}};
}

}  // namespace

RegionHealthMonitor::RegionHealthMonitor(LoopContext* context, Sampler sampler,
                                         OnSampled on_sampled)
    : context_(context), sampler_(std::move(sampler)), on_sampled_(std::move(on_sampled)) {}

RegionHealthMonitor::~RegionHealthMonitor() { Stop(); }

void RegionHealthMonitor::Configure(
    const Config& config, const std::map<std::string, std::vector<SocketAddress>>& resolved) {
  if (config.controller.gate_window != window_ || !sample_timer_.active()) {
    window_ = config.controller.gate_window;
    local_ = TrafficWindow(window_);
    tunnels_.clear();
    starts_.clear();
  }
  interval_ = config.controller.health_interval;
  request_id_header_ = config.proxy.request_id_header;
  const SteeringConfig& steering = config.steering;
  signer_ = steering.enabled ? steering.signer : nullptr;
  local_region_ = steering.enabled ? steering.spec.local_region : "";
  if (cohorts_ != steering.spec.cohorts) {
    cohorts_ = steering.spec.cohorts;
    cohort_load_.clear();
  }

  std::map<std::string, Peer> peers;
  if (steering.enabled) {
    for (size_t r = 0; r < steering.spec.regions.size(); ++r) {
      const std::string& name = steering.spec.regions[r].name;
      int cluster = steering.tunnel_cluster[r];
      if (name == local_region_ || cluster < 0) continue;
      Peer peer;
      const ClusterConfig& tunnel = config.clusters[static_cast<size_t>(cluster)];
      // Polled like the tunnels reach the peer: through their TLS and client certificate.
      peer.tls = tunnel.tls ? tunnel.tls->context : nullptr;
      for (const EndpointConfig& e : tunnel.endpoints) {
        if (e.host.empty()) {
          peer.endpoints.push_back(e.address);
          peer.server_names.push_back(UpstreamTlsName(tunnel, e, e.address));
        } else if (auto it = resolved.find(tunnel.name + "|" + e.text); it != resolved.end()) {
          for (const SocketAddress& a : it->second) {
            peer.endpoints.push_back(a);
            peer.server_names.push_back(UpstreamTlsName(tunnel, e, a));
          }
        }
      }
      if (auto it = peers_.find(name); it != peers_.end()) {
        // Keep what is known; an exchange in flight reports to the new entry by name.
        Peer& old = it->second;
        peer.request = old.request;
        peer.nonce = old.nonce;
        peer.last_ok = old.last_ok;
        peer.last_error = old.last_error;
        peer.error_rate = old.error_rate;
        peer.shed_rate = old.shed_rate;
        peer.p99 = old.p99;
        peer.requests = old.requests;
        old.request = nullptr;
      }
      peers[name] = std::move(peer);
    }
  }
  for (auto& [name, peer] : peers_) {
    if (peer.request) CancelControlHttpRequest(peer.request);
  }
  peers_ = std::move(peers);

  if (!sample_timer_.active()) {
    sample_timer_.Start(context_->loop(), 0, kSampleEveryMs, [this] { OnSample(); });
  }
  poll_timer_.Stop();
  if (!peers_.empty() && signer_ && !signer_->empty()) {
    uint64_t ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(interval_));
    poll_timer_.Start(context_->loop(), 0, ms, [this] { OnPoll(); });
  }
}

void RegionHealthMonitor::Stop() {
  sample_timer_.Close();
  poll_timer_.Close();
  for (auto& [name, peer] : peers_) {
    if (peer.request) CancelControlHttpRequest(peer.request);
    peer.request = nullptr;
  }
}

void RegionHealthMonitor::OnSample() {
  absl::Time now = absl::Now();
  NodeTraffic traffic = sampler_();
  local_.Add(now, traffic.local);
  RegionHealth mine = LocalHealth();
  if (mine.origins_down != origins_down_) {
    if (mine.origins_down) {
      LOG_WARN("the local origins are down: %s", mine.detail);
    } else {
      LOG_WARN("the local origins answer again");
    }
    origins_down_ = mine.origins_down;
  }
  for (const auto& [region, totals] : traffic.tunnels) {
    tunnels_.try_emplace(region, window_).first->second.Add(now, totals);
  }
  TrafficTotals entered;
  entered.requests = traffic.entered;
  for (const auto& [region, count] : traffic.starts) {
    TrafficTotals t;
    t.starts = count;
    starts_.try_emplace(region, window_).first->second.Add(now, t);
    signal_starts_.try_emplace(region, kSignalWindow).first->second.Add(now, t);
    entered.starts += count;
  }
  signal_entered_.Add(now, entered);
  // Capacity: the origins' load and the entering requests by cohort over kLoadWindow.
  TrafficTotals origins;
  origins.requests = traffic.local.requests;
  load_.Add(now, origins);
  for (size_t c = 0; c < cohorts_.size() && c < traffic.entered_by_cohort.size(); ++c) {
    TrafficTotals t;
    t.requests = traffic.entered_by_cohort[c];
    cohort_load_.try_emplace(cohorts_[c], kLoadWindow).first->second.Add(now, t);
  }
  learned_rps_ = traffic.learned_rps;
  learned_limiters_ = traffic.limiters;
  if (on_sampled_) on_sampled_();
}

void RegionHealthMonitor::OnPoll() {
  for (auto& [region, peer] : peers_) PollPeer(region, &peer);
}

void RegionHealthMonitor::PollPeer(const std::string& region, Peer* peer) {
  if (peer->request || peer->endpoints.empty()) return;  // the last poll is still out
  const size_t at = peer->next++ % peer->endpoints.size();
  const SocketAddress& address = peer->endpoints[at];
  const std::string host = address.ToString();
  HopRequest poll{"GET", "/v1/health", "", host, "", "-"};
  peer->nonce = context_->Random();
  std::string marker =
      signer_->Sign(local_region_, region, SystemClock().UnixSeconds(), peer->nonce, "-", poll);
  std::string request = absl::StrFormat(
      "GET /v1/health HTTP/1.1\r\nHost: %s\r\nsluice-hop: %s\r\nUser-Agent: sluice-health\r\n"
      "Connection: close\r\n\r\n",
      host, marker);
  ControlHttpOptions options;
  // The poll must finish well before the next one is due.
  options.timeout = std::min(interval_, absl::Seconds(5));
  options.max_reply = kMaxHealthReply;
  options.tls = peer->tls;
  options.server_name = peer->server_names[at];
  peer->request = StartControlHttpRequest(
      context_, address, std::move(request), std::move(options),
      [this, region](const ControlHttpReply& reply) { OnPeerReply(region, reply); });
}

void RegionHealthMonitor::OnPeerReply(const std::string& region, const ControlHttpReply& reply) {
  auto it = peers_.find(region);
  if (it == peers_.end()) return;
  Peer& peer = it->second;
  peer.request = nullptr;
  std::string error;
  nlohmann::json doc;
  if (!reply.ok) {
    error = reply.error;
  } else if (reply.status != 200) {
    error = absl::StrFormat("/v1/health answered %d", reply.status);
  } else if (!signer_->VerifyMacHex(
                 HealthReplyMessage(region, local_region_, peer.nonce, reply.body),
                 reply.headers.Get(kHealthMacHeader).value_or(""))) {
    error = "/v1/health reply not signed with a tunnel key for this poll";
  } else {
    doc = nlohmann::json::parse(reply.body, nullptr, false);
    const nlohmann::json* local = nullptr;
    if (!doc.is_discarded() && doc.is_object()) {
      auto l = doc.find("local");
      if (l != doc.end() && l->is_object()) local = &*l;
    }
    auto number = [&](const char* key, double* out) {
      auto f = local->find(key);
      if (f == local->end() || !f->is_number()) return false;
      *out = f->get<double>();
      return *out >= 0;
    };
    double error_rate = 0, shed_rate = 0, p99_ms = 0, requests = 0;
    if (!local || !number("error_rate", &error_rate) || !number("shed_rate", &shed_rate) ||
        !number("p99_ms", &p99_ms) || !number("requests", &requests)) {
      error = "/v1/health answered something else than a health document";
    } else if (auto ready = doc.find("ready");
               ready != doc.end() && ready->is_boolean() && !ready->get<bool>()) {
      error = "not ready (draining or starting)";
    } else {
      peer.error_rate = std::min(error_rate, 1.0);
      peer.shed_rate = std::min(shed_rate, 1.0);
      peer.p99 = absl::Milliseconds(p99_ms);
      peer.requests = static_cast<uint64_t>(requests);
      auto down = local->find("origins_down");
      peer.origins_down = down != local->end() && down->is_boolean() && down->get<bool>();
      auto detail = local->find("origins_detail");
      peer.origins_detail = peer.origins_down && detail != local->end() && detail->is_string()
                                ? detail->get<std::string>()
                                : std::string();
      // A peer of an older release has no signal; a bad one is dropped (and says so).
      peer.signal = NodeView{};
      if (auto signal = doc.find("signal"); signal != doc.end()) {
        if (absl::Status bad = SignalFromJson(*signal, &peer.signal); !bad.ok()) {
          peer.signal = NodeView{};
          LOG_WARN("region %s: its health report's %s", region, bad.message());
        }
      }
      if (auto capacity = doc.find("capacity"); capacity != doc.end()) {
        if (absl::Status bad = CapacityFromJson(*capacity, &peer.signal.capacity); !bad.ok()) {
          peer.signal.capacity = NodeCapacity{};
          LOG_WARN("region %s: its health report's %s", region, bad.message());
        }
      }
    }
  }
  if (error.empty()) {
    if (!peer.last_error.empty() && peer.last_error != "no answer yet") {
      LOG_WARN("region %s answers its health polls again", region);
    } else if (!PeerReachable(peer)) {
      LOG_INFO("region %s answers its health polls", region);
    }
    peer.last_ok = absl::Now();
    peer.last_error.clear();
  } else {
    if (peer.last_error != error) LOG_WARN("region %s: its health poll failed: %s", region, error);
    peer.last_error = error;
  }
}

bool RegionHealthMonitor::PeerReachable(const Peer& peer) const {
  return absl::Now() - peer.last_ok <= 3 * interval_;
}

RegionHealth RegionHealthMonitor::LocalHealth() const {
  RegionHealth h;
  TrafficSummary s = local_.Summary();
  h.requests = s.requests;
  h.error_rate = s.error_rate;
  h.shed_rate = s.shed_rate;
  h.p99 = s.p99;
  // Down: nothing succeeded lately, and the checks fail everywhere or every attempt failed. A
  // region with no traffic and passing (or no) checks is not known to be down.
  if (s.requests == s.errors) {
    std::vector<std::string> down = checked_down_ ? checked_down_() : std::vector<std::string>();
    if (!down.empty()) {
      h.origins_down = true;
      h.detail = absl::StrFormat("every endpoint of %s fails its health checks",
                                 absl::StrJoin(down, ", "));
    } else if (s.errors >= kMinTunnelRequests) {  // one failure on a quiet node says little
      h.origins_down = true;
      h.detail = absl::StrFormat("all %d attempts at its origins in the last %s failed", s.requests,
                                 absl::FormatDuration(s.span));
    }
  }
  return h;
}

RegionHealth RegionHealthMonitor::Gate(const std::string& region) const {
  RegionHealth h;
  if (region == local_region_ || local_region_.empty()) return LocalHealth();
  auto peer = peers_.find(region);
  if (peer == peers_.end()) {
    h.reachable = false;
    h.detail = "not a peer region of this node";
    return h;
  }
  const Peer& p = peer->second;
  if (!PeerReachable(p)) {
    h.reachable = false;
    h.detail = p.last_error.empty() ? "no answer lately" : p.last_error;
    return h;
  }
  h.requests = p.requests;
  h.error_rate = p.error_rate;
  h.shed_rate = p.shed_rate;
  h.p99 = p.p99;
  h.origins_down = p.origins_down;
  h.detail = p.origins_detail;
  // What this node saw of the traffic it tunnels there counts too: the worse of the two.
  if (auto t = tunnels_.find(region); t != tunnels_.end()) {
    TrafficSummary s = t->second.Summary();
    if (s.requests >= kMinTunnelRequests) {
      h.error_rate = std::max(h.error_rate, s.error_rate);
      h.p99 = std::max(h.p99, s.p99);
    }
  }
  return h;
}

void RegionHealthMonitor::FillView(NodeView* view) const {
  view->region = local_region_;
  view->window = window_;
  view->local = local_.Summary().Totals();
  RegionHealth mine = LocalHealth();
  view->origins_down = mine.origins_down;
  view->origins_detail = mine.origins_down ? mine.detail : std::string();
  view->tunnels.clear();
  for (const auto& [region, window] : tunnels_) view->tunnels[region] = window.Summary().Totals();
  view->starts_per_second.clear();
  for (const auto& [region, window] : starts_) {
    view->starts_per_second[region] = window.Summary().starts_per_second;
  }
  NodeView signal = Signal();
  view->has_signal = signal.has_signal;
  view->entry_sps = signal.entry_sps;
  view->requests_per_second = signal.requests_per_second;
  view->serving_sps = std::move(signal.serving_sps);
}

NodeView RegionHealthMonitor::Signal() const {
  NodeView v;
  v.region = local_region_;
  TrafficSummary entered = signal_entered_.Summary();
  if (entered.span <= absl::ZeroDuration()) return v;  // one sample: no rate yet
  v.has_signal = true;
  v.entry_sps = entered.starts_per_second;
  v.requests_per_second =
      static_cast<double>(entered.requests) / absl::ToDoubleSeconds(entered.span);
  for (const auto& [region, window] : signal_starts_) {
    v.serving_sps[region] = window.Summary().starts_per_second;
  }
  return v;
}

void RegionHealthMonitor::FillCapacity(NodeCapacity* capacity) const {
  TrafficSummary load = load_.Summary();
  auto rate = [](const TrafficSummary& s) {
    return s.span > absl::ZeroDuration()
               ? static_cast<double>(s.requests) / absl::ToDoubleSeconds(s.span)
               : 0.0;
  };
  capacity->load_rps = rate(load);
  capacity->cohort_rps.clear();
  for (const auto& [cohort, window] : cohort_load_) {
    capacity->cohort_rps[cohort] = rate(window.Summary());
  }
}

std::vector<NodeView> RegionHealthMonitor::PeerCapacities() const {
  std::vector<NodeView> out;
  for (const auto& [region, peer] : peers_) {
    if (!PeerReachable(peer) || !peer.signal.capacity.known) continue;
    NodeView v;
    v.region = region;
    v.capacity = peer.signal.capacity;
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<NodeView> RegionHealthMonitor::PeerSignals() const {
  std::vector<NodeView> out;
  for (const auto& [region, peer] : peers_) {
    if (!PeerReachable(peer) || !peer.signal.has_signal) continue;
    out.push_back(peer.signal);
    out.back().region = region;
  }
  return out;
}

nlohmann::json RegionHealthMonitor::Health() const {
  TrafficSummary local = local_.Summary();
  nlohmann::json j = SummaryJson(local);
  RegionHealth mine = LocalHealth();
  j["origins_down"] = mine.origins_down;
  if (mine.origins_down) j["origins_detail"] = mine.detail;
  nlohmann::json tunnels = nlohmann::json::object();
  for (const auto& [region, window] : tunnels_) tunnels[region] = SummaryJson(window.Summary());
  nlohmann::json starts = nlohmann::json::object();
  for (const auto& [region, window] : starts_) {
    starts[region] = window.Summary().starts_per_second;
  }
  nlohmann::json peers = nlohmann::json::object();
  for (const auto& [region, p] : peers_) {
    bool reachable = PeerReachable(p);
    nlohmann::json entry{{"reachable", reachable}};
    if (reachable) {
      entry["error_rate"] = p.error_rate;
      entry["shed_rate"] = p.shed_rate;
      entry["p99_ms"] = Ms(p.p99);
      entry["requests"] = p.requests;
      entry["origins_down"] = p.origins_down;
      if (p.origins_down) entry["origins_detail"] = p.origins_detail;
    } else {
      entry["error"] = p.last_error;
    }
    peers[region] = entry;
  }
  return nlohmann::json{{"region", local_region_},
                        {"window_seconds", absl::ToDoubleSeconds(window_)},
                        {"local", j},
                        {"tunnels", tunnels},
                        {"peers", peers},
                        {"stream_starts_per_second", starts},
                        {"signal", SignalToJson(Signal())},
                        {"signal_window_seconds", absl::ToDoubleSeconds(kSignalWindow)}};
}

}  // namespace sluice
