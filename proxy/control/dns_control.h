// The DNS step's runtime (DESIGN.md, step 4): makes the zone say what the steering state says.
// Every region whose `dns_out` is set has its records out of the names it shares with other
// regions; every other region has them in. On the leader (or the node, without a fleet), each
// time that set changes: read the managed record sets from the authoritative server, compute
// the change (steering/dns_change.h: nothing when it is already so), send one RFC 2136 update
// holding it with the read sets as prerequisites, signed with TSIG, and check the signed
// answer. Transient failures (a server down, SERVFAIL, a concurrent change) are retried with
// backoff; a refused key or update fails at once. Each outcome is reported on the plan that
// asked for it (dns: pending | applied | failed: why). It never touches the ramp.
#ifndef SLUICE_PROXY_CONTROL_DNS_CONTROL_H_
#define SLUICE_PROXY_CONTROL_DNS_CONTROL_H_

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "proxy/config/config.h"
#include "proxy/control/steering_control.h"
#include "proxy/dns/dns_exchange.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/loop_timer.h"

namespace sluice {

class Fleet;

class DnsControl {
 public:
  DnsControl(LoopContext* context, SteeringControl* steering);
  DnsControl(const DnsControl&) = delete;
  DnsControl& operator=(const DnsControl&) = delete;
  ~DnsControl();

  void Configure(const Config& config);
  void SetFleet(const Fleet* fleet) { fleet_ = fleet; }
  void Stop();

  bool enabled() const { return config_.enabled; }
  bool in_plans() const { return config_.enabled && config_.in_plans; }
  // Whether `region` has records under a shared name (a DNS step can move it).
  bool Manages(const std::string& region) const;
  // GET /v1/dns.
  nlohmann::json StatusJson() const;

  // Tests: backoff from `first` (doubling, at most 30 s).
  void SetBackoffForTest(absl::Duration first) { first_backoff_ = first; }

 private:
  void OnTick();
  void Cancel();  // drops the attempt under way
  void Begin(const std::set<std::string>& out, uint64_t plan);
  void QueryNext();
  void SendUpdate();
  // Sends `message` to the servers in turn from `server`, until one answers.
  void Exchange(std::string message, size_t server,
                std::function<void(absl::StatusOr<std::string>)> done);
  // The attempt ended: `final` applied/failed, else retried after the backoff.
  void Done(RampPlan::Dns state, const std::string& message);
  void Report(uint64_t plan, RampPlan::Dns state, const std::string& message);
  uint16_t NextId() { return ++id_; }

  LoopContext* context_;
  SteeringControl* steering_;
  const Fleet* fleet_ = nullptr;
  DnsConfig config_;
  LoopTimer timer_;
  absl::Duration first_backoff_ = absl::Seconds(1);

  // The attempt under way.
  bool busy_ = false;
  uint64_t generation_ = 0;  // bumped to drop a stale attempt's callbacks
  std::set<std::string> target_;
  uint64_t plan_ = 0;
  std::vector<DnsRRsetKey> keys_;
  size_t next_key_ = 0;
  DnsRRsets current_;
  DnsChange change_;
  std::string request_mac_;
  DnsExchange* exchange_ = nullptr;

  bool seen_out_ = false;  // a region was out since this process started (or led)
  // What is known.
  std::optional<std::set<std::string>> applied_;  // the zone says so (as of the last success)
  std::optional<std::set<std::string>> failed_;   // gave up on this set
  int attempts_ = 0;
  absl::Time retry_at_ = absl::InfinitePast();
  std::string state_ = "idle";
  std::string last_message_;
  absl::Time last_change_ = absl::InfinitePast();
  uint16_t id_ = 0;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_DNS_CONTROL_H_
