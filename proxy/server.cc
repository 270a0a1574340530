#include "proxy/server.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/systemd_notify.h"
#include "proxy/config/config_loader.h"
#include "proxy/config/filter_config_loader.h"
#include "proxy/config/steering_config_loader.h"
#include "proxy/config/tls_config_loader.h"
#include "proxy/observe/heap_memory.h"
#include "proxy/observe/metric_families.h"
#include "proxy/upstream/window_sizer.h"
#include "steering/state_file.h"

namespace sluice {

uint64_t RaiseFileLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

absl::Status DropPrivileges(const std::string& user) {
  if (user.empty()) return absl::OkStatus();
  passwd* pw = getpwnam(user.c_str());
  if (!pw) return absl::NotFoundError(absl::StrFormat("user: no such user \"%s\"", user));
  if (geteuid() != 0) {
    // A binary upgrade starts the new binary as the user the old one switched to.
    if (geteuid() == pw->pw_uid) return absl::OkStatus();
    LOG_WARN("user: not running as root; staying uid %d instead of switching to %s", geteuid(),
             user);
    return absl::OkStatus();
  }
  if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
      setuid(pw->pw_uid) != 0) {
    return absl::PermissionDeniedError(
        absl::StrFormat("user: cannot switch to \"%s\": %s", user, std::strerror(errno)));
  }
  LOG_INFO("running as user %s", user);
  return absl::OkStatus();
}

Server::Server(CommandLine cli, ConfigPtr config)
    : cli_(std::move(cli)), config_(std::move(config)) {
  uv_loop_init(&loop_);
}

Server::~Server() {
  for (auto& worker : workers_) worker->Join();
  uv_loop_close(&loop_);
}

int Server::Run() {
  SetLogThreadName("main");
  const uint64_t files = RaiseFileLimit();
  control_ = std::make_unique<LoopContext>(&loop_);

  // Before anyone can replace the file: a binary upgrade starts what is at this path then.
  char self[4096];
  if (ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1); n > 0) {
    binary_.assign(self, static_cast<size_t>(n));
  }
  // Started by a binary upgrade: the old process's listening sockets, and where to say ready.
  absl::StatusOr<InheritedSockets> inherited = InheritedSockets::FromEnvironment();
  if (!inherited.ok()) return Fail(inherited.status());
  inherited_ = *std::move(inherited);
  if (const char* fd = std::getenv(kUpgradeReadyVariable)) {
    if (!ParseInteger(std::string_view(fd), &upgrade_ready_fd_) || upgrade_ready_fd_ < 3) {
      return Fail(absl::InvalidArgumentError(
          absl::StrFormat("%s: \"%s\" is not a descriptor", kUpgradeReadyVariable, fd)));
    }
    unsetenv(kUpgradeReadyVariable);
    fcntl(upgrade_ready_fd_, F_SETFD, FD_CLOEXEC);
  }

  // Sockets first, while the process may still bind privileged ports.
  absl::StatusOr<ListenerSet::Change> sockets =
      listeners_.Apply(*config_, config_->workers, &inherited_);
  if (!sockets.ok()) return Fail(sockets.status());
  if (absl::Status s = StartAdmin(); !s.ok()) return Fail(s);
  inherited_.CloseRest();  // addresses this configuration no longer listens on
  if (absl::Status s = DropPrivileges(config_->user); !s.ok()) return Fail(s);
  // Nothing sluice runs (it runs nothing) may gain privileges: no setuid binary, no file caps.
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  // After dropping privileges: the state and audit files belong to the user sluice runs as.
  if (absl::Status s = StartSteering(); !s.ok()) return Fail(s);
  if (absl::Status s = ConfigureAccessLog(*config_); !s.ok()) return Fail(s);
  HandleSignals();
  StartEndpointServices();
  WindowBudget::Upstream().SetLimit(config_->limits.upstream_window_memory);
  StartWorkers(std::move(sockets->added));
  LogStart(files);
  started_ = true;
  NotifyServiceManager(absl::StrFormat("READY=1\nMAINPID=%d\nSTATUS=serving", getpid()));
  ReportUpgradeReady();
  StartFleet();
  file_watch_->Watch(WatchedFiles(*config_));
  if (stop_pending_) {
    BeginShutdown(stop_pending_);
  } else if (reload_pending_) {
    Reload();
  }
  if (upgrade_pending_ && !shutting_down_) StartUpgrade();

  uv_run(&loop_, UV_RUN_DEFAULT);

  Stop();
  LOG_INFO("sluice stopped");
  return 0;
}

