// Binary upgrade in place (SIGUSR2), as nginx, HAProxy and Envoy do it:
//   1. the old process starts the binary at its own path with the same arguments; its
//      listening sockets (every worker's, and the admin listener's) stay open in the new
//      process as descriptors 3.., named in SLUICE_INHERITED_SOCKETS
//      (proxy/net/inherited_sockets.h);
//   2. the new process adopts them instead of binding, starts its workers, and writes
//      "ready" on the pipe named by SLUICE_UPGRADE_READY_FD (and, under systemd, MAINPID=);
//   3. the old process then drains as on SIGTERM: it stops accepting (the new one accepts on
//      the same sockets, so no connection is refused), finishes what is in flight, exits.
// If the new process exits, or does not report within kUpgradeDeadline, the old one keeps
// serving as before and says why.
#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/systemd_notify.h"
#include "proxy/server.h"

extern char** environ;

namespace sluice {
namespace {

constexpr uint64_t kUpgradeDeadlineMs = 60'000;

}  // namespace

void Server::StartUpgrade() {
  if (shutting_down_) {
    LOG_WARN("SIGUSR2: draining already; no upgrade");
    return;
  }
  if (!started_) {
    // The listening sockets may already take connections: the upgrade is not lost.
    upgrade_pending_ = true;
    LOG_INFO("SIGUSR2: still starting; upgrading once the workers run");
    return;
  }
  upgrade_pending_ = false;
  if (upgrade_process_) {
    LOG_WARN("SIGUSR2: %s (process %d)",
             upgrade_starting() ? "an upgrade is under way already"
                                : "the process of the last upgrade has not exited yet",
             upgrade_process_->pid);
    return;
  }
  if (binary_.empty() || access(binary_.c_str(), X_OK) != 0) {
    LOG_ERROR("SIGUSR2: no executable at \"%s\" to upgrade to; this process goes on", binary_);
    return;
  }
  // The child's descriptors: 0-2 as ours, then every listening socket, then the ready pipe.
  InheritedSockets::Map sockets = listeners_.Descriptors();
  if (admin_server_ && admin_server_->fd() >= 0) {
    // Under the configured address: what the new process looks it up by (port 0 included).
    sockets[AdminSocketKey(config_->admin.address.ToString())] = {admin_server_->fd()};
  }
  std::vector<uv_stdio_container_t> stdio(3);
  for (int i = 0; i < 3; ++i) {
    stdio[static_cast<size_t>(i)].flags = UV_INHERIT_FD;
    stdio[static_cast<size_t>(i)].data.fd = i;
  }
  InheritedSockets::Map numbered;  // as the child will see them
  size_t handed = 0;
  for (const auto& [key, fds] : sockets) {
    handed += fds.size();
    for (int fd : fds) {
      numbered[key].push_back(static_cast<int>(stdio.size()));
      uv_stdio_container_t inherit;
      inherit.flags = UV_INHERIT_FD;
      inherit.data.fd = fd;
      stdio.push_back(inherit);
    }
  }
  upgrade_pipe_ = new uv_pipe_t;
  uv_pipe_init(&loop_, upgrade_pipe_, 0);
  upgrade_pipe_->data = this;
  const int ready_fd = static_cast<int>(stdio.size());
  uv_stdio_container_t pipe;
  pipe.flags = static_cast<uv_stdio_flags>(UV_CREATE_PIPE | UV_WRITABLE_PIPE);
  pipe.data.stream = reinterpret_cast<uv_stream_t*>(upgrade_pipe_);
  stdio.push_back(pipe);

  std::vector<std::string> env_text;
  for (char** e = environ; *e; ++e) {
    std::string_view entry(*e);
    if (entry.rfind(std::string(kInheritedSocketsVariable) + "=", 0) == 0 ||
        entry.rfind(std::string(kUpgradeReadyVariable) + "=", 0) == 0) {
      continue;
    }
    env_text.emplace_back(entry);
  }
  env_text.push_back(std::string(kInheritedSocketsVariable) + "=" +
                     InheritedSockets::Encode(numbered));
  env_text.push_back(absl::StrFormat("%s=%d", kUpgradeReadyVariable, ready_fd));
  std::vector<char*> env;
  for (std::string& e : env_text) env.push_back(e.data());
  env.push_back(nullptr);
  std::vector<std::string> args_text{binary_};
  args_text.insert(args_text.end(), cli_.args.begin(), cli_.args.end());
  std::vector<char*> args;
  for (std::string& a : args_text) args.push_back(a.data());
  args.push_back(nullptr);

  uv_process_options_t options{};
  options.file = binary_.c_str();
  options.args = args.data();
  options.env = env.data();
  options.stdio_count = static_cast<int>(stdio.size());
  options.stdio = stdio.data();
  options.exit_cb = [](uv_process_t* process, int64_t status, int signal) {
    static_cast<Server*>(process->data)->OnUpgradeExit(status, signal);
  };
  upgrade_process_ = new uv_process_t;
  upgrade_process_->data = this;
  upgrade_state_ = UpgradeState::kStarting;
  if (int rc = uv_spawn(&loop_, upgrade_process_, &options); rc != 0) {
    // The handle is initialized even when the spawn fails: it is closed, never just freed.
    uv_close(reinterpret_cast<uv_handle_t*>(upgrade_process_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    upgrade_process_ = nullptr;
    UpgradeFailed(absl::StrFormat("cannot start %s: %s", binary_, uv_strerror(rc)));
    return;
  }
  LOG_INFO("SIGUSR2: upgrading: started %s as process %d with %d listening sockets", binary_,
           upgrade_process_->pid, handed);
  if (steering_) steering_->SetHandingOver(true);
  upgrade_reply_.clear();
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(upgrade_pipe_),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static char storage[64];
        *buf = uv_buf_init(storage, sizeof(storage));
      },
      [](uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
        auto* self = static_cast<Server*>(stream->data);
        if (n > 0) {
          self->upgrade_reply_.append(buf->base, static_cast<size_t>(n));
          if (self->upgrade_reply_.find("ready\n") != std::string::npos) self->OnUpgradeReady();
        } else if (n < 0) {
          uv_read_stop(stream);  // closed: the exit callback or the deadline says the rest
        }
      });
  upgrade_timer_.Start(&loop_, kUpgradeDeadlineMs, 0, [this] {
    // It may hold the shared sockets and have accepted on them: it must not linger half-way.
    if (upgrade_process_) uv_process_kill(upgrade_process_, SIGKILL);
    UpgradeFailed("the new process did not report that it serves within 60s; it was killed");
  });
}

void Server::OnUpgradeReady() {
  if (!upgrade_starting()) return;
  upgrade_state_ = UpgradeState::kReady;
  upgrade_timer_.Close();
  ClosePipe();
  const int pid = upgrade_process_->pid;
  LOG_INFO("upgrade: the new process %d serves on the same sockets; this one drains", pid);
  // systemd follows the new process (this one is still the main PID and may say so).
  NotifyServiceManager(absl::StrFormat("MAINPID=%d\nREADY=1", pid));
  // The new process answers the admin API from now on; this one finishes what it has.
  if (admin_server_) admin_server_->StopListening();
  BeginShutdown("upgrade");
}

void Server::UpgradeFailed(const std::string& why) {
  if (!upgrade_starting()) return;
  upgrade_state_ = UpgradeState::kFailed;
  LOG_ERROR("upgrade failed: %s; this process goes on serving", why);
  upgrade_timer_.Close();
  ClosePipe();
  if (steering_ && !shutting_down_) steering_->SetHandingOver(false);
}

void Server::OnUpgradeExit(int64_t status, int signal) {
  UpgradeFailed(signal ? absl::StrFormat("the new process was killed by signal %d", signal)
                       : absl::StrFormat("the new process exited with status %d before it "
                                         "served (its log says why)",
                                         status));
  if (upgrade_state_ == UpgradeState::kReady) {
    LOG_WARN("upgrade: the new process %d has exited (status %d, signal %d)", upgrade_process_->pid,
             status, signal);
  }
  // Reaped: the handle goes, and another upgrade may start.
  uv_close(reinterpret_cast<uv_handle_t*>(upgrade_process_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
  upgrade_process_ = nullptr;
  if (upgrade_state_ == UpgradeState::kFailed) upgrade_state_ = UpgradeState::kNone;
}

void Server::ClosePipe() {
  if (!upgrade_pipe_) return;
  uv_close(reinterpret_cast<uv_handle_t*>(upgrade_pipe_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_pipe_t*>(h); });
  upgrade_pipe_ = nullptr;
}

void Server::CloseUpgrade() {
  upgrade_timer_.Close();
  ClosePipe();
  if (upgrade_process_) {
    // This process exits: stop watching the new one (which goes on when it serves).
    uv_close(reinterpret_cast<uv_handle_t*>(upgrade_process_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_process_t*>(h); });
    upgrade_process_ = nullptr;
  }
}

void Server::ReportUpgradeReady() {
  if (upgrade_ready_fd_ < 0) return;
  static constexpr char kReady[] = "ready\n";
  ssize_t n = write(upgrade_ready_fd_, kReady, sizeof(kReady) - 1);
  if (n != static_cast<ssize_t>(sizeof(kReady) - 1)) {
    LOG_WARN("upgrade: could not tell the old process that this one serves: %s",
             std::strerror(errno));
  } else {
    LOG_INFO("upgrade: serving on the sockets the old process handed over");
  }
  close(upgrade_ready_fd_);
  upgrade_ready_fd_ = -1;
}

}  // namespace sluice
