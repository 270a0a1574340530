// The views in the FleetMachine (steering/fleet_machine.h): following every node's view (the
// leader and its standbys do; followers have the leader's sums), announcing a leadership once the
// views are in, dropping them on stepping down, and naming the standbys. Split from
// fleet_machine.cc, which keeps the link to etcd, the lease, the campaign and the records.
#include <algorithm>
#include <set>

#include "absl/strings/str_format.h"
#include "steering/fleet_machine.h"

namespace sluice {

void FleetMachine::FollowViews() {
  if (views_link_ != ViewsLink::kOff || !connected()) return;
  views_link_ = ViewsLink::kLoading;
  actions_->LoadViews();
}

void FleetMachine::StopViews() {
  if (views_link_ == ViewsLink::kOff) return;
  views_link_ = ViewsLink::kOff;
  actions_->CancelViews();
}

void FleetMachine::ViewsAnswered(absl::Time now, const absl::StatusOr<FleetViews>& answer) {
  if (views_link_ != ViewsLink::kLoading) return;
  if (!answer.ok()) {
    views_link_ = ViewsLink::kOff;
    Disconnected(answer.status(), now);
    return;
  }
  SawRevision(answer->revision, now);
  views_.clear();
  for (const FleetRecord& record : answer->records) {
    if (IsNodeKey(record.key)) Apply(record, now);
  }
  views_link_ = ViewsLink::kFollowing;
  actions_->WatchViews(answer->revision + 1);
  MaybeAnnounce(now);
}

void FleetMachine::MaybeAnnounce(absl::Time now) {
  // A lease too near its end when the views came in: announced once a keep-alive renewed it
  // (or the tick steps down if none does).
  if (!announce_pending_ || leading_revision_ == 0 || views_link_ != ViewsLink::kFollowing ||
      !LeaseAlive(now)) {
    return;
  }
  announce_pending_ = false;
  Log(FleetLogLevel::kInfo,
      absl::StrFormat("node %s has the views of %d nodes; it leads", node_, views_.size()));
  actions_->Leadership(true);
  // The others' figures come from its sums: they go out now, not a tick later.
  PublishRegions(now);
}

void FleetMachine::ViewsWatchEnded(const absl::Status& status) {
  if (views_link_ != ViewsLink::kFollowing) return;
  // Read them again at the next tick; the views it has age out meanwhile.
  views_link_ = ViewsLink::kOff;
  Log(FleetLogLevel::kWarning,
      absl::StrFormat("the watch of the nodes' views ended (%s); reading them again",
                      status.message()));
}

void FleetMachine::DropViews() {
  if (views_link_ == ViewsLink::kFollowing) {
    fleet_size_ = static_cast<uint32_t>(views_.size());
    candidates_ = static_cast<uint32_t>(candidates());
  }
  StopViews();
  views_.clear();
}

size_t FleetMachine::standby_rank() const {
  auto it = std::find(standbys_.begin(), standbys_.end(), node_);
  return it == standbys_.end() ? 0 : static_cast<size_t>(it - standbys_.begin()) + 1;
}

void FleetMachine::SetStandbys(std::vector<std::string> standbys) {
  if (standbys == standbys_) return;
  const bool was = standby_rank() > 0;
  standbys_ = std::move(standbys);
  const bool is = standby_rank() > 0;
  if (was != is) {
    Log(FleetLogLevel::kInfo,
        is ? absl::StrFormat("node %s is standby %d: it follows the views", node_, standby_rank())
           : absl::StrFormat("node %s is no longer a standby", node_));
  }
  if (WantsViews()) {
    FollowViews();
  } else if (leading_revision_ == 0) {
    DropViews();
  }
}

void FleetMachine::ChooseStandbys() {
  const std::string own = leader_ ? leader_->region : std::string();
  std::vector<std::string> chosen;
  std::set<std::string> regions;
  auto take = [&](const std::string& name, bool any_region) {
    if (chosen.size() >= standby_count_ || name == node_ ||
        std::find(chosen.begin(), chosen.end(), name) != chosen.end()) {
      return;
    }
    auto view = views_.find(name);
    // Gone with its lease, or it cannot lead (or is of a release that does not say).
    if (view == views_.end() || !view->second.can_lead.value_or(false)) return;
    const std::string& region = view->second.region;
    if (!any_region && (region == own || regions.count(region) > 0)) return;
    chosen.push_back(name);
    regions.insert(region);
  };
  // The standbys it named stay while they live (each new one reads every view once); new ones
  // from other regions first (one per region), so that losing its region leaves one.
  for (bool any_region : {false, true}) {
    for (const std::string& name : standbys_) take(name, any_region);
    for (const auto& [name, view] : views_) {
      if (chosen.size() >= standby_count_) break;
      take(name, any_region);
    }
  }
  standbys_ = std::move(chosen);
}

}  // namespace sluice