int Server::Fail(const absl::Status& status) {
  LOG_ERROR("%s", std::string(status.message()));
  return 1;
}

absl::Status Server::StartAdmin() {
  if (!config_->admin.enabled) return absl::OkStatus();
  admin_api_ = std::make_unique<AdminApi>(static_cast<AdminBackend*>(this));
  admin_api_->Configure(config_->admin);
  admin_server_ = std::make_unique<AdminServer>(control_.get(), admin_api_.get());
  admin_server_->SetTls(config_->admin.tls_context);
  std::vector<int> handed = inherited_.Take(AdminSocketKey(config_->admin.address.ToString()));
  for (size_t i = 1; i < handed.size(); ++i) ::close(handed[i]);
  RETURN_IF_ERROR(admin_server_->Start(config_->admin.address, handed.empty() ? -1 : handed[0]));
  CidrSet loopback;
  loopback.Add(*CidrRange::Parse("127.0.0.0/8"));
  loopback.Add(*CidrRange::Parse("::1/128"));
  if (!loopback.Contains(admin_server_->address()) && !config_->admin.tls_context) {
    LOG_WARN(
        "admin API on %s, beyond loopback and without TLS: bearer tokens cross the network "
        "in clear. Bind it to loopback or a management network only operators reach.",
        admin_server_->address().ToString());
  }
  return absl::OkStatus();
}

absl::Status Server::StartSteering() {
  steering_ = std::make_unique<SteeringControl>(
      &loop_, [this](SteeringTablePtr table) { PublishSteeringTable(std::move(table)); });
  RETURN_IF_ERROR(steering_->Start(*config_));
  region_health_ = std::make_unique<RegionHealthMonitor>(
      control_.get(), [this] { return SampleTraffic(); }, [this] { PublishHealthDocument(); });
  steering_->SetHealthGate([this](const std::string& region) {
    // The fleet's sum where the region's nodes publish their views; this node's own otherwise.
    if (fleet_) {
      if (std::optional<RegionHealth> h = fleet_->RegionGate(region)) {
        // What the fleet's counts cannot say: this node's own origins fail their checks.
        if (region_health_->local_region() == region && !h->origins_down) {
          RegionHealth mine = region_health_->LocalHealth();
          if (mine.origins_down && (h->requests == 0 || h->error_rate >= 1.0)) {
            h->origins_down = true;
            h->detail = mine.detail;
          }
        }
        return *h;
      }
    }
    return region_health_->Gate(region);
  });
  detection_ =
      std::make_unique<DetectionControl>(control_.get(), region_health_.get(), steering_.get());
  detection_->Configure(*config_);
  capacity_ = std::make_unique<CapacityControl>(control_.get(), region_health_.get(),
                                                steering_.get(), [this] { return Capacity(); });
  capacity_->SetHistory(&detection_->history());
  capacity_->Configure(*config_);
  steering_->SetAdvisor(capacity_.get());
  detection_->SetCapacity(capacity_.get());
  dns_ = std::make_unique<DnsControl>(control_.get(), steering_.get());
  dns_->Configure(*config_);
  capacity_->SetDns(dns_.get());
  ApplyTicketKeys(*config_);
  tickets_ = std::make_unique<TicketKeyControl>(control_.get());
  tickets_->Configure(*config_);
  return absl::OkStatus();
}

