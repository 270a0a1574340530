// The sluice process: the control thread and its loop. It opens the listening sockets, starts
// the workers, and handles signals: SIGHUP re-reads the configuration (a valid one reaches
// every worker as a new snapshot, an invalid one is refused with its message and the running
// configuration stays), SIGTERM and SIGINT drain (stop accepting, let exchanges finish up to
// the drain timeout, exit 0), SIGUSR1 reopens the access log, and SIGUSR2 upgrades the binary
// in place: the binary at the same path starts with the listening sockets handed over, and
// once it serves this process drains (proxy/server_upgrade.cc).
#ifndef SLUICE_PROXY_SERVER_H_
#define SLUICE_PROXY_SERVER_H_

#include <uv.h>

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proxy/admin/admin_api.h"
#include "proxy/admin/admin_server.h"
#include "proxy/config/cli.h"
#include "proxy/config/config.h"
#include "proxy/control/capacity_control.h"
#include "proxy/control/detection_control.h"
#include "proxy/control/health_checker.h"
#include "proxy/control/region_health.h"
#include "proxy/control/resolver.h"
#include "proxy/control/steering_control.h"
#include "proxy/control/ticket_key_control.h"
#include "proxy/event/file_watch.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/loop_timer.h"
#include "proxy/event/signal_set.h"
#include "proxy/fleet/fleet.h"
#include "proxy/net/inherited_sockets.h"
#include "proxy/worker/listener_set.h"
#include "proxy/worker/worker.h"

namespace sluice {

class Server final : private AdminBackend {
 public:
  Server(CommandLine cli, ConfigPtr config);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Runs until drained. Returns the process exit code.
  int Run();

 private:
  // Start-up, in order (Run reads as the list of them).
  int Fail(const absl::Status& status);  // logs it; the exit code
  absl::Status StartAdmin();
  absl::Status StartSteering();  // the controller, region health and the gates
  void HandleSignals();          // signals, file watches, the drain timer, worker exits
  void StartEndpointServices();  // name resolution and active health checks
  void StartWorkers(std::vector<std::vector<ListenerSocket>> sockets);
  void LogStart(uint64_t files) const;
  void StartFleet();  // joins the fleet the configuration names (if any)
  void Stop();        // after the loop ran out: joins the workers, closes every service

  void Reload();
  // The files whose change reloads something: signing keys (JWKS), TLS files and cohort CIDR
  // files.
  static std::vector<std::string> WatchedFiles(const Config& config);
  // A watched file changed: JWKS keys, a cohort CIDR file, or a listener's certificate, key,
  // OCSP response or client CA (the TLS contexts are rebuilt; connections already open keep
  // theirs).
  void OnWatchedFileChanged(const std::string& path);
  void OnKeyFileChanged(const std::string& path);
  // A cohort CIDR file changed: read again against the running configuration's cohort list;
  // a valid map reaches every worker, a refused one is logged and the one in use stays.
  void OnCohortFileChanged(const std::string& path);
  void ReloadCertificates(const std::string& changed);
  void BeginShutdown(const char* why);
  // Binary upgrade (proxy/server_upgrade.cc). SIGUSR2: starts the new binary, handing over the
  // listening sockets; when it reports that it serves, this process drains; when it exits or
  // stays silent first, this one goes on as if nothing happened.
  void StartUpgrade();
  void OnUpgradeReady();
  // The new process will not serve: stop waiting for it (its handle closes when it exits).
  void UpgradeFailed(const std::string& why);
  void OnUpgradeExit(int64_t status, int signal);
  // Stops watching the new process (this one exits).
  void CloseUpgrade();
  void ClosePipe();
  bool upgrade_starting() const { return upgrade_state_ == UpgradeState::kStarting; }
  // This process was started by an upgrade: tells the old one it serves.
  void ReportUpgradeReady();
  void OnWorkerExit();
  void PublishSteeringTable(SteeringTablePtr table);
  // Opens the access log a configuration asks for (keeping the open one when the path is the
  // same) and hands it to the workers.
  absl::Status ConfigureAccessLog(const Config& config);
  // This node's traffic counters summed over the workers, for the health windows.
  NodeTraffic SampleTraffic() const;
  void PublishHealthDocument();

