// The admin API (proxy/admin/admin_api.h): the route table, the screening of a request's head
// (tokens, Hosts, /metrics clients), the open paths and the steering, plan, standby, health,
// fleet, detection and DNS handlers. The request bodies are parsed in admin_bodies.cc, the
// history and audit handlers are in admin_history.cc.
#include "proxy/admin/admin_api.h"

#include <openssl/crypto.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "common/units.h"
#include "proxy/admin/admin_api_internal.h"
#include "steering/serving.h"
#include "steering/state_file.h"

namespace sluice {

using admin_internal::Error;
using admin_internal::Json;
using admin_internal::json;
using admin_internal::Text;

namespace {

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return out;
}

absl::StatusOr<uint64_t> PlanId(std::string_view text) {
  uint64_t id = 0;
  if (!ParseInteger(text, &id) || id == 0) {
    return absl::NotFoundError(absl::StrFormat("no plan \"%s\"", text));
  }
  return id;
}

}  // namespace

const AdminToken* AdminApi::Authenticate(std::string_view authorization) const {
  if (authorization.size() <= 7 || !StartsWithIgnoreCase(authorization, "bearer ")) return nullptr;
  std::string_view token = StripWhitespace(authorization.substr(7));
  if (token.empty()) return nullptr;
  Sha256Digest digest = Sha256(token);
  const AdminToken* found = nullptr;
  // Every token is compared, so the time taken does not say which one came close.
  for (const AdminToken& candidate : tokens_) {
    if (DigestsEqual(candidate.sha256, digest)) found = &candidate;
  }
  return found;
}

AdminResponse AdminApi::Steering() {
  SteeringControl* steering = backend_->steering();
  const Controller* c = steering->controller();
  if (!c) return Json(200, json{{"enabled", false}});
  json regions = json::object();
  for (const RegionSpec& region : c->spec().regions) {
    json r = RegionSpecToJson(region);
    r["fraction"] = FormatBasisPoints(region.evacuated_bp);
    const RampPlan* plan = c->ActivePlanFor(region.name);
    r["active_plan"] = plan ? json(plan->id) : json(nullptr);
    regions[region.name] = r;
  }
  json order = json::array();
  for (const RegionSpec& region : c->spec().regions) order.push_back(region.name);
  json fleet = backend_->FleetStatus();
  json fleet_summary = json{{"enabled", false}};
  if (fleet.value("enabled", false)) {
    fleet_summary = json{{"enabled", true},
                         {"connected", fleet["connected"]},
                         {"leader", fleet["leader"]},
                         {"revision", fleet["revision"]}};
  }
  if (!steering->fleet_error().empty()) fleet_summary["error"] = steering->fleet_error();
  return Json(200, json{{"enabled", true},
                        {"fleet", fleet_summary},
                        {"local_region", c->spec().local_region},
                        {"version", c->state().version},
                        {"misrouted", MisroutedModeName(c->table()->misrouted())},
                        {"region_order", order},
                        {"regions", regions}});
}

AdminResponse AdminApi::Plans() {
  const Controller* c = backend_->steering()->controller();
  json plans = json::array();
  if (c) {
    for (const RampPlan& plan : c->state().plans) plans.push_back(RampPlanToJson(plan));
  }
  return Json(200, json{{"version", c ? c->state().version : 0}, {"plans", plans}});
}

// The API under /v1, one handler per path and method ("*" matches one segment). A path that
// matches with another method answers 405 with the methods it has.
struct AdminApi::Route {
  std::vector<std::string_view> path;
  std::string_view method;  // GET routes answer HEAD too
  void (AdminApi::*handle)(const Call& call);
};

const std::vector<AdminApi::Route>& AdminApi::Routes() {
  static const std::vector<Route> kRoutes = {
      {{"v1", "steering"}, "GET", &AdminApi::GetSteering},
      {{"v1", "steering", "regions", "*"}, "PUT", &AdminApi::PutRegion},
      {{"v1", "plans"}, "GET", &AdminApi::GetPlans},
      {{"v1", "plans"}, "POST", &AdminApi::PostPlan},
      {{"v1", "plans:preview"}, "POST", &AdminApi::PostPlanPreview},
      {{"v1", "plans", "*"}, "GET", &AdminApi::GetPlan},
      {{"v1", "plans", "*"}, "DELETE", &AdminApi::DeletePlan},
      {{"v1", "clusters", "*", "standby:inject"}, "POST", &AdminApi::PostStandbyInject},
      {{"v1", "clusters", "*", "standby:uninject"}, "POST", &AdminApi::PostStandbyUninject},
      {{"v1", "regions", "*", "standbys", "*"}, "POST", &AdminApi::PostRegionStandbys},
      {{"v1", "health"}, "GET", &AdminApi::GetHealth},
      {{"v1", "fleet"}, "GET", &AdminApi::GetFleet},
      {{"v1", "detection"}, "GET", &AdminApi::GetDetection},
      {{"v1", "detection"}, "PUT", &AdminApi::PutDetection},
      {{"v1", "dns"}, "GET", &AdminApi::GetDns},
      {{"v1", "history"}, "GET", &AdminApi::GetHistory},
      {{"v1", "history"}, "POST", &AdminApi::PostHistory},
      {{"v1", "whoami"}, "GET", &AdminApi::GetWhoami},
      {{"v1", "history", "chart"}, "GET", &AdminApi::GetHistoryChart},
      {{"v1", "audit"}, "GET", &AdminApi::GetAudit},
  };
  return kRoutes;
}