void Server::HandleSignals() {
  uv_async_init(&loop_, &worker_exit_, [](uv_async_t* a) {
    auto* self = static_cast<Server*>(a->data);
    if (self->workers_running_.load() == 0) uv_stop(a->loop);
  });
  worker_exit_.data = this;
  signals_ = std::make_unique<SignalSet>(&loop_);
  // Start-up runs the loop while it resolves names: a signal that comes then waits for the
  // workers, so a SIGTERM is never lost on a process that has no workers to drain yet.
  auto stop = [this](const char* why) {
    if (started_) {
      BeginShutdown(why);
    } else {
      stop_pending_ = why;
    }
  };
  signals_->On(SIGHUP, [this] {
    if (started_) {
      Reload();
    } else {
      reload_pending_ = true;
    }
  });
  signals_->On(SIGTERM, [stop] { stop("SIGTERM"); });
  signals_->On(SIGINT, [stop] { stop("SIGINT"); });
  signals_->On(SIGUSR1, [this] {  // reopen the access log (after logrotate moved it)
    if (access_log_) access_log_->Reopen();
  });
  signals_->On(SIGUSR2, [this] { StartUpgrade(); });
  SignalSet::ReleaseControlSignals();  // held since main's first line: what came waits no more
  file_watch_ = std::make_unique<FileWatch>(
      &loop_, [this](const std::string& path) { OnWatchedFileChanged(path); });
}

void Server::StartEndpointServices() {
  resolver_ = std::make_unique<Resolver>(
      &loop_, [this](const std::string& cluster, const std::string& endpoint,
                     const std::vector<SocketAddress>& addresses) {
        for (auto& worker : workers_) {
          worker->Post([cluster, endpoint, addresses](Worker* w) {
            w->UpdateResolved(cluster, endpoint, addresses);
          });
        }
        if (health_) health_->Configure(*config_, resolver_->Snapshot());
        if (region_health_) region_health_->Configure(*config_, resolver_->Snapshot());
      });
  health_ = std::make_unique<HealthChecker>(
      control_.get(),
      [this](const std::string& cluster, const SocketAddress& address, bool healthy) {
        for (auto& worker : workers_) {
          worker->Post([cluster, address, healthy](Worker* w) {
            w->UpdateHealth(cluster, address, healthy);
          });
        }
      });
  region_health_->SetCheckedDown([this] { return health_->DownClusters(); });
  // Names are resolved before the workers start, so they start with every address known.
  resolver_->Configure(*config_);
  resolver_->ResolveAllNow(absl::Seconds(5));
  region_health_->Configure(*config_, resolver_->Snapshot());
}

void Server::StartWorkers(std::vector<std::vector<ListenerSocket>> sockets) {
  workers_running_ = config_->workers;
  for (int i = 0; i < config_->workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, hop_replay_, [this] { OnWorkerExit(); }));
    workers_.back()->SetSteeringTable(steering_->table());
    workers_.back()->SetAccessLog(access_log_, config_->access_log.sample);
    workers_.back()->SetNodeHealth(std::make_shared<const std::string>(
        Health().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
    workers_.back()->Start(config_, std::move(sockets[static_cast<size_t>(i)]),
                           resolver_->Snapshot());
  }
  health_->Configure(*config_, resolver_->Snapshot());
}

void Server::LogStart(uint64_t files) const {
  std::string addresses;
  for (const ListenerConfig& l : config_->listeners) {
    addresses += (addresses.empty() ? "" : ", ") + l.address.ToString();
  }
  const uint32_t cap = MaxConnectionsFor(config_->limits, files);
  LOG_INFO(
      "sluice listening on %s with %d workers (pid %d, config %s, %d file descriptors, %s)",
      addresses, config_->workers, getpid(), config_->source, files,
      cap == 0 ? std::string("no connection cap") : absl::StrFormat("at most %d connections", cap));
  if (admin_server_) {
    LOG_INFO("admin API on %s://%s (%d tokens)", admin_server_->tls() ? "https" : "http",
             admin_server_->address().ToString(), config_->admin.tokens.size());
  }
}

