// The last audit events of this process, in memory (GET /v1/audit): every event the steering
// control audits (proxy/control/steering_control.h) gets the next sequence number and goes into
// a ring of the newest kAuditRingSize; older ones fall out, and are counted so that a reader
// learns how many it missed. Works with or without controller.audit_log (the file keeps
// everything; this keeps what the API answers with).
//
// Control thread only (the steering control's Audit adds; the admin API reads): nothing here
// runs on a worker.
#ifndef SLUICE_PROXY_CONTROL_AUDIT_TRAIL_H_
#define SLUICE_PROXY_CONTROL_AUDIT_TRAIL_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "steering/controller.h"

namespace sluice {

inline constexpr size_t kAuditRingSize = 1000;

struct AuditRecord {
  uint64_t seq = 0;  // 1 for this process's first event, then one more per event
  ControllerEvent event;
};

// Which events a reader wants: those after a sequence number, or those at or after a time
// (neither: every one kept), and at most `limit` of them (the newest).
struct AuditQuery {
  std::optional<uint64_t> after_seq;
  std::optional<absl::Time> since;
  size_t limit = 200;
};

struct AuditPage {
  std::vector<AuditRecord> events;  // oldest first
  uint64_t next = 1;                // the seq to ask after next time (last event's + 1)
  uint64_t dropped = 0;             // events the query matches that are no longer kept
};

class AuditTrail {
 public:
  explicit AuditTrail(size_t capacity = kAuditRingSize);

  // Keeps `event` and returns its sequence number.
  uint64_t Add(const ControllerEvent& event);
  AuditPage Query(const AuditQuery& query) const;
  // The sequence number the next event will get.
  uint64_t next_seq() const { return next_seq_; }
  size_t size() const { return count_; }

 private:
  const AuditRecord& At(size_t i) const;  // i-th oldest kept
  // An event fell out of the ring: counted by the second of its time, so that a query by time
  // can tell how many of the dropped ones it would have matched.
  void CountDropped(const ControllerEvent& event);

  size_t capacity_;
  std::vector<AuditRecord> ring_;
  size_t start_ = 0;  // index of the oldest kept record in ring_
  size_t count_ = 0;
  uint64_t next_seq_ = 1;
  // Events that fell out, as (the latest time of a run, how many): oldest run first. Events
  // come in time order, so one run per second holds them all; when kMaxDroppedRuns is reached
  // the two oldest runs merge (a query by a time that old may then count a few more as
  // dropped than did match).
  std::vector<std::pair<absl::Time, uint64_t>> dropped_runs_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_AUDIT_TRAIL_H_
