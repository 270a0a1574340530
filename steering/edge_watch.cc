#include "steering/edge_watch.h"

#include <utility>

#include "absl/strings/str_format.h"

namespace sluice {

void EdgeWatch::Move(const std::string& region, Edge* edge, const std::string& to, absl::Time now,
                     std::string reason) {
  if (edge->state == to) return;
  events_.push_back({region, edge->state, to, reason});
  edge->state = to;
  edge->since = now;
  edge->detail = std::move(reason);
}

void EdgeWatch::Observe(absl::Time now, const std::string& local,
                        const std::vector<EdgeObservation>& regions) {
  for (const EdgeObservation& o : regions) {
    if (o.region == local) continue;
    Edge& edge = edges_[o.region];
    const bool gone = (!o.fleet || o.live_nodes == 0) && !o.reachable;
    if (!gone) {
      Move(o.region, &edge, "alive", now,
           o.fleet ? absl::StrFormat("%d live node(s), tunnel endpoints answer", o.live_nodes)
                   : "its tunnel endpoints answer");
      continue;
    }
    if (edge.state == "unknown" || edge.state == "dead") continue;  // never seen, or known
    const std::string why =
        o.fleet ? absl::StrFormat(
                      "no live node in the fleet and its tunnel endpoints do not "
                      "answer (%s)",
                      o.detail)
                : absl::StrFormat("its tunnel endpoints do not answer (%s)", o.detail);
    if (edge.state == "alive") Move(o.region, &edge, "suspect", now, why);
    if (now - edge.since >= dead_after_) {
      Move(o.region, &edge, "dead", now,
           absl::StrFormat("%s for %s", why, absl::FormatDuration(now - edge.since)));
    }
  }
}

std::vector<EdgeEvent> EdgeWatch::TakeEvents() { return std::exchange(events_, {}); }

bool EdgeWatch::dead(const std::string& region) const {
  auto it = edges_.find(region);
  return it != edges_.end() && it->second.state == "dead";
}

}  // namespace sluice