void Server::Stop() {
  for (auto& worker : workers_) worker->Join();
  CloseUpgrade();
  if (admin_server_) admin_server_->Stop();
  detection_->Stop();
  capacity_->Stop();
  dns_->Stop();
  tickets_->Stop();
  steering_->SetAdvisor(nullptr);
  region_health_->Stop();
  if (fleet_) fleet_->Stop();
  steering_->Stop();
  health_->Stop();
  resolver_->Stop();
  control_->Close();
  file_watch_->Close();
  signals_->Close();
  drain_timer_.Close();
  uv_close(reinterpret_cast<uv_handle_t*>(&worker_exit_), nullptr);
  uv_run(&loop_, UV_RUN_DEFAULT);
  admin_server_.reset();
  access_log_.reset();  // the workers are gone: it writes what is queued and stops
  detection_.reset();
  capacity_.reset();
  dns_.reset();
  fleet_.reset();
  tickets_.reset();
  region_health_.reset();
  health_.reset();
  resolver_.reset();
  file_watch_.reset();
  signals_.reset();
  control_.reset();
}

void Server::OnWorkerExit() {
  // Worker thread: only the atomic counter and uv_async_send are safe here.
  workers_running_.fetch_sub(1);
  uv_async_send(&worker_exit_);
}

void Server::Reload() {
  if (shutting_down_) return;
  if (upgrade_starting()) {
    // The new process reads the file as it starts; a listener bound here now would not be
    // handed over to it.
    LOG_WARN(
        "SIGHUP: a binary upgrade is under way; not reloading (send SIGHUP to the new "
        "process once it serves)");
    return;
  }
  NotifyServiceManager("RELOADING=1");
  absl::Cleanup ready = [] { NotifyServiceManager("READY=1"); };
  if (cli_.config_path.empty()) {
    LOG_WARN("SIGHUP: started without a configuration file; nothing to reload");
    return;
  }
  absl::StatusOr<ConfigPtr> loaded = ConfigFromCommandLine(cli_);
  if (!loaded.ok()) {
    LOG_ERROR("reload refused, keeping the running configuration: %s",
              std::string(loaded.status().message()));
    return;
  }
  ConfigPtr config = *loaded;
  if (config->workers != config_->workers) {
    LOG_WARN("reload: workers changes from %d to %d only after a restart", config_->workers,
             config->workers);
    auto adjusted = std::make_shared<Config>(*config);
    adjusted->workers = config_->workers;
    config = adjusted;
  }
  if (config->user != config_->user) {
    LOG_WARN("reload: a change of user takes effect only after a restart");
  }
  if (absl::Status s = steering_->CheckReconfigure(*config); !s.ok()) {
    LOG_ERROR(
        "reload refused, keeping the running configuration: the steering state does not "
        "fit it: %s",
        std::string(s.message()));
    return;
  }
  absl::StatusOr<ListenerSet::Change> sockets = listeners_.Apply(*config, workers_.size());
  if (!sockets.ok()) {
    LOG_ERROR("reload refused, keeping the running configuration: %s",
              std::string(sockets.status().message()));
    return;
  }
  if (config->admin.enabled != config_->admin.enabled ||
      (config->admin.enabled && config->admin.address != config_->admin.address)) {
    LOG_WARN("reload: a change of the admin address takes effect only after a restart");
  }
  if (admin_api_) admin_api_->Configure(config->admin);
  // admin.tls applies to connections accepted from now on (on, off, or other certificates).
  if (admin_server_) admin_server_->SetTls(config->admin.tls_context);
  if (config->fleet.enabled != config_->fleet.enabled ||
      config->fleet.etcd_endpoints != config_->fleet.etcd_endpoints ||
      config->fleet.prefix != config_->fleet.prefix || config->fleet.node != config_->fleet.node ||
      config->fleet.lease_ttl != config_->fleet.lease_ttl ||
      config->fleet.standbys != config_->fleet.standbys ||
      config->fleet.ticket_keys.enabled != config_->fleet.ticket_keys.enabled ||
      config->fleet.ticket_keys.seal != config_->fleet.ticket_keys.seal ||
      config->fleet.ticket_keys.rotation != config_->fleet.ticket_keys.rotation ||
      config->fleet.ticket_keys.fleet_wide != config_->fleet.ticket_keys.fleet_wide) {
    LOG_WARN("reload: a change of the fleet section takes effect only after a restart");
  }
  config_ = config;
  WindowBudget::Upstream().SetLimit(config_->limits.upstream_window_memory);
  steering_->Reconfigure(*config_);
  region_health_->Configure(*config_, resolver_->Snapshot());
  detection_->Configure(*config_);
  capacity_->Configure(*config_);
  dns_->Configure(*config_);
  ApplyTicketKeys(*config_);
  tickets_->Configure(*config_);
  if (absl::Status s = ConfigureAccessLog(*config_); !s.ok()) {
    LOG_ERROR("reload: %s; the access log stays as it was", std::string(s.message()));
  }
  SteeringTablePtr table = steering_->table();
  const std::map<std::string, ListenerOptions>& keep = sockets->kept;
  for (size_t i = 0; i < workers_.size(); ++i) {
    auto added = std::make_shared<std::vector<ListenerSocket>>(std::move(sockets->added[i]));
    // One task: no request sees the new configuration with the old table.
    workers_[i]->Post([config, added, keep, table](Worker* w) {
      w->SetSteeringTable(table);
      w->ApplyConfig(config, std::move(*added), keep);
    });
  }
  file_watch_->Watch(WatchedFiles(*config_));
  resolver_->Configure(*config_);
  health_->Configure(*config_, resolver_->Snapshot());
  LOG_INFO("configuration reloaded from %s", config_->source);
}