  // AdminBackend
  std::string RenderMetrics() override;
  bool Ready(std::string* why) const override;
  bool Draining() const override { return shutting_down_; }
  nlohmann::json Health() override;
  SteeringControl* steering() override { return steering_.get(); }
  absl::Status InjectStandby(const std::string& cluster, const std::string& actor) override;
  absl::Status UninjectStandby(const std::string& cluster, const std::string& actor) override;
  CapacityControl* capacity() override { return capacity_.get(); }
  DnsControl* dns() override { return dns_.get(); }
  // This node's capacity view (fleet view, /v1/health): steering/fleet_view.h NodeCapacity.
  NodeCapacity Capacity() const;
  nlohmann::json FleetStatus() override;
  void FleetStatusWithNodes(std::function<void(nlohmann::json)> done) override;
  DetectionControl* detection() override { return detection_.get(); }

  CommandLine cli_;
  ConfigPtr config_;
  uv_loop_t loop_;
  std::unique_ptr<SignalSet> signals_;
  std::unique_ptr<FileWatch> file_watch_;  // TLS, key and cohort CIDR files
  LoopTimer drain_timer_;                  // SIGTERM: how long in-flight exchanges get
  uv_async_t worker_exit_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<LoopContext> control_;  // the control loop's services (health check sockets)
  std::unique_ptr<Resolver> resolver_;
  std::unique_ptr<HealthChecker> health_;
  std::unique_ptr<SteeringControl> steering_;
  std::unique_ptr<RegionHealthMonitor> region_health_;
  std::unique_ptr<Fleet> fleet_;
  std::unique_ptr<DetectionControl> detection_;
  std::unique_ptr<CapacityControl> capacity_;
  std::unique_ptr<DnsControl> dns_;
  std::unique_ptr<TicketKeyControl> tickets_;
  std::unique_ptr<AdminApi> admin_api_;
  // Standbys injected on this node by hand (POST /v1/clusters/{c}/standby:inject), and those
  // the steering state injects in this region, with the table version that said so.
  std::set<std::string> manual_standbys_;
  std::set<std::string> fleet_standbys_;
  uint64_t standby_version_ = 0;
  std::unique_ptr<AdminServer> admin_server_;
  std::shared_ptr<AccessLogSink> access_log_;
  absl::Time start_time_ = absl::Now();
  bool started_ = false;   // the workers run
  ListenerSet listeners_;  // what the workers listen on
  std::atomic<int> workers_running_{0};
  bool shutting_down_ = false;
  // Nonces of the hop markers this node accepted, kept across reloads.
  std::shared_ptr<HopReplayCache> hop_replay_ = std::make_shared<HopReplayCache>();
  const char* stop_pending_ = nullptr;  // SIGTERM or SIGINT came before the workers ran
  bool reload_pending_ = false;         // SIGHUP came before the workers ran
  bool upgrade_pending_ = false;        // SIGUSR2 came before the workers ran
  // Binary upgrade: this process's binary (resolved at start, before anyone replaces the
  // file), the sockets an old process handed over, and the descriptor to report ready on.
  std::string binary_;
  InheritedSockets inherited_;
  int upgrade_ready_fd_ = -1;
  // An upgrade under way (started by SIGUSR2): the new process, the pipe it reports on, and
  // how long it gets to serve.
  enum class UpgradeState { kNone, kStarting, kReady, kFailed };
  UpgradeState upgrade_state_ = UpgradeState::kNone;
  uv_process_t* upgrade_process_ = nullptr;  // until the new process exits (or this one does)
  uv_pipe_t* upgrade_pipe_ = nullptr;        // while kStarting
  LoopTimer upgrade_timer_;
  std::string upgrade_reply_;
};

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
uint64_t RaiseFileLimit();
// Switches to `user` (and its group) when running as root. Call after binding.
absl::Status DropPrivileges(const std::string& user);

}  // namespace sluice

#endif  // SLUICE_PROXY_SERVER_H_
