// The admin API: what each admin request means, independent of sockets (proxy/admin/admin_server.h
// carries the bytes). Runs on the control thread.
//
//   GET    /healthz, /readyz, /metrics                      no token
//   GET    /ui/ (the console's page, script and style: proxy/admin/console.h)  no token
//   GET    /v1/whoami (the token's name and whether it may change things)  read or admin token
//   GET    /v1/serving (steering/serving.h: 200 or 503)     no token (DNS health checks)
//   GET    /v1/steering, /v1/plans, /v1/plans/{id}, /v1/health, /v1/fleet   read or admin token
//   PUT    /v1/steering/regions/{region}                    admin token
//   POST   /v1/plans                                        admin token
//   DELETE /v1/plans/{id}                                   admin token
//   POST   /v1/plans:preview (a plan's body: what it would do)  read or admin token
//   POST   /v1/clusters/{cluster}/standby:inject|uninject    admin token (this node)
//   POST   /v1/regions/{region}/standbys/{cluster}:inject|uninject  admin token (every node
//          of the region, through the steering state; cluster "*": every cluster)
//   GET    /v1/detection, /v1/history[?from=UNIX&to=UNIX]   read or admin token
//   GET    /v1/history/chart[?window=SECONDS] (the console's lines: steering/signal_chart.h)
//          read or admin token
//   GET    /v1/audit[?since=seq:N|UNIX|RFC3339][&limit=N]   read or admin token (this process's
//          newest audit events, proxy/control/audit_trail.h; limit 1..1000, default 200)
//   PUT    /v1/detection {"mode": "off|alert|auto"}         admin token
//   POST   /v1/history (CSV, steering/signal_history.h)     admin token
//
// Tokens are bearer tokens compared by SHA-256 in constant time. Answers are JSON; errors are
// {"error": "...", "status": N} with 400 (a bad body, naming the field), 401 (no valid token),
// 403 (a read token that tries to change something), 404, 405, 409 (an active plan is in the
// way, or a stale table version), 500 (the state cannot be saved: nothing changed), 503 (the
// fleet's store is unreachable: nothing changed).
#ifndef SLUICE_PROXY_ADMIN_ADMIN_API_H_
#define SLUICE_PROXY_ADMIN_ADMIN_API_H_

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <optional>

#include <nlohmann/json_fwd.hpp>
#include "absl/status/statusor.h"
#include "proxy/admin/console.h"
#include "proxy/config/config.h"
#include "proxy/control/capacity_control.h"
#include "proxy/control/detection_control.h"
#include "proxy/control/dns_control.h"
#include "proxy/control/steering_control.h"
#include "steering/controller.h"

namespace sluice {

struct AdminRequest {
  std::string method;
  std::string path;   // without the query
  std::string query;  // after the '?', "" without one
  std::string authorization;
  std::string host;           // the Host field
  std::string if_none_match;  // the If-None-Match field (the console's files)
  SocketAddress client;       // who asks
  std::string body;
};

struct AdminResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// What the API needs from the process.
class AdminBackend {
 public:
  virtual std::string RenderMetrics() = 0;
  // Ready for traffic: configuration loaded and not draining; otherwise why not.
  virtual bool Ready(std::string* why) const = 0;
  // SIGTERM (or an upgrade's hand-over): the process drains and leaves.
  virtual bool Draining() const = 0;
  // This node's view of the regions (GET /v1/health).
  virtual nlohmann::json Health() = 0;
  virtual SteeringControl* steering() = 0;
  virtual absl::Status InjectStandby(const std::string& cluster, const std::string& actor) = 0;
  virtual absl::Status UninjectStandby(const std::string& cluster, const std::string& actor) = 0;
  // Savior capacity (previews, evacuations by capacity); null when steering is not configured.
  virtual CapacityControl* capacity() = 0;
  // The fleet's state without its nodes (GET /v1/steering's summary); {"enabled": false}
  // without one.
  virtual nlohmann::json FleetStatus() = 0;
  // GET /v1/fleet: FleetStatus with every node of the fleet (which a node that does not lead
  // reads from the store first). `done` may run before this returns or later, on the loop.
  virtual void FleetStatusWithNodes(std::function<void(nlohmann::json)> done) {
    done(FleetStatus());
  }
  // The sick-region detector; null when steering is not configured.
  virtual DetectionControl* detection() = 0;
  // The DNS step's runtime; null when steering is not configured.
  virtual DnsControl* dns() = 0;