std::vector<std::string> Server::WatchedFiles(const Config& config) {
  std::vector<std::string> files = FilterKeyFiles(config);
  for (std::string& file : TlsFiles(config)) {
    if (std::find(files.begin(), files.end(), file) == files.end()) files.push_back(file);
  }
  for (std::string& file : CohortFiles(config)) {
    if (std::find(files.begin(), files.end(), file) == files.end()) files.push_back(file);
  }
  return files;
}

void Server::OnWatchedFileChanged(const std::string& path) {
  std::vector<std::string> tls = TlsFiles(*config_);
  if (std::find(tls.begin(), tls.end(), path) != tls.end()) ReloadCertificates(path);
  std::vector<std::string> jwks = FilterKeyFiles(*config_);
  if (std::find(jwks.begin(), jwks.end(), path) != jwks.end()) OnKeyFileChanged(path);
  std::vector<std::string> cohorts = CohortFiles(*config_);
  if (std::find(cohorts.begin(), cohorts.end(), path) != cohorts.end()) OnCohortFileChanged(path);
}

void Server::ReloadCertificates(const std::string& changed) {
  if (shutting_down_) return;
  auto config = std::make_shared<Config>(*config_);
  if (absl::Status s = RebuildTlsContexts(config.get()); !s.ok()) {
    // A certificate and its key are rarely replaced at the same instant: the next change
    // (the key arriving) tries again.
    LOG_ERROR("%s changed, but the certificates do not load; keeping the ones in use: %s", changed,
              std::string(s.message()));
    return;
  }
  config_ = config;
  ApplyTicketKeys(*config_);
  tickets_->Configure(*config_);  // a listener whose files went follows the fleet's keys again
  if (admin_server_) admin_server_->SetTls(config_->admin.tls_context);
  std::map<std::string, ListenerOptions> keep = ListenerSet::Options(*config_);
  SteeringTablePtr table = steering_->table();
  for (auto& worker : workers_) {
    // New connections handshake with the new certificates; open ones keep theirs.
    worker->Post([config, keep, table](Worker* w) {
      w->SetSteeringTable(table);
      w->ApplyConfig(config, {}, keep);
    });
  }
  LOG_INFO("certificates reloaded (%s changed)", changed);
}

void Server::OnKeyFileChanged(const std::string& path) {
  absl::StatusOr<std::shared_ptr<const JsonWebKeySet>> keys = JsonWebKeySet::Load(path);
  if (!keys.ok()) {
    LOG_ERROR("keys not reloaded, keeping the ones in force: %s",
              std::string(keys.status().message()));
    return;
  }
  LOG_INFO("signing keys reloaded from %s (%d keys)", path, (*keys)->size());
  for (auto& worker : workers_) {
    std::shared_ptr<const JsonWebKeySet> set = *keys;
    worker->Post([path, set](Worker* w) { w->UpdateKeys(path, set); });
  }
}

