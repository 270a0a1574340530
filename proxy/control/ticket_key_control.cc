#include "proxy/control/ticket_key_control.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "proxy/fleet/fleet.h"
#include "proxy/tls/server_tls.h"

namespace sluice {

void TicketKeyControl::Configure(const Config& config) {
  listeners_.clear();
  for (const ListenerConfig& listener : config.listeners) {
    if (listener.tls && listener.tls->session_tickets && listener.tls->ticket_key_files.empty()) {
      listeners_.emplace_back(listener.name, listener.tls->ticket_key_rotation);
    }
  }
  if (configured_) {
    // The fleet section changes with a restart only: the shares stay as they are.
    if (!installed_.empty()) Install(installed_);  // a listener new with this configuration
    return;
  }
  configured_ = true;
  config_ = config.fleet.enabled ? config.fleet.ticket_keys : FleetConfig::TicketKeys{};
  if (!config_.enabled) return;
  prefix_ = config.fleet.prefix;
  publish_interval_ = config.fleet.publish_interval;
  own_key_ = ShareKey(config.steering.spec.local_region);
  if (config_.fleet_wide) {
    shares_[own_key_];
  } else {
    for (const RegionSpec& region : config.steering.spec.regions) shares_[ShareKey(region.name)];
  }
}

std::string TicketKeyControl::ShareKey(const std::string& region) const {
  return config_.fleet_wide ? prefix_ + "tickets" : prefix_ + "tickets/" + region;
}

void TicketKeyControl::SetFleet(Fleet* fleet) {
  fleet_ = fleet;
  if (!fleet_ || !config_.enabled) return;
  uint64_t ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(publish_interval_));
  timer_.Start(context_->loop(), ms, ms, [this] { Tick(); });
}

void TicketKeyControl::Stop() {
  timer_.Close();
  fleet_ = nullptr;
}

void TicketKeyControl::OnRecord(const FleetRecord& record, bool deleted) {
  if (!config_.enabled) return;
  auto it = shares_.find(record.key);
  if (it == shares_.end()) return;  // another share's, or an older configuration's
  Share& share = it->second;
  const uint64_t seen = share.seen + 1;  // a write's answer older than this changes nothing
  if (deleted) {
    // The nodes keep what they installed; the leader makes new keys at its next tick.
    share = Share{};
    share.seen = seen;
    LOG_INFO("ticket keys: %s was deleted; the leader makes new ones", record.key);
    return;
  }
  absl::StatusOr<std::vector<TicketKey>> keys =
      OpenTicketKeys(record.value, config_.seal, record.key);
  if (!keys.ok()) {
    if (share.readable || share.mod_revision != record.mod_revision) {
      LOG_WARN(
          "ticket keys: %s at etcd revision %d is ignored: %s. This node keeps the keys it "
          "has; delete the key in etcd to have the leader make new ones",
          record.key, record.mod_revision, keys.status().message());
      ++rejected_;
    }
    share.seen = seen;
    share.readable = false;
    share.error = std::string(keys.status().message());
    share.mod_revision = record.mod_revision;
    return;
  }
  share.seen = seen;
  share.keys = *keys;
  share.mod_revision = record.mod_revision;
  share.readable = true;
  share.error.clear();
  if (record.key == own_key_ && *keys != installed_) Install(*keys);
}

void TicketKeyControl::Install(const std::vector<TicketKey>& keys) {
  absl::Time now = absl::Now();
  for (const auto& [name, rotation] : listeners_) {
    // Still a listener of its own keys or of the fleet's (a reload may have given it files).
    std::shared_ptr<TicketKeyRing> ring = TicketKeyRing::ForListener(name, rotation);
    if (ring->source() == TicketKeyRing::Source::kFiles) continue;
    ring->Install(keys, TicketKeyRing::Source::kFleet, now, config_.rotation);
  }
  if (keys != installed_) {
    ++installs_;
    installed_at_ = now;
    const TicketKey* current = EncryptingTicketKey(keys, now);
    LOG_INFO("ticket keys: installed %d from the fleet in %d listener(s); %s encrypts", keys.size(),
             listeners_.size(), current ? TicketKeyId(*current) : "none yet");
  }
  installed_ = keys;
}

void TicketKeyControl::Tick() {
  if (!fleet_ || !fleet_->leader()) return;
  ++leader_checks_;
  absl::Time now = absl::Now();
  for (auto& [key, share] : shares_) {
    if (share.writing || !share.readable || share.mod_revision < 0) continue;
    std::vector<TicketKey> keys = share.keys;
    if (!AdvanceTicketKeys(&keys, now, config_.rotation, RandomTicketKey)) continue;
    absl::StatusOr<std::string> sealed = SealTicketKeys(keys, config_.seal, key);
    if (!sealed.ok()) {
      LOG_ERROR("ticket keys: cannot seal %s: %s", key, sealed.status().message());
      continue;
    }
    share.writing = true;
    const uint64_t seen = share.seen;
    fleet_->PutAsLeader(key, *sealed, share.mod_revision,
                        [this, key = key, keys, seen](const absl::Status& status) {
                          auto it = shares_.find(key);
                          if (it == shares_.end()) return;  // reconfigured meanwhile
                          Share& written = it->second;
                          written.writing = false;
                          // The watch may have brought the write back before its answer came
                          // (another connection): then the share is up to date already.
                          if (status.ok() && written.seen == seen) {
                            written.keys = keys;
                            written.mod_revision = -1;  // until the watch brings it back
                          } else if (!status.ok() && !absl::IsAborted(status)) {
                            LOG_WARN("ticket keys: cannot write %s: %s", key, status.message());
                          }
                        });
  }
}

nlohmann::json TicketKeyControl::Status() const {
  if (!config_.enabled) return nlohmann::json{{"enabled", false}};
  absl::Time now = absl::Now();
  const TicketKey* current = EncryptingTicketKey(installed_, now);
  nlohmann::json doc = {
      {"enabled", true},
      {"share", config_.fleet_wide ? "fleet" : "region"},
      {"key", own_key_},
      {"rotation_s", absl::ToInt64Seconds(config_.rotation)},
      {"listeners", listeners_.size()},
      {"keys", installed_.size()},
      {"encrypting", current ? TicketKeyId(*current) : ""},
      {"installs", installs_},
      {"rejected", rejected_},
      {"leader_checks", leader_checks_},
  };
  if (installed_at_ != absl::InfinitePast()) {
    doc["installed"] = absl::FormatTime(absl::RFC3339_sec, installed_at_, absl::UTCTimeZone());
  }
  if (auto it = shares_.find(own_key_); it != shares_.end() && !it->second.error.empty()) {
    doc["error"] = it->second.error;
  }
  return doc;
}

}  // namespace sluice
