#include "proxy/control/health_checker.h"

#include "common/log.h"
#include "proxy/config/steering_config_loader.h"
#include "proxy/event/loop_timer.h"
#include "proxy/http/control_http_client.h"

namespace sluice {

struct HealthChecker::Target {
  Target(HealthChecker* c, std::string name, SocketAddress a, HealthCheckConfig check,
         ClientTlsContext context, std::string verify_name)
      : checker(c),
        cluster(std::move(name)),
        address(a),
        config(std::move(check)),
        tls(std::move(context)),
        server_name(std::move(verify_name)) {}

  HealthChecker* checker;
  std::string cluster;
  SocketAddress address;
  HealthCheckConfig config;
  ClientTlsContext tls;     // the cluster's TLS toward its endpoints; null: cleartext
  std::string server_name;  // what the endpoint's certificate must name
  LoopTimer timer;
  ControlHttpRequest* probe = nullptr;  // the check in flight
  bool healthy = true;
  uint32_t passes = 0;
  uint32_t failures = 0;

  ~Target() {
    if (probe) CancelControlHttpRequest(probe);
  }
  void Probe();
  void Record(bool pass, const std::string& why);
};

// One check through the control-plane HTTP client (TLS when the cluster has it): a 2xx reply
// within the timeout passes.
void HealthChecker::Target::Probe() {
  std::string host = config.host.empty() ? address.ToString() : config.host;
  ControlHttpOptions options;
  options.timeout = config.timeout;
  options.tls = tls;
  options.server_name = server_name;
  probe = StartControlHttpRequest(
      checker->context_, address,
      "GET " + config.path + " HTTP/1.1\r\nHost: " + host +
          "\r\nUser-Agent: sluice-health-check\r\nConnection: close\r\n\r\n",
      std::move(options), [this](const ControlHttpReply& reply) {
        probe = nullptr;
        if (!reply.ok) {
          Record(false, reply.error);
        } else {
          bool pass = reply.status >= 200 && reply.status <= 299;
          Record(pass, pass ? "" : "status other than 2xx");
        }
      });
}

void HealthChecker::Target::Record(bool pass, const std::string& why) {
  if (pass) {
    failures = 0;
    if (++passes >= config.rise && !healthy) {
      healthy = true;
      LOG_INFO("cluster %s: %s is healthy again", cluster, address.ToString());
      checker->report_(cluster, address, true);
    }
  } else {
    passes = 0;
    if (++failures >= config.fall && healthy) {
      healthy = false;
      LOG_WARN("cluster %s: %s fails its health check (%s)", cluster, address.ToString(), why);
      checker->report_(cluster, address, false);
    }
  }
}

HealthChecker::HealthChecker(LoopContext* context, Report report)
    : context_(context), report_(std::move(report)) {}

HealthChecker::~HealthChecker() { Stop(); }

void HealthChecker::Configure(const Config& config,
                              const std::map<std::string, std::vector<SocketAddress>>& resolved) {
  std::map<std::string, bool> wanted;
  for (const ClusterConfig& cluster : config.clusters) {
    if (!cluster.health_check) continue;
    // Each address with the name its certificate must carry, as the workers check it.
    std::vector<std::pair<SocketAddress, std::string>> addresses;
    for (const EndpointConfig& endpoint : cluster.endpoints) {
      if (endpoint.host.empty()) {
        addresses.emplace_back(endpoint.address,
                               UpstreamTlsName(cluster, endpoint, endpoint.address));
      } else if (auto it = resolved.find(cluster.name + "|" + endpoint.text);
                 it != resolved.end()) {
        for (const SocketAddress& a : it->second) {
          addresses.emplace_back(a, UpstreamTlsName(cluster, endpoint, a));
        }
      }
    }
    ClientTlsContext tls = cluster.tls ? cluster.tls->context : nullptr;
    for (const auto& [address, server_name] : addresses) {
      std::string key = cluster.name + "|" + address.ToString();
      wanted[key] = true;
      if (auto it = targets_.find(key); it != targets_.end()) {
        it->second->config = *cluster.health_check;
        it->second->tls = tls;
        it->second->server_name = server_name;
        continue;
      }
      auto target = std::make_unique<Target>(this, cluster.name, address, *cluster.health_check,
                                             tls, server_name);
      uint64_t interval = static_cast<uint64_t>(absl::ToInt64Milliseconds(target->config.interval));
      Target* t = target.get();
      t->timer.Start(context_->loop(), 0, interval, [t] {
        if (!t->probe) t->Probe();  // unless the last one is still out
      });
      targets_[key] = std::move(target);
    }
  }
  for (auto it = targets_.begin(); it != targets_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    const Target& target = *it->second;
    if (!target.healthy) report_(target.cluster, target.address, true);  // forget the verdict
    it = targets_.erase(it);
  }
}

void HealthChecker::Stop() { targets_.clear(); }

std::vector<std::string> HealthChecker::DownClusters() const {
  std::map<std::string, bool> any_up;  // by cluster: has a healthy endpoint
  for (const auto& [key, target] : targets_) {
    if (target->cluster.starts_with(kTunnelClusterPrefix)) continue;
    any_up[target->cluster] = any_up[target->cluster] || target->healthy;
  }
  std::vector<std::string> down;
  for (const auto& [cluster, up] : any_up) {
    if (!up) down.push_back(cluster);
  }
  return down;
}

}  // namespace sluice