void Server::OnCohortFileChanged(const std::string& path) {
  if (shutting_down_) return;
  // The cohort list is the configuration's (the table's rows name its cohorts): a name it
  // lacks is refused here, and takes a reload of the configuration.
  std::vector<std::string> cohorts = config_->steering.spec.cohorts;
  absl::StatusOr<CohortCidrMapPtr> map =
      CohortCidrMap::Load(path, &cohorts, CohortCidrMap::NewCohorts::kRefuse);
  if (!map.ok()) {
    LOG_ERROR("cohort CIDR file not reloaded, keeping the map in use: %s",
              std::string(map.status().message()));
    return;
  }
  LOG_INFO("cohorts reloaded from %s (%d ranges)", path, (*map)->ranges());
  for (auto& worker : workers_) {
    CohortCidrMapPtr shared = *map;
    worker->Post([path, shared](Worker* w) { w->UpdateCohortMap(path, shared); });
  }
}

void Server::BeginShutdown(const char* why) {
  if (shutting_down_) {
    LOG_INFO("%s again: closing every connection now", why);
    for (auto& worker : workers_) worker->Post([](Worker* w) { w->ForceClose(); });
    return;
  }
  shutting_down_ = true;
  LOG_INFO("%s: draining (up to %s)", why, absl::FormatDuration(config_->timeouts.drain));
  if (upgrade_starting()) {
    // Asked to stop while a new binary starts: it must not go on serving after this one.
    if (upgrade_process_) uv_process_kill(upgrade_process_, SIGTERM);
    UpgradeFailed("this process was asked to stop meanwhile; the new one was stopped too");
  }
  // After an upgrade the new process serves: systemd hears from it, not "stopping".
  if (upgrade_state_ != UpgradeState::kReady) NotifyServiceManager("STOPPING=1");
  if (fleet_) fleet_->Leave();
  for (auto& worker : workers_) worker->Post([](Worker* w) { w->BeginDrain(); });
  uint64_t ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(config_->timeouts.drain));
  drain_timer_.Start(&loop_, ms, 0, [this] {
    LOG_WARN("drain timeout: closing the remaining connections");
    for (auto& worker : workers_) worker->Post([](Worker* w) { w->ForceClose(); });
  });
}

absl::Status Server::ConfigureAccessLog(const Config& config) {
  std::shared_ptr<AccessLogSink> sink;
  if (config.access_log.enabled) {
    if (access_log_ && access_log_->path() == config.access_log.path) {
      sink = access_log_;
    } else {
      absl::StatusOr<std::unique_ptr<AccessLogSink>> opened =
          AccessLogSink::Open(config.access_log.path);
      if (!opened.ok()) return opened.status();
      sink = *std::move(opened);
    }
  }
  access_log_ = sink;
  double sample = config.access_log.sample;
  for (auto& worker : workers_) {
    worker->Post([sink, sample](Worker* w) { w->SetAccessLog(sink, sample); });
  }
  return absl::OkStatus();
}

void Server::PublishSteeringTable(SteeringTablePtr table) {
  for (auto& worker : workers_) {
    worker->Post([table](Worker* w) { w->SetSteeringTable(table); });
  }
  if (!table) return;
  // The standbys the state injects in this node's region.
  const std::set<std::string>& wanted =
      table->spec().regions[static_cast<size_t>(table->local())].standbys;
  standby_version_ = table->version();
  if (wanted == fleet_standbys_) return;
  LOG_INFO("standbys injected in %s by the steering state: %s (table version %d)",
           table->spec().local_region,
           wanted.empty() ? std::string("none") : absl::StrJoin(wanted, ", "), table->version());
  fleet_standbys_ = wanted;
  for (auto& worker : workers_) {
    worker->Post([wanted](Worker* w) { w->SetFleetStandbys(wanted); });
  }
}

