// Whether a region's edge is dead (DESIGN.md, "a dead edge"): no client can reach its sluice,
// so no steering helps its members, only DNS. Pure: observations and time passed in.
//
// A region other than the watcher's own is dead when, continuously for `dead_after`:
//   - with a fleet: none of its nodes holds a live lease (their views expired) and the watcher
//     cannot reach its tunnel endpoints either (so a region that only lost etcd is not dead);
//   - without one: the watcher cannot reach its tunnel endpoints.
// and it was seen alive before (a region never seen is unknown, not dead). It is alive again
// as soon as a node of it is back or its endpoints answer.
#ifndef SLUICE_STEERING_EDGE_WATCH_H_
#define SLUICE_STEERING_EDGE_WATCH_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace sluice {

struct EdgeObservation {
  std::string region;
  bool fleet = false;       // the node counts come from a fleet
  uint32_t live_nodes = 0;  // with a fleet: its nodes with a live view
  bool reachable = true;    // the watcher's probe of its tunnel endpoints answers
  std::string detail;       // why not, when unreachable
};

struct EdgeEvent {
  std::string region;
  std::string from;  // "unknown", "alive", "suspect", "dead"
  std::string to;
  std::string reason;
};

class EdgeWatch {
 public:
  explicit EdgeWatch(absl::Duration dead_after = absl::Seconds(2)) : dead_after_(dead_after) {}
  void set_dead_after(absl::Duration d) { dead_after_ = d; }

  // One look at every region; `local` (the watcher's own region) is never judged.
  void Observe(absl::Time now, const std::string& local,
               const std::vector<EdgeObservation>& regions);
  std::vector<EdgeEvent> TakeEvents();

  bool dead(const std::string& region) const;
  struct Edge {
    std::string state = "unknown";
    absl::Time since = absl::InfinitePast();  // in this state since
    std::string detail;
  };
  const std::map<std::string, Edge>& edges() const { return edges_; }

 private:
  void Move(const std::string& region, Edge* edge, const std::string& to, absl::Time now,
            std::string reason);

  absl::Duration dead_after_;
  std::map<std::string, Edge> edges_;
  std::vector<EdgeEvent> events_;
};

}  // namespace sluice

#endif  // SLUICE_STEERING_EDGE_WATCH_H_
