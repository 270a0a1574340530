// Session ticket keys shared by the fleet (fleet.ticket_keys), so a client resumes its TLS
// session on any node of its region, or (share: fleet) on a savior region's edge after an
// evacuation moved it there, instead of paying a full handshake in the reconnect storm.
//
// The leader keeps each share's keys under {prefix}tickets/{region} (share: region, one per
// region of the steering table) or {prefix}tickets (share: fleet): it brings them forward on
// schedule (proxy/tls/ticket_keys.h: the next key is made a rotation before it encrypts) and
// puts them sealed under the seal key, comparing the key's revision and its own leadership.
// Every node opens what the watch brings for its share and installs the keys in the ticket ring
// of each TLS listener that has no ticket_key_files; until the first keys arrive (or while etcd
// is away) the listeners keep their own.
//
// A document that does not open or parse is ignored with a warning: every node keeps the keys
// it has, and the leader does not overwrite it (a leader with a wrong seal key must not take
// the fleet's keys away); delete the key in etcd to have the leader make new ones.
//
// Control thread only.
#ifndef SLUICE_PROXY_CONTROL_TICKET_KEY_CONTROL_H_
#define SLUICE_PROXY_CONTROL_TICKET_KEY_CONTROL_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include "absl/time/time.h"
#include "proxy/config/config.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/loop_timer.h"
#include "proxy/tls/ticket_keys.h"
#include "steering/fleet_machine.h"

namespace sluice {

class Fleet;

class TicketKeyControl {
 public:
  explicit TicketKeyControl(LoopContext* context) : context_(context) {}
  TicketKeyControl(const TicketKeyControl&) = delete;
  TicketKeyControl& operator=(const TicketKeyControl&) = delete;

  // The listeners to install in, the shares, the seal key. Again at every reload, for the
  // listeners only (a listener that is new gets the keys at once): a change of the fleet
  // section takes effect after a restart.
  void Configure(const Config& config);
  // Starts the leader's schedule (every publish interval) once the fleet exists.
  void SetFleet(Fleet* fleet);
  // The fleet's hook: a key under {prefix}tickets.
  void OnRecord(const FleetRecord& record, bool deleted);
  void Stop();

  bool enabled() const { return config_.enabled; }
  // GET /v1/fleet's "ticket_keys": the share, the key that encrypts (its id, never its bytes),
  // how many decrypt, when they were installed, what went wrong.
  nlohmann::json Status() const;

 private:
  struct Share {
    std::vector<TicketKey> keys;  // as last opened (or written)
    int64_t mod_revision = 0;     // in the store; 0: no such key; -1: written, awaiting the echo
    bool readable = true;         // false: the store's document does not open; left alone
    std::string error;
    bool writing = false;
    uint64_t seen = 0;  // records of the key seen (watch or resync), deletions included
  };

  // The leader: each share brought forward and written when it changed.
  void Tick();
  void Install(const std::vector<TicketKey>& keys);
  std::string ShareKey(const std::string& region) const;

  LoopContext* context_;
  bool configured_ = false;
  Fleet* fleet_ = nullptr;
  LoopTimer timer_;
  FleetConfig::TicketKeys config_;
  std::string prefix_;
  absl::Duration publish_interval_ = absl::Seconds(1);
  std::string own_key_;  // the share this node installs
  // Each listener's ring name and its ticket_key_rotation.
  std::vector<std::pair<std::string, absl::Duration>> listeners_;
  std::map<std::string, Share> shares_;  // by etcd key: what the leader writes
  absl::Time installed_at_ = absl::InfinitePast();
  std::vector<TicketKey> installed_;
  uint64_t installs_ = 0;
  uint64_t rejected_ = 0;       // documents that did not open or parse
  uint64_t leader_checks_ = 0;  // schedule checks as the leader
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_TICKET_KEY_CONTROL_H_
