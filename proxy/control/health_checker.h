// Active health checks, on the control thread's loop: for each endpoint of a cluster with a
// health_check, an HTTP GET of the configured path every interval, over TLS when the cluster
// speaks TLS to its endpoints (proxy/http/control_http_client.h); a 2xx reply within the
// timeout is a pass. After `rise` passes in a row an unhealthy endpoint becomes healthy, after
// `fall` failures a healthy one unhealthy; each change is reported (the server posts it to every
// worker). Endpoints start healthy. Never touches a worker loop. Control thread only.
#ifndef SLUICE_PROXY_CONTROL_HEALTH_CHECKER_H_
#define SLUICE_PROXY_CONTROL_HEALTH_CHECKER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/event/loop_context.h"

namespace sluice {

class HealthChecker {
 public:
  using Report =
      std::function<void(const std::string& cluster, const SocketAddress& address, bool healthy)>;

  HealthChecker(LoopContext* context, Report report);
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;
  ~HealthChecker();

  // Checks the clusters of `config` that have a health_check, against their current addresses
  // (`resolved` gives those of endpoints named by host). Targets that stay keep their state.
  void Configure(const Config& config,
                 const std::map<std::string, std::vector<SocketAddress>>& resolved);
  void Stop();

  // Clusters (not tunnels to peer regions) with at least one checked endpoint, all of them
  // failing their checks now.
  std::vector<std::string> DownClusters() const;

 private:
  struct Target;
  LoopContext* context_;
  Report report_;
  std::map<std::string, std::unique_ptr<Target>> targets_;  // by "cluster|address"
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_HEALTH_CHECKER_H_
