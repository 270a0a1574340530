// The server's part of the fleet (proxy/fleet/fleet.h): starting it with the hooks that tie it
// to steering, health, capacity, DNS and the shared ticket keys, and its status.
#include <nlohmann/json.hpp>

#include "proxy/server.h"
#include "steering/state_file.h"

namespace sluice {

nlohmann::json Server::FleetStatus() {
  if (!fleet_) return nlohmann::json{{"enabled", false}};
  nlohmann::json status = fleet_->Status();
  status["ticket_keys"] = tickets_->Status();
  return status;
}

void Server::FleetStatusWithNodes(std::function<void(nlohmann::json)> done) {
  if (!fleet_) {
    done(nlohmann::json{{"enabled", false}});
    return;
  }
  fleet_->StatusWithNodes([this, done = std::move(done)](nlohmann::json status) {
    status["ticket_keys"] = tickets_->Status();
    done(std::move(status));
  });
}

void Server::StartFleet() {
  const FleetConfig& fc = config_->fleet;
  if (!fc.enabled || !steering_->enabled()) return;
  std::string node =
      fc.node.empty()
          ? DefaultFleetNodeName(*config_, admin_server_ ? admin_server_->address().port() : 0)
          : fc.node;
  Fleet::Hooks hooks;
  hooks.on_state = [this](ControllerState state, int64_t revision) {
    steering_->AdoptFromFleet(std::move(state), revision);
  };
  hooks.on_leadership = [this](bool leader) { steering_->OnLeadership(leader); };
  hooks.view = [this] {
    NodeView view;
    region_health_->FillView(&view);
    view.capacity = Capacity();
    if (admin_server_) view.admin = admin_server_->address().ToString();
    const Controller* c = steering_->controller();
    view.version = c ? c->state().version : 0;
    return view;
  };
  if (tickets_->enabled()) {
    hooks.on_ticket_keys = [this](const FleetRecord& record, bool deleted) {
      tickets_->OnRecord(record, deleted);
    };
  }
  hooks.initial_state = [this] {
    const Controller* c = steering_->controller();
    return c ? EncodeControllerState(c->state()) : std::string();
  };
  fleet_ = std::make_unique<Fleet>(control_.get(), fc, node, std::move(hooks));
  steering_->SetFleet(fleet_.get());
  detection_->SetFleet(fleet_.get());
  capacity_->SetFleet(fleet_.get());
  dns_->SetFleet(fleet_.get());
  tickets_->SetFleet(fleet_.get());
  fleet_->Start();
}

}  // namespace sluice