void AdminApi::Configure(const AdminConfig& config) {
  tokens_ = config.tokens;
  hosts_ = config.hosts;
  metrics_from_ = config.metrics_from;
}

namespace {

// Refused authentications are logged at most this often (each line counts the ones between).
constexpr absl::Duration kAuthLogEvery = absl::Seconds(10);

bool IsOpenPath(std::string_view path) {
  return path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/v1/serving";
}

// An IP address (v4, or v6 in brackets) or localhost, with or without a port; or a listed name.
bool HostAllowed(std::string_view host, const std::vector<std::string>& names) {
  if (host.empty()) return false;
  if (host.front() == '[') {  // an IPv6 literal, and nothing else may be in brackets
    size_t close = host.find(']');
    return close != std::string_view::npos &&
           SocketAddress::Parse(std::string(host.substr(0, close + 1)) + ":0").ok();
  }
  std::string_view name = host.substr(0, host.rfind(':'));
  if (EqualsIgnoreCase(name, "localhost")) return true;
  if (absl::StatusOr<SocketAddress> a = SocketAddress::Parse(std::string(name) + ":0"); a.ok()) {
    return true;
  }
  for (const std::string& n : names) {
    if (EqualsIgnoreCase(name, n)) return true;
  }
  return false;
}

}  // namespace

void AdminApi::LogAuthFailure(const AdminRequest& request, const char* why) {
  const absl::Time now = absl::Now();
  if (now - last_auth_log_ < kAuthLogEvery) {
    ++unlogged_auth_failures_;
    return;
  }
  LOG_WARN("admin: %s %s from %s refused: %s%s", request.method, request.path,
           request.client.ToString(), why,
           unlogged_auth_failures_ == 0
               ? ""
               : absl::StrFormat(" (and %d more refusals not logged)", unlogged_auth_failures_));
  last_auth_log_ = now;
  unlogged_auth_failures_ = 0;
}

