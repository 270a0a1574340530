#include "proxy/control/health_checker.h"

#include "common/log.h"
#include "proxy/net/tcp_stream.h"

namespace sluice {

struct HealthChecker::Target {
  HealthChecker* checker;
  std::string cluster;
  SocketAddress address;
  HealthCheckConfig config;
  uv_timer_t timer;
  Probe* probe = nullptr;
  bool healthy = true;
  uint32_t passes = 0;
  uint32_t failures = 0;

  void Record(bool pass, const char* why);
};

// One check: connect, send the request, read the status line, close. Frees itself when its
// socket is closed.
class HealthChecker::Probe final : private TcpStream::Handler, private TimeoutTarget {
 public:
  Probe(LoopContext* context, Target* target)
      : target_(target), stream_(context, this), timeout_(this) {}

  void Start(LoopContext* context) {
    timeout_.Arm(context->Timeouts(target_->config.timeout));
    if (stream_.Init() != 0) {
      Finish(false, "cannot create a socket");
      delete this;  // no handle was opened, so no close callback will free it
      return;
    }
    if (stream_.Connect(target_->address.sockaddr_ptr()) != 0) Finish(false, "connect failed");
  }
  // The target goes away: finish without a verdict.
  void Abandon() {
    target_ = nullptr;
    Close();
  }

 private:
  void OnStreamConnected() override {
    stream_.StartReading();
    const HealthCheckConfig& c = target_->config;
    std::string host = c.host.empty() ? target_->address.ToString() : c.host;
    stream_.Write("GET " + c.path + " HTTP/1.1\r\nHost: " + host +
                  "\r\nUser-Agent: sluice-health-check\r\nConnection: close\r\n\r\n");
  }
  void OnStreamRead(const char* data, size_t len) override {
    status_line_.append(data, std::min(len, size_t{64}));
    size_t end = status_line_.find("\r\n");
    if (end == std::string::npos) {
      if (status_line_.size() > 32) Finish(false, "no status line");
      return;
    }
    // "HTTP/1.1 200 ..."
    bool pass = status_line_.size() >= 12 && status_line_.compare(0, 7, "HTTP/1.") == 0 &&
                status_line_[9] == '2';
    Finish(pass, pass ? "" : "status other than 2xx");
  }
  void OnStreamEof() override { Finish(false, "closed before the status line"); }
  void OnStreamError(int error) override { Finish(false, uv_strerror(error)); }
  void OnStreamDrained() override {}
  void OnStreamClosed() override { delete this; }
  void OnTimeout(Timeout*) override { Finish(false, "timed out"); }

  void Finish(bool pass, const char* why) {
    if (finished_) return;
    finished_ = true;
    if (target_) {
      target_->probe = nullptr;
      target_->Record(pass, why);
    }
    Close();
  }
  void Close() {
    timeout_.Disarm();
    if (stream_.closing()) return;
    if (!initialized_close_) {
      initialized_close_ = true;
      stream_.Close();
    }
  }

  Target* target_;
  TcpStream stream_;
  Timeout timeout_;
  std::string status_line_;
  bool finished_ = false;
  bool initialized_close_ = false;
};

void HealthChecker::Target::Record(bool pass, const char* why) {
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
    std::vector<SocketAddress> addresses;
    for (const EndpointConfig& endpoint : cluster.endpoints) {
      if (endpoint.host.empty()) {
        addresses.push_back(endpoint.address);
      } else if (auto it = resolved.find(cluster.name + "|" + endpoint.text);
                 it != resolved.end()) {
        addresses.insert(addresses.end(), it->second.begin(), it->second.end());
      }
    }
    for (const SocketAddress& address : addresses) {
      std::string key = cluster.name + "|" + address.ToString();
      wanted[key] = true;
      if (auto it = targets_.find(key); it != targets_.end()) {
        it->second->config = *cluster.health_check;
        continue;
      }
      auto* target = new Target{this, cluster.name, address, *cluster.health_check, {}};
      uv_timer_init(context_->loop(), &target->timer);
      target->timer.data = target;
      uv_unref(reinterpret_cast<uv_handle_t*>(&target->timer));
      uint64_t interval = static_cast<uint64_t>(absl::ToInt64Milliseconds(target->config.interval));
      uv_timer_start(
          &target->timer,
          [](uv_timer_t* t) {
            auto* tg = static_cast<Target*>(t->data);
            if (tg->probe) return;  // the last one is still out
            tg->probe = new Probe(tg->checker->context_, tg);
            tg->probe->Start(tg->checker->context_);
          },
          0, interval);
      targets_[key] = target;
    }
  }
  for (auto it = targets_.begin(); it != targets_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    Target* target = it->second;
    if (!target->healthy) report_(target->cluster, target->address, true);  // forget the verdict
    if (target->probe) target->probe->Abandon();
    uv_close(reinterpret_cast<uv_handle_t*>(&target->timer),
             [](uv_handle_t* h) { delete static_cast<Target*>(h->data); });
    it = targets_.erase(it);
  }
}

void HealthChecker::Stop() {
  for (auto& [key, target] : targets_) {
    if (target->probe) target->probe->Abandon();
    uv_close(reinterpret_cast<uv_handle_t*>(&target->timer),
             [](uv_handle_t* h) { delete static_cast<Target*>(h->data); });
  }
  targets_.clear();
}

}  // namespace sluice