NodeCapacity Server::Capacity() const {
  NodeCapacity c;
  c.known = true;
  if (region_health_) region_health_->FillCapacity(&c);
  // Endpoints of the local origins (tunnel clusters lead to peer regions).
  std::set<size_t> tunnels;
  for (int index : config_->steering.tunnel_cluster) {
    if (index >= 0) tunnels.insert(static_cast<size_t>(index));
  }
  uint32_t regular = 0;
  for (size_t i = 0; i < config_->clusters.size(); ++i) {
    if (tunnels.count(i)) continue;
    const ClusterConfig& cluster = config_->clusters[i];
    const bool injected = cluster.inject_standby || manual_standbys_.count(cluster.name) ||
                          fleet_standbys_.count(cluster.name) || fleet_standbys_.count("*");
    for (const EndpointConfig& e : cluster.endpoints) {
      if (!e.standby) {
        ++regular;
      } else if (injected) {
        ++c.injected_endpoints;
      } else {
        ++c.standby_endpoints;
      }
    }
  }
  if (config_->capacity.requests_per_second > 0) {
    // The configured figure is for the regular endpoints; each standby adds its share.
    c.source = "configured";
    const double per = config_->capacity.requests_per_second / std::max<uint32_t>(regular, 1);
    c.capacity_rps = config_->capacity.requests_per_second + per * c.injected_endpoints;
    c.standby_capacity_rps = c.capacity_rps + per * c.standby_endpoints;
  } else if (region_health_ && region_health_->learned_limiters() > 0) {
    c.source = "learned";
    c.capacity_rps = region_health_->learned_rps();
    c.standby_capacity_rps = c.capacity_rps;
  } else {
    c.source = "none";
  }
  c.standbys.assign(fleet_standbys_.begin(), fleet_standbys_.end());
  for (const std::string& manual : manual_standbys_) {
    if (!fleet_standbys_.count(manual)) c.standbys.push_back(manual);
  }
  c.standby_version = standby_version_;
  return c;
}

std::string Server::RenderMetrics() {
  std::vector<const WorkerMetrics*> metrics;
  for (const auto& worker : workers_) metrics.push_back(&worker->metrics());
  NodeGauges node;
  std::vector<std::string> region_names;
  if (const Controller* c = steering_ ? steering_->controller() : nullptr) {
    node.table_version = c->state().version;
    node.local_region = c->spec().local_region;
    for (const RegionSpec& region : c->spec().regions) {
      node.evacuated_bp.emplace_back(region.name, region.evacuated_bp);
      node.region_healthy.emplace_back(region.name, region.healthy);
      region_names.push_back(region.name);
    }
    const absl::Time now = absl::Now();
    for (const RampPlan& plan : c->state().plans) {
      if (!plan.active()) continue;
      ++node.active_plans;
      NodeGauges::ActivePlan p;
      p.id = plan.id;
      p.region = plan.region;
      p.kind = RampPlanKindName(plan.kind);
      if (plan.state == RampPlan::State::kHolding && plan.held_since != absl::InfinitePast()) {
        p.held_seconds = std::max(0.0, absl::ToDoubleSeconds(now - plan.held_since));
      }
      node.plans.push_back(std::move(p));
    }
  }
  std::string why;
  node.ready = Ready(&why);
  node.start_time_seconds = absl::ToDoubleSeconds(start_time_ - absl::UnixEpoch());
  if (std::optional<HeapMemory> heap = ReadHeapMemory()) {
    node.has_heap = true;
    node.heap_allocated_bytes = heap->allocated;
    node.heap_bytes = heap->heap;
  }
  node.hop_replay_evictions = hop_replay_->live_evictions();
  node.upstream_window_bytes = WindowBudget::Upstream().reserved();
  node.upstream_window_limit = WindowBudget::Upstream().limit();
  if (fleet_) {
    node.fleet = true;
    node.fleet_connected = fleet_->connected();
    node.fleet_leader = fleet_->leader();
    node.fleet_revision = fleet_->revision();
    node.fleet_seconds_since_sync = fleet_->last_sync() == absl::InfinitePast()
                                        ? absl::ToDoubleSeconds(absl::Now() - start_time_)
                                        : absl::ToDoubleSeconds(absl::Now() - fleet_->last_sync());
    node.fleet_nodes = fleet_->node_count();
    for (int i = 0; i < Fleet::kWriteOutcomes; ++i) {
      auto outcome = static_cast<Fleet::WriteOutcome>(i);
      node.fleet_writes.emplace_back(Fleet::WriteOutcomeName(outcome), fleet_->writes(outcome));
    }
  }
  if (detection_) detection_->FillGauges(&node);
  if (steering_ && steering_->enabled()) {
    NodeCapacity capacity = Capacity();
    node.has_capacity = true;
    node.capacity_rps = capacity.capacity_rps;
    node.load_rps = capacity.load_rps;
    node.standby_endpoints = capacity.standby_endpoints;
    node.injected_endpoints = capacity.injected_endpoints;
  }
  return sluice::RenderMetrics(metrics, node, region_names);
}