 protected:
  virtual ~AdminBackend() = default;
};

class AdminApi {
 public:
  explicit AdminApi(AdminBackend* backend) : backend_(backend) {}
  void SetTokens(std::vector<AdminToken> tokens) { tokens_ = std::move(tokens); }
  // Tokens, and who may read /metrics (admin.hosts, admin.metrics_from).
  void Configure(const AdminConfig& config);
  // What the head alone decides, before any body is read: a refusal (no or a wrong token, a
  // read-only token that asks to change something, no such endpoint, a Host or a client
  // /metrics does not answer), or nullopt: read the body and Handle the request.
  std::optional<AdminResponse> Screen(const AdminRequest& head);
  using Reply = std::function<void(AdminResponse)>;
  // Answers through `reply`: at once, or once the fleet's store has taken a change. `reply`
  // runs exactly once.
  void Handle(const AdminRequest& request, Reply reply);

 private:
  struct Call;
  struct Route;
  static const std::vector<Route>& Routes();

  // The token's entry, or null.
  const AdminToken* Authenticate(std::string_view authorization) const;
  AdminResponse Steering();
  AdminResponse Plans();

  // One handler per route (the table in admin_api.cc).
  void GetSteering(const Call& call);
  void PutRegion(const Call& call);
  void GetPlans(const Call& call);
  void PostPlan(const Call& call);
  void GetPlan(const Call& call);
  void DeletePlan(const Call& call);
  void OnePlan(const Call& call, bool abort);
  void PostStandbyInject(const Call& call);
  void PostStandbyUninject(const Call& call);
  void PostRegionStandbys(const Call& call);
  void PostPlanPreview(const Call& call);
  void GetHealth(const Call& call);
  void GetFleet(const Call& call);
  void GetDetection(const Call& call);
  void GetDns(const Call& call);
  void PutDetection(const Call& call);
  void GetHistory(const Call& call);
  void GetWhoami(const Call& call);
  void GetHistoryChart(const Call& call);
  void GetAudit(const Call& call);
  void PostHistory(const Call& call);

  // A failed authentication, logged at most once per kAuthLogEvery with how many were not.
  void LogAuthFailure(const AdminRequest& request, const char* why);

  AdminBackend* backend_;
  Console console_;
  std::vector<AdminToken> tokens_;
  std::vector<std::string> hosts_;
  CidrSet metrics_from_;
  absl::Time last_auth_log_ = absl::InfinitePast();
  uint64_t unlogged_auth_failures_ = 0;
};

// The bodies of PUT /v1/steering/regions/{region} and POST /v1/plans. Messages name the field.
absl::StatusOr<RegionChange> ParseRegionChangeBody(std::string_view region, std::string_view body);
// `options`: where "saviors": "auto", "candidates" and "hook": false go (null: refused).
absl::StatusOr<PlanRequest> ParsePlanBody(std::string_view body,
                                          EvacuationOptions* options = nullptr);

// The query of GET /v1/audit: "since=seq:17" (events after seq 17), "since=1796234400.5" (Unix
// seconds) or "since=2026-12-02T18:00:00Z" (RFC 3339; events at or after it), "limit=N"
// (1..1000, default 200). Values may be percent-encoded. Messages name the field.
absl::StatusOr<AuditQuery> ParseAuditQuery(std::string_view query);
// The answer of GET /v1/audit: {"events": [{"seq", "time", "actor", "action", "version_before",
// "version_after", "warning"}, ...], "next": N, "dropped": N}, keys in that order, times in UTC
// to the millisecond.
std::string AuditPageJson(const AuditPage& page);

// "25%", "0.5%", "2500bp", or a JSON number of percent (25, 0.5).
absl::StatusOr<uint32_t> FractionFromJson(const nlohmann::json& j, const std::string& field);

}  // namespace sluice

#endif  // SLUICE_PROXY_ADMIN_ADMIN_API_H_