std::optional<AdminResponse> AdminApi::Screen(const AdminRequest& request) {
  const std::string& method = request.method;
  const std::string& path = request.path;
  if (IsOpenPath(path)) {
    if (method != "GET" && method != "HEAD") {
      AdminResponse r = Error(405, "only GET");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
    if (path == "/metrics") {
      if (!metrics_from_.empty() && !metrics_from_.Contains(request.client)) {
        return Error(403, "this client may not read /metrics (admin.metrics_from)");
      }
      if (!HostAllowed(request.host, hosts_)) {
        return Error(421,
                     "/metrics answers a Host that is an address, localhost, or listed in "
                     "admin.hosts");
      }
    }
    return std::nullopt;
  }
  if (Console::Owns(path)) {
    // The page holds nothing secret (it asks the API with the token typed into it), but only
    // a Host the API answers gets it: another site's name resolving here gets nothing.
    if (method != "GET" && method != "HEAD") {
      AdminResponse r = Error(405, "only GET");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
    if (!HostAllowed(request.host, hosts_)) {
      return Error(421,
                   "the console answers a Host that is an address, localhost, or listed in "
                   "admin.hosts");
    }
    return std::nullopt;
  }
  std::vector<std::string_view> seg = Segments(path);
  if (seg.empty() || seg[0] != "v1") return Error(404, "no such endpoint");
  const AdminToken* token = Authenticate(request.authorization);
  if (!token) {
    LogAuthFailure(request, request.authorization.empty() ? "no token" : "unknown token");
    AdminResponse r = Error(401, "a valid bearer token is required");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"sluice-admin\"");
    return r;
  }
  const bool reading = method == "GET" || method == "HEAD";
  if (!reading && !token->admin) {
    LogAuthFailure(request, "a read-only token");
    return Error(403, absl::StrFormat("token \"%s\" may only read", token->name));
  }
  return std::nullopt;
}

void AdminApi::Handle(const AdminRequest& request, Reply reply) {
  if (std::optional<AdminResponse> refused = Screen(request)) return reply(*refused);
  const std::string& method = request.method;
  const std::string& path = request.path;
  // Open to load balancers and Prometheus.
  if (IsOpenPath(path)) {
    if (path == "/healthz") return reply(Text(200, "ok\n"));
    if (path == "/v1/serving") {
      // The table the workers apply (the fleet's, with one) and the process's own drain.
      SteeringControl* steering = backend_->steering();
      SteeringTablePtr table = steering ? steering->table() : nullptr;
      const ServingState state = DecideServing(table.get(), backend_->Draining());
      AdminResponse r;
      r.status = state.status();
      r.body = ServingJson(state);
      return reply(r);
    }
    if (path == "/readyz") {
      std::string why;
      return reply(backend_->Ready(&why) ? Text(200, "ready\n")
                                         : Text(503, "not ready: " + why + "\n"));
    }
    AdminResponse r = Text(200, backend_->RenderMetrics());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return reply(r);
  }
  if (Console::Owns(path)) {
    ConsoleAnswer a = console_.Serve(path, request.if_none_match);
    AdminResponse r;
    r.status = a.status;
    r.content_type = std::move(a.content_type);
    r.body = std::string(a.body);
    r.headers = std::move(a.headers);
    return reply(std::move(r));
  }
  std::vector<std::string_view> seg = Segments(path);
  const AdminToken* token = Authenticate(request.authorization);
  std::string allow;  // the methods of the routes whose path matches
  for (const Route& route : Routes()) {
    if (route.path.size() != seg.size()) continue;
    bool match = true;
    for (size_t i = 0; i < seg.size() && match; ++i) {
      match = route.path[i] == "*" || route.path[i] == seg[i];
    }
    if (!match) continue;
    if (route.method == method || (route.method == "GET" && method == "HEAD")) {
      return (this->*route.handle)(Call{request, std::move(seg), token->name, std::move(reply)});
    }
    allow += (allow.empty() ? "" : ", ") + std::string(route.method);
  }
  if (allow.empty()) return reply(Error(404, "no such endpoint"));
  AdminResponse r = Error(405, absl::StrFormat("allowed: %s", allow));
  r.headers.emplace_back("Allow", allow);
  reply(r);
}

void AdminApi::GetSteering(const Call& call) { call.reply(Steering()); }

void AdminApi::GetWhoami(const Call& call) {
  const AdminToken* token = Authenticate(call.request.authorization);
  call.reply(Json(200, json{{"token", token->name}, {"admin", token->admin}}));
}

void AdminApi::PutRegion(const Call& call) {
  absl::StatusOr<RegionChange> change = ParseRegionChangeBody(call.segments[3], call.request.body);
  if (!change.ok()) return call.reply(Error(change.status()));
  backend_->steering()->SetRegion(
      *change, call.actor,
      [this, reply = call.reply](const absl::Status& s) { reply(s.ok() ? Steering() : Error(s)); });
}

void AdminApi::GetPlans(const Call& call) { call.reply(Plans()); }

void AdminApi::PostPlan(const Call& call) {
  EvacuationOptions options;
  absl::StatusOr<PlanRequest> plan = ParsePlanBody(call.request.body, &options);
  if (!plan.ok()) return call.reply(Error(plan.status()));
  SteeringControl* steering = backend_->steering();
  CapacityControl* capacity = backend_->capacity();
  if (!capacity && options.auto_split) {
    return call.reply(Error(400, "saviors: \"auto\" needs the capacity view (steering)"));
  }
  auto answer = [steering, reply = call.reply](const absl::StatusOr<uint64_t>& id) {
    if (!id.ok()) return reply(Error(id.status()));
    const RampPlan* started = steering->controller()->FindPlan(*id);
    AdminResponse r = Json(201, json{{"plan", started ? RampPlanToJson(*started) : json(nullptr)},
                                     {"version", steering->controller()->state().version}});
    r.headers.emplace_back("Location", absl::StrFormat("/v1/plans/%d", *id));
    reply(r);
  };
  if (!capacity) return steering->StartPlan(*plan, call.actor, std::move(answer));
  capacity->StartPlan(*plan, options, call.actor, std::move(answer));
}

// GET and DELETE /v1/plans/{id}: the plan id, and the answer once `change` (if any) is done.
void AdminApi::OnePlan(const Call& call, bool abort) {
  absl::StatusOr<uint64_t> id = PlanId(call.segments[2]);
  if (!id.ok()) return call.reply(Error(id.status()));
  SteeringControl* steering = backend_->steering();
  if (!steering->controller()) return call.reply(Error(404, "steering is not configured"));
  auto answer = [steering, id = *id, reply = call.reply](const absl::Status& s) {
    if (!s.ok()) return reply(Error(s));
    const RampPlan* plan = steering->controller()->FindPlan(id);
    if (!plan) return reply(Error(404, absl::StrFormat("no plan %d", id)));
    reply(Json(200, json{{"plan", RampPlanToJson(*plan)},
                         {"version", steering->controller()->state().version}}));
  };
  if (abort) return steering->AbortPlan(*id, call.actor, answer);
  answer(absl::OkStatus());
}

void AdminApi::GetPlan(const Call& call) { OnePlan(call, /*abort=*/false); }

void AdminApi::DeletePlan(const Call& call) { OnePlan(call, /*abort=*/true); }

void AdminApi::PostPlanPreview(const Call& call) {
  EvacuationOptions options;
  absl::StatusOr<PlanRequest> plan = ParsePlanBody(call.request.body, &options);
  if (!plan.ok()) return call.reply(Error(plan.status()));
  CapacityControl* capacity = backend_->capacity();
  if (!capacity) return call.reply(Error(404, "steering is not configured"));
  absl::StatusOr<json> preview = capacity->Preview(*plan, options);
  if (!preview.ok()) return call.reply(Error(preview.status()));
  call.reply(Json(200, *preview));
}

void AdminApi::PostStandbyUninject(const Call& call) {
  std::string cluster(call.segments[2]);
  if (absl::Status s = backend_->UninjectStandby(cluster, call.actor); !s.ok()) {
    return call.reply(Error(s));
  }
  call.reply(Json(200, json{{"cluster", cluster}, {"standby", "out"}}));
}

void AdminApi::PostRegionStandbys(const Call& call) {
  // /v1/regions/{region}/standbys/{cluster}:inject|uninject
  std::string_view last = call.segments[4];
  bool inject = last.ends_with(":inject");
  if (!inject && !last.ends_with(":uninject")) {
    return call.reply(Error(404, "no such endpoint: CLUSTER:inject or CLUSTER:uninject"));
  }
  std::string cluster(last.substr(0, last.rfind(':')));
  std::string region(call.segments[2]);
  SteeringControl* steering = backend_->steering();
  steering->SetStandbys(
      region, cluster, inject, call.actor,
      [this, reply = call.reply](const absl::Status& s) { reply(s.ok() ? Steering() : Error(s)); });
}

void AdminApi::PostStandbyInject(const Call& call) {
  std::string cluster(call.segments[2]);
  if (absl::Status s = backend_->InjectStandby(cluster, call.actor); !s.ok()) {
    return call.reply(Error(s));
  }
  call.reply(Json(200, json{{"cluster", cluster}, {"standby", "injected"}}));
}

void AdminApi::GetHealth(const Call& call) { call.reply(Json(200, backend_->Health())); }

void AdminApi::GetFleet(const Call& call) {
  backend_->FleetStatusWithNodes([reply = call.reply](json status) { reply(Json(200, status)); });
}

void AdminApi::GetDetection(const Call& call) {
  DetectionControl* d = backend_->detection();
  if (!d) return call.reply(Error(404, "steering is not configured: there is no detector"));
  call.reply(Json(200, d->Status()));
}

void AdminApi::GetDns(const Call& call) {
  DnsControl* d = backend_->dns();
  call.reply(Json(200, d ? d->StatusJson() : json{{"enabled", false}}));
}

void AdminApi::PutDetection(const Call& call) {
  DetectionControl* d = backend_->detection();
  if (!d) return call.reply(Error(404, "steering is not configured: there is no detector"));
  json body = json::parse(call.request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return call.reply(Error(400, "body: expected a JSON object such as {\"mode\": \"alert\"}"));
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "mode") return call.reply(Error(400, absl::StrFormat("%s: unknown field", key)));
  }
  auto mode = body.find("mode");
  if (mode == body.end() || !mode->is_string()) {
    return call.reply(Error(400, "mode: required, one of off, alert, auto"));
  }
  DetectionMode parsed;
  if (!ParseDetectionMode(mode->get<std::string>(), &parsed)) {
    return call.reply(Error(400, absl::StrFormat("mode: expected off, alert or auto, got \"%s\"",
                                                 mode->get<std::string>())));
  }
  backend_->steering()->SetDetectionMode(mode->get<std::string>(), call.actor,
                                         [d, reply = call.reply](const absl::Status& s) {
                                           reply(s.ok() ? Json(200, d->Status()) : Error(s));
                                         });
}

}  // namespace sluice
