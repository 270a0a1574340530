// What GET /v1/serving answers (DNS providers' health checks, DESIGN.md "Failing a region
// over", step 4): whether this node's local region takes its own traffic. A pure function of
// the steering table the node applies and of whether the process is draining; the traffic
// listener (proxy/forward/forwarder.cc) asks it with its worker's table, the admin API
// (proxy/admin/admin_api.cc) with the table the control thread publishes.
//
//   draining                        503 "draining" (SIGTERM: this node leaves whatever the table)
//   local region evacuated at 100%  503 "evacuated" (its members are all served elsewhere)
//   otherwise                       200 "serving"  (also without steering: no local region)
//
// A partly evacuated region still serves the rest of its members, so it stays in DNS.
#ifndef SLUICE_STEERING_SERVING_H_
#define SLUICE_STEERING_SERVING_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "steering/steering_table.h"

namespace sluice {

enum class ServingReason : uint8_t { kServing, kEvacuated, kDraining };

struct ServingState {
  ServingReason reason = ServingReason::kServing;
  std::string_view region;    // the local region's name (the table's); empty without steering
  uint32_t evacuated_bp = 0;  // the local region's fraction
  bool serving() const { return reason == ServingReason::kServing; }
  int status() const { return serving() ? 200 : 503; }
};

// `table`: the one the node applies; null when steering is off. The result points into it.
ServingState DecideServing(const SteeringTable* table, bool draining);

// "serving", "evacuated", "draining".
const char* ServingReasonName(ServingReason reason);

// The response body, one line of JSON: {"serving": false, "region": "us-east-1", "evacuated":
// "100%", "reason": "evacuated"}; region and evacuated are null without steering.
std::string ServingJson(const ServingState& state);

}  // namespace sluice

#endif  // SLUICE_STEERING_SERVING_H_