bool Server::Ready(std::string* why) const {
  if (shutting_down_) {
    *why = "draining";
    return false;
  }
  if (!started_) {
    *why = "starting";
    return false;
  }
  return true;
}

nlohmann::json Server::Health() {
  std::string why;
  nlohmann::json doc = region_health_ ? region_health_->Health() : nlohmann::json::object();
  doc["ready"] = Ready(&why);
  const Controller* c = steering_ ? steering_->controller() : nullptr;
  doc["version"] = c ? c->state().version : 0;
  doc["capacity"] = CapacityToJson(Capacity());
  if (capacity_ && c) doc["regions_capacity"] = capacity_->RegionsJson();
  return doc;
}

void Server::PublishHealthDocument() {
  auto doc = std::make_shared<const std::string>(
      Health().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  for (auto& worker : workers_) {
    worker->Post([doc](Worker* w) { w->SetNodeHealth(doc); });
  }
}

NodeTraffic Server::SampleTraffic() const {
  std::vector<const WorkerMetrics*> metrics;
  for (const auto& worker : workers_) metrics.push_back(&worker->metrics());
  return SampleNodeTraffic(metrics);
}

absl::Status Server::InjectStandby(const std::string& cluster, const std::string& actor) {
  const ClusterConfig* found = nullptr;
  for (const ClusterConfig& c : config_->clusters) {
    if (c.name == cluster) found = &c;
  }
  if (!found) return absl::NotFoundError(absl::StrFormat("no cluster named \"%s\"", cluster));
  bool has_standby = false;
  for (const EndpointConfig& e : found->endpoints) has_standby = has_standby || e.standby;
  if (!has_standby) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cluster %s has no standby endpoints", cluster));
  }
  const uint64_t version = steering_->table() ? steering_->table()->version() : 0;
  steering_->Audit(ControllerEvent{
      absl::Now(), actor, absl::StrFormat("inject the standby endpoints of cluster %s", cluster),
      version, version});
  manual_standbys_.insert(cluster);
  for (auto& worker : workers_) {
    worker->Post([cluster](Worker* w) { w->InjectStandby(cluster, true); });
  }
  return absl::OkStatus();
}

absl::Status Server::UninjectStandby(const std::string& cluster, const std::string& actor) {
  if (!manual_standbys_.count(cluster)) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the standbys of cluster %s were not injected on this node by hand%s", cluster,
        fleet_standbys_.count(cluster) || fleet_standbys_.count("*")
            ? " (the steering state injects them in this region: take them out with --region)"
            : ""));
  }
  const uint64_t version = steering_->table() ? steering_->table()->version() : 0;
  steering_->Audit(ControllerEvent{
      absl::Now(), actor,
      absl::StrFormat("take out the standby endpoints of cluster %s on this node", cluster),
      version, version});
  manual_standbys_.erase(cluster);
  for (auto& worker : workers_) {
    worker->Post([cluster](Worker* w) { w->InjectStandby(cluster, false); });
  }
  return absl::OkStatus();
}

}  // namespace sluice
