#include "proxy/control/dns_control.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "proxy/dns/dns_message.h"
#include "proxy/fleet/fleet.h"

namespace sluice {

namespace {

constexpr uint64_t kDnsTickMs = 1000;
constexpr int kMaxAttempts = 10;  // about 2.5 minutes of backoff
constexpr absl::Duration kMaxBackoff = absl::Seconds(30);

// Rcodes of a failed prerequisite (RFC 2136 2.4): the record sets are not as read.
bool PrerequisiteFailed(int rcode) { return (rcode >= 6 && rcode <= 8) || rcode == 3; }

std::string OutList(const std::set<std::string>& regions) {
  return regions.empty() ? "none" : absl::StrJoin(regions, ", ");
}

}  // namespace

DnsControl::DnsControl(LoopContext* context, SteeringControl* steering)
    : context_(context), steering_(steering) {}

DnsControl::~DnsControl() { Stop(); }

void DnsControl::Configure(const Config& config) {
  const bool changed = config.dns.enabled != config_.enabled || config.dns.zone != config_.zone ||
                       ManagedRRsets(config.dns.regions) != ManagedRRsets(config_.regions);
  config_ = config.dns;
  if (changed) {
    applied_.reset();
    failed_.reset();
    attempts_ = 0;
  }
  if (!config_.enabled) {
    Stop();
    return;
  }
  if (!timer_.active())
    timer_.Start(context_->loop(), kDnsTickMs, kDnsTickMs, [this] { OnTick(); });
}

void DnsControl::Stop() {
  timer_.Close();  // the handle goes with the loop's last run (a later Start opens a new one)
  Cancel();
}

void DnsControl::Cancel() {
  ++generation_;
  if (exchange_) CancelDnsExchange(exchange_);
  exchange_ = nullptr;
  busy_ = false;
}

bool DnsControl::Manages(const std::string& region) const {
  if (!config_.enabled) return false;
  std::vector<DnsRRsetKey> keys = ManagedRRsets(config_.regions);
  for (const DnsRegionRecords& r : config_.regions) {
    if (r.region != region) continue;
    for (const DnsRecord& record : r.records) {
      if (std::find(keys.begin(), keys.end(), DnsRRsetKey{record.name, record.type}) !=
          keys.end()) {
        return true;
      }
    }
  }
  return false;
}

nlohmann::json DnsControl::StatusJson() const {
  if (!config_.enabled) return nlohmann::json{{"enabled", false}};
  nlohmann::json servers = nlohmann::json::array();
  for (const SocketAddress& s : config_.servers) servers.push_back(s.ToString());
  nlohmann::json names = nlohmann::json::array();
  for (const auto& [name, type] : ManagedRRsets(config_.regions)) {
    names.push_back(name + " " + type);
  }
  nlohmann::json out{{"enabled", true},          {"zone", config_.zone},
                     {"servers", servers},       {"key", config_.key.name},
                     {"ttl_s", config_.ttl},     {"in_plans", config_.in_plans},
                     {"names", names},           {"state", state_},
                     {"message", last_message_}, {"attempts", attempts_}};
  if (applied_) out["applied_out"] = *applied_;
  if (busy_ || state_ == "retrying") out["target_out"] = target_;
  return out;
}

void DnsControl::OnTick() {
  const Controller* c = steering_->controller();
  if (!c || !config_.enabled) return;
  std::set<std::string> out;
  for (const RegionSpec& r : c->spec().regions) {
    if (r.dns_out && Manages(r.name)) out.insert(r.name);
  }
  // Followers keep track too: the state they replicate is the one they will lead with.
  if (!out.empty()) seen_out_ = true;
  if (fleet_ && !fleet_->leader()) {
    // Only the leader writes; a new one reads the zone again before it says anything.
    if (busy_) Cancel();
    applied_.reset();
    failed_.reset();
    state_ = "standby (not the leader)";
    return;
  }
  // The plan waiting for a DNS outcome: the newest one whose DNS state is pending.
  uint64_t plan = 0;
  const RampPlan* waiting = nullptr;
  for (const RampPlan& p : c->state().plans) {
    if (p.dns == RampPlan::Dns::kPending && p.id > plan) {
      plan = p.id;
      waiting = &p;
    }
  }
  if (busy_) return;
  // The zone is left alone until this process sees a region out (or a plan waits for DNS):
  // starting, or taking over the leadership, with every region in never rewrites records
  // someone took out by hand. Once a region was out, every region back in is put back.
  if (!seen_out_ && !waiting) {
    state_ = "idle (no region out)";
    return;
  }
  if (out != target_) {
    attempts_ = 0;
    retry_at_ = absl::InfinitePast();
  }
  if (applied_ && *applied_ == out) {
    if (waiting) Report(plan, RampPlan::Dns::kApplied, last_message_);
    return;
  }
  if (failed_ && *failed_ == out) {
    if (waiting) Report(plan, RampPlan::Dns::kFailed, last_message_);
    return;
  }
  if (absl::Now() < retry_at_) return;
  Begin(out, plan);
}

void DnsControl::Begin(const std::set<std::string>& out, uint64_t plan) {
  busy_ = true;
  ++generation_;
  target_ = out;
  plan_ = plan;
  keys_ = ManagedRRsets(config_.regions);
  next_key_ = 0;
  current_.clear();
  state_ = "reading";
  QueryNext();
}

void DnsControl::QueryNext() {
  if (next_key_ == keys_.size()) {
    absl::StatusOr<DnsChange> change = PlanDnsChange(config_.regions, target_, current_);
    if (!change.ok()) {
      Done(RampPlan::Dns::kFailed, std::string(change.status().message()));
      return;
    }
    if (change->empty()) {
      Done(RampPlan::Dns::kApplied,
           absl::StrFormat("already in place in %s (out: %s)", config_.zone, OutList(target_)));
      return;
    }
    change_ = *std::move(change);
    SendUpdate();
    return;
  }
  const auto& [name, type] = keys_[next_key_];
  const uint16_t id = NextId();
  absl::StatusOr<std::string> query = BuildDnsQuery(id, name, type);
  if (!query.ok()) {
    Done(RampPlan::Dns::kFailed, std::string(query.status().message()));
    return;
  }
  Exchange(*std::move(query), 0, [this, id](absl::StatusOr<std::string> wire) {
    const auto& [qname, qtype] = keys_[next_key_];
    if (!wire.ok()) {
      Done(RampPlan::Dns::kPending,
           absl::StrFormat("reading %s %s: %s", qname, qtype, wire.status().message()));
      return;
    }
    absl::StatusOr<DnsReply> reply = ParseDnsReply(*wire);
    if (!reply.ok() || reply->id != id) {
      Done(RampPlan::Dns::kPending,
           absl::StrFormat("reading %s %s: %s", qname, qtype,
                           reply.ok() ? "the answer is for another query"
                                      : std::string(reply.status().message())));
      return;
    }
    if (reply->rcode != 0 && reply->rcode != 3) {  // NOERROR, or NXDOMAIN: no records
      Done(RampPlan::Dns::kPending, absl::StrFormat("reading %s %s: the server answered %s", qname,
                                                    qtype, DnsRcodeName(reply->rcode)));
      return;
    }
    current_[keys_[next_key_]] = RRsetIn(*reply, qname, qtype);
    ++next_key_;
    QueryNext();
  });
}

void DnsControl::SendUpdate() {
  state_ = "updating";
  const uint16_t id = NextId();
  absl::StatusOr<std::string> update =
      BuildDnsUpdate(id, config_.zone, change_, config_.ttl, &config_.key, &request_mac_);
  if (!update.ok()) {
    Done(RampPlan::Dns::kFailed, std::string(update.status().message()));
    return;
  }
  Exchange(*std::move(update), 0, [this, id](absl::StatusOr<std::string> wire) {
    const std::string what = change_.Summary();
    if (!wire.ok()) {
      // Unknown whether it was applied: the next attempt reads again, so nothing is doubled.
      Done(RampPlan::Dns::kPending,
           absl::StrFormat("update (%s): %s", what, wire.status().message()));
      return;
    }
    absl::StatusOr<DnsReply> reply = ParseDnsReply(*wire);
    if (!reply.ok() || reply->id != id) {
      Done(RampPlan::Dns::kPending,
           absl::StrFormat("update (%s): %s", what,
                           reply.ok() ? "the answer is for another message"
                                      : std::string(reply.status().message())));
      return;
    }
    if (reply->tsig_error != 0 || reply->rcode == 9) {
      Done(RampPlan::Dns::kFailed,
           absl::StrFormat("the server refused TSIG key %s (%s%s): check the key file",
                           config_.key.name, DnsRcodeName(reply->rcode),
                           reply->tsig_error ? ", " + TsigErrorName(reply->tsig_error) : ""));
      return;
    }
    if (PrerequisiteFailed(reply->rcode)) {
      Done(RampPlan::Dns::kPending,
           absl::StrFormat("the records changed since they were read (%s): reading again",
                           DnsRcodeName(reply->rcode)));
      return;
    }
    if (reply->rcode == 5 || reply->rcode == 10 || reply->rcode == 4 || reply->rcode == 1) {
      Done(RampPlan::Dns::kFailed,
           absl::StrFormat("the server answered %s to the update of %s (does it take updates "
                           "of this zone with key %s?)",
                           DnsRcodeName(reply->rcode), config_.zone, config_.key.name));
      return;
    }
    if (reply->rcode != 0) {
      Done(RampPlan::Dns::kPending, absl::StrFormat("update (%s): the server answered %s", what,
                                                    DnsRcodeName(reply->rcode)));
      return;
    }
    if (!reply->signed_reply || !VerifyDnsReply(*wire, config_.key, request_mac_)) {
      Done(RampPlan::Dns::kFailed,
           absl::StrFormat("the server's answer to the update is not signed with key %s: not "
                           "trusted (read the zone to see whether %s is in it)",
                           config_.key.name, what));
      return;
    }
    Done(RampPlan::Dns::kApplied, absl::StrFormat("%s (out: %s)", what, OutList(target_)));
  });
}

void DnsControl::Exchange(std::string message, size_t server,
                          std::function<void(absl::StatusOr<std::string>)> done) {
  const uint64_t generation = generation_;
  std::string copy = message;
  exchange_ =
      StartDnsExchange(context_, config_.servers[server], std::move(message), config_.timeout,
                       [this, generation, server, copy = std::move(copy),
                        done = std::move(done)](absl::StatusOr<std::string> reply) mutable {
                         if (generation != generation_)
                           return;  // dropped (stopped, or no longer the leader)
                         exchange_ = nullptr;
                         if (!reply.ok() && absl::IsUnavailable(reply.status()) &&
                             server + 1 < config_.servers.size()) {
                           Exchange(std::move(copy), server + 1, std::move(done));
                           return;
                         }
                         done(std::move(reply));
                       });
}

void DnsControl::Done(RampPlan::Dns state, const std::string& message) {
  busy_ = false;
  last_change_ = absl::Now();
  if (state == RampPlan::Dns::kPending && ++attempts_ >= kMaxAttempts) {
    state = RampPlan::Dns::kFailed;
  }
  std::string text = message;
  if (state == RampPlan::Dns::kApplied) {
    applied_ = target_;
    failed_.reset();
    attempts_ = 0;
    state_ = "applied";
    LOG_INFO("dns: applied: %s", message);
  } else if (state == RampPlan::Dns::kFailed) {
    if (attempts_ >= kMaxAttempts) {
      text = absl::StrFormat("%s (gave up after %d attempts)", message, attempts_);
    }
    failed_ = target_;
    applied_.reset();
    state_ = "failed";
    LOG_WARN("dns: failed: %s", text);
  } else {
    absl::Duration backoff = first_backoff_;
    for (int i = 1; i < attempts_ && backoff < kMaxBackoff; ++i) backoff *= 2;
    backoff = std::min(backoff, kMaxBackoff);
    retry_at_ = absl::Now() + backoff;
    state_ = "retrying";
    text = absl::StrFormat("attempt %d: %s; again in %s", attempts_, message,
                           absl::FormatDuration(backoff));
    LOG_WARN("dns: %s", text);
  }
  last_message_ = text;
  Report(plan_, state, text);
}

void DnsControl::Report(uint64_t plan, RampPlan::Dns state, const std::string& message) {
  if (plan == 0 && state == RampPlan::Dns::kPending) return;
  if (const Controller* c = steering_->controller(); c && plan != 0) {
    const RampPlan* p = c->FindPlan(plan);
    if (p && p->dns == state && p->dns_message == message) return;  // already says so
  }
  steering_->DnsReport(plan, state, message, "dns", [plan](const absl::Status& s) {
    if (!s.ok()) LOG_WARN("dns: the outcome is not recorded on plan %d: %s", plan, s.message());
  });
}

}  // namespace sluice
