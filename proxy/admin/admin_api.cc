#include "proxy/admin/admin_api.h"

#include <openssl/crypto.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "common/sha256.h"
#include "common/strings.h"
#include "common/units.h"
#include "steering/serving.h"
#include "steering/signal_chart.h"
#include "steering/state_file.h"

namespace sluice {
namespace {

using nlohmann::json;

std::string Dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

AdminResponse Json(int status, const json& body) {
  AdminResponse r;
  r.status = status;
  r.body = Dump(body);
  return r;
}

AdminResponse Error(int status, std::string_view message) {
  return Json(status, json{{"error", message}, {"status", status}});
}

int HttpStatusOf(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

AdminResponse Error(const absl::Status& s) {
  return Error(HttpStatusOf(s), std::string(s.message()));
}

AdminResponse Text(int status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

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

absl::StatusOr<json> ParseObject(std::string_view body,
                                 std::initializer_list<std::string_view> allowed) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("the body is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("the body must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) return absl::InvalidArgumentError(absl::StrFormat("%s: unknown field", key));
  }
  return j;
}

absl::Status BoolField(const json& j, const char* key, bool* out, bool* present = nullptr) {
  auto it = j.find(key);
  if (present) *present = it != j.end();
  if (it == j.end()) return absl::OkStatus();
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: must be true or false", key));
  }
  *out = it->get<bool>();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> PlanId(std::string_view text) {
  uint64_t id = 0;
  if (!ParseInteger(text, &id) || id == 0) {
    return absl::NotFoundError(absl::StrFormat("no plan \"%s\"", text));
  }
  return id;
}

}  // namespace

absl::StatusOr<uint32_t> FractionFromJson(const json& j, const std::string& field) {
  uint32_t bp = 0;
  if (j.is_string()) {
    if (ParseBasisPoints(j.get<std::string>(), &bp)) return bp;
  } else if (j.is_number()) {
    double percent = j.get<double>();
    double scaled = percent * 100;
    if (percent >= 0 && percent <= 100 && std::fabs(scaled - std::round(scaled)) < 1e-6) {
      return static_cast<uint32_t>(std::lround(scaled));
    }
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "%s: must be a percentage 0..100 with at most two decimals (25, \"25%%\" or \"2500bp\")",
      field));
}

absl::StatusOr<RegionChange> ParseRegionChangeBody(std::string_view region, std::string_view body) {
  absl::StatusOr<json> j = ParseObject(
      body, {"fraction", "saviors", "healthy", "version", "force", "cohorts", "misrouted"});
  if (!j.ok()) return j.status();
  RegionChange change;
  change.region = std::string(region);
  if (auto it = j->find("fraction"); it != j->end()) {
    absl::StatusOr<uint32_t> bp = FractionFromJson(*it, "fraction");
    if (!bp.ok()) return bp.status();
    change.has_fraction = true;
    change.evacuated_bp = *bp;
  }
  if (auto it = j->find("saviors"); it != j->end()) {
    auto saviors = SaviorWeightsFromJson(*it, "saviors");
    if (!saviors.ok()) return saviors.status();
    change.has_saviors = true;
    change.saviors = *std::move(saviors);
  }
  if (absl::Status s = BoolField(*j, "healthy", &change.healthy, &change.has_healthy); !s.ok()) {
    return s;
  }
  if (auto it = j->find("version"); it != j->end()) {
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0) {
      return absl::InvalidArgumentError(
          "version: must be the table version the change was made against (a positive integer)");
    }
    change.expected_version = it->get<uint64_t>();
  }
  if (absl::Status s = BoolField(*j, "force", &change.force); !s.ok()) return s;
  if (auto it = j->find("cohorts"); it != j->end()) {
    auto rows = CohortRowsFromJson(*it, "cohorts");
    if (!rows.ok()) return rows.status();
    change.has_cohorts = true;
    change.cohort_saviors = *std::move(rows);
  }
  if (auto it = j->find("misrouted"); it != j->end()) {
    change.has_misrouted = true;
    MisroutedMode mode;
    if (it->is_string() && ParseMisroutedMode(it->get<std::string>(), &mode)) {
      change.misrouted = mode;
    } else if (!it->is_null()) {
      return absl::InvalidArgumentError(
          "misrouted: must be \"proxy_home\", \"serve_local\" or null (the configuration's)");
    }
  }
  if (!change.has_fraction && !change.has_saviors && !change.has_healthy && !change.has_cohorts &&
      !change.has_misrouted) {
    return absl::InvalidArgumentError(
        "the body changes nothing: give fraction, saviors, healthy, cohorts or misrouted");
  }
  return change;
}

absl::StatusOr<PlanRequest> ParsePlanBody(std::string_view body, EvacuationOptions* options) {
  absl::StatusOr<json> j = ParseObject(body, {"kind", "region", "saviors", "ramp", "hold", "force",
                                              "cohorts", "candidates", "hook", "dns"});
  if (!j.ok()) return j.status();
  PlanRequest plan;
  auto kind = j->find("kind");
  if (kind == j->end() || !kind->is_string() ||
      (kind->get<std::string>() != "evacuate" && kind->get<std::string>() != "restore")) {
    return absl::InvalidArgumentError("kind: must be \"evacuate\" or \"restore\"");
  }
  plan.kind =
      kind->get<std::string>() == "evacuate" ? RampPlan::Kind::kEvacuate : RampPlan::Kind::kRestore;
  auto region = j->find("region");
  if (region == j->end() || !region->is_string() || !ValidRegionName(region->get<std::string>())) {
    return absl::InvalidArgumentError("region: must be a region name");
  }
  plan.region = region->get<std::string>();
  if (auto it = j->find("saviors"); it != j->end()) {
    if (plan.kind == RampPlan::Kind::kRestore) {
      return absl::InvalidArgumentError("saviors: a restore has none");
    }
    if (it->is_string() && it->get<std::string>() == "auto") {
      if (!options) return absl::InvalidArgumentError("saviors: \"auto\" is not taken here");
      options->auto_split = true;
    } else {
      auto saviors = SaviorWeightsFromJson(*it, "saviors");
      if (!saviors.ok()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s (or \"auto\": by the saviors' capacity)", saviors.status().message()));
      }
      plan.saviors = *std::move(saviors);
    }
  }
  if (auto it = j->find("candidates"); it != j->end()) {
    if (!options || !options->auto_split) {
      return absl::InvalidArgumentError("candidates: only with \"saviors\": \"auto\"");
    }
    if (!it->is_array() || it->size() > kMaxRegions) {
      return absl::InvalidArgumentError("candidates: must be a list of region names");
    }
    for (const json& c : *it) {
      if (!c.is_string() || !ValidRegionName(c.get<std::string>())) {
        return absl::InvalidArgumentError("candidates: must be a list of region names");
      }
      options->candidates.push_back(c.get<std::string>());
    }
  }
  if (auto it = j->find("cohorts"); it != j->end()) {
    if (plan.kind == RampPlan::Kind::kRestore) {
      return absl::InvalidArgumentError("cohorts: a restore has none");
    }
    auto rows = CohortRowsFromJson(*it, "cohorts");
    if (!rows.ok()) return rows.status();
    plan.cohort_saviors = *std::move(rows);
  }
  if (auto it = j->find("hook"); it != j->end()) {
    if (!it->is_boolean()) return absl::InvalidArgumentError("hook: must be true or false");
    if (options) options->no_hook = !it->get<bool>();
  }
  if (auto it = j->find("dns"); it != j->end()) {
    if (!it->is_boolean()) return absl::InvalidArgumentError("dns: must be true or false");
    if (plan.kind == RampPlan::Kind::kRestore) {
      return absl::InvalidArgumentError("dns: a restore puts records that are out back by itself");
    }
    if (options) options->dns = it->get<bool>();
  }
  if (auto it = j->find("ramp"); it != j->end()) {
    if (!it->is_array() || it->empty() || it->size() > 100) {
      return absl::InvalidArgumentError("ramp: must be a list of 1..100 percentages");
    }
    for (size_t i = 0; i < it->size(); ++i) {
      absl::StatusOr<uint32_t> bp = FractionFromJson((*it)[i], absl::StrFormat("ramp[%d]", i));
      if (!bp.ok()) return bp.status();
      plan.steps_bp.push_back(*bp);
    }
  }
  if (auto it = j->find("hold"); it != j->end()) {
    absl::StatusOr<absl::Duration> hold = absl::InvalidArgumentError("");
    if (it->is_string()) hold = ParseDurationText(it->get<std::string>());
    if (it->is_number_unsigned()) hold = absl::Seconds(it->get<uint64_t>() % 100000);
    if (!hold.ok() || *hold < absl::ZeroDuration() || *hold > absl::Hours(24)) {
      return absl::InvalidArgumentError("hold: must be a duration 0s..24h (\"10s\", \"2m\")");
    }
    plan.hold = *hold;
  }
  if (absl::Status s = BoolField(*j, "force", &plan.force); !s.ok()) return s;
  return plan;
}

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
struct AdminApi::Call {
  const AdminRequest& request;
  std::vector<std::string_view> segments;
  const std::string& actor;  // the token's name, for the audit log
  Reply reply;
};

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

void AdminApi::GetFleet(const Call& call) { call.reply(Json(200, backend_->FleetStatus())); }

namespace {

// "from=1764000000&to=1764086400": Unix seconds; absent ones stay as they are.
absl::Status ParseTimeRange(std::string_view query, absl::Time* from, absl::Time* to) {
  for (absl::string_view pair :
       absl::StrSplit(absl::string_view(query.data(), query.size()), '&', absl::SkipEmpty())) {
    size_t eq = pair.find('=');
    std::string key(pair.substr(0, eq));
    absl::string_view value = eq == absl::string_view::npos ? "" : pair.substr(eq + 1);
    int64_t seconds = 0;
    if (key != "from" && key != "to") {
      return absl::InvalidArgumentError(absl::StrFormat("query: unknown parameter \"%s\"", key));
    }
    if (!absl::SimpleAtoi(value, &seconds) || seconds < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("query: %s must be a Unix time in seconds", key));
    }
    (key == "from" ? *from : *to) = absl::FromUnixSeconds(seconds);
  }
  return absl::OkStatus();
}

// "%2B" -> "+"; '+' stays itself (a time's offset). False on a broken escape.
bool DecodeQueryValue(std::string_view in, std::string* out) {
  out->clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out->push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = HexValue(in[i + 1]);
    const int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

constexpr size_t kMaxAuditLimit = 1000;

}  // namespace

absl::StatusOr<AuditQuery> ParseAuditQuery(std::string_view query) {
  AuditQuery out;
  for (absl::string_view pair :
       absl::StrSplit(absl::string_view(query.data(), query.size()), '&', absl::SkipEmpty())) {
    size_t eq = pair.find('=');
    std::string key(pair.substr(0, eq));
    std::string value;
    if (!DecodeQueryValue(eq == absl::string_view::npos
                              ? std::string_view()
                              : std::string_view(pair.data() + eq + 1, pair.size() - eq - 1),
                          &value)) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: a broken %%-escape", key));
    }
    if (key == "limit") {
      size_t limit = 0;
      if (!ParseInteger(value, &limit) || limit < 1 || limit > kMaxAuditLimit) {
        return absl::InvalidArgumentError(
            absl::StrFormat("limit: must be a number 1..%d, got \"%s\"", kMaxAuditLimit, value));
      }
      out.limit = limit;
    } else if (key == "since") {
      out.after_seq.reset();
      out.since.reset();
      uint64_t seq = 0;
      double seconds = 0;
      absl::Time t;
      std::string error;
      if (std::string_view(value).starts_with("seq:")) {
        if (!ParseInteger(std::string_view(value).substr(4), &seq)) {
          return absl::InvalidArgumentError(
              absl::StrFormat("since: seq:N needs a sequence number (seq:17), got \"%s\"", value));
        }
        out.after_seq = seq;
      } else if (ParseDouble(value, &seconds)) {
        if (seconds < 0 || seconds > 1e11) {
          return absl::InvalidArgumentError(
              absl::StrFormat("since: a Unix time must be 0..1e11 seconds, got \"%s\"", value));
        }
        out.since = absl::UnixEpoch() + absl::Seconds(seconds);
      } else if (absl::ParseTime(absl::RFC3339_full, value, &t, &error)) {
        out.since = t;
      } else {
        return absl::InvalidArgumentError(
            absl::StrFormat("since: must be seq:N, Unix seconds (1796234400.5) or an RFC 3339 time "
                            "(2026-12-02T18:00:00Z), got \"%s\"",
                            value));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrFormat("query: unknown parameter \"%s\" (since, limit)", key));
    }
  }
  return out;
}

std::string AuditPageJson(const AuditPage& page) {
  // Ordered: the browser console and people reading it see seq and time first.
  using ordered = nlohmann::ordered_json;
  ordered events = ordered::array();
  for (const AuditRecord& r : page.events) {
    events.push_back(ordered{
        {"seq", r.seq},
        {"time", absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", r.event.time, absl::UTCTimeZone())},
        {"actor", r.event.actor},
        {"action", r.event.action},
        {"version_before", r.event.version_before},
        {"version_after", r.event.version_after},
        {"warning", r.event.warning}});
  }
  ordered body{{"events", std::move(events)}, {"next", page.next}, {"dropped", page.dropped}};
  return body.dump(2, ' ', false, ordered::error_handler_t::replace) + "\n";
}

void AdminApi::GetAudit(const Call& call) {
  absl::StatusOr<AuditQuery> query = ParseAuditQuery(call.request.query);
  if (!query.ok()) return call.reply(Error(query.status()));
  SteeringControl* steering = backend_->steering();
  AdminResponse r;
  r.body = AuditPageJson(steering ? steering->audit_trail().Query(*query) : AuditPage{});
  call.reply(r);
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

void AdminApi::GetHistory(const Call& call) {
  DetectionControl* d = backend_->detection();
  if (!d) return call.reply(Error(404, "steering is not configured: there is no history"));
  absl::Time from = absl::InfinitePast(), to = absl::InfiniteFuture();
  if (absl::Status s = ParseTimeRange(call.request.query, &from, &to); !s.ok()) {
    return call.reply(Error(s));
  }
  AdminResponse r = Text(200, d->Export(from, to));
  r.content_type = "text/csv; charset=utf-8";
  call.reply(r);
}

void AdminApi::GetHistoryChart(const Call& call) {
  DetectionControl* d = backend_->detection();
  if (!d) return call.reply(Error(404, "steering is not configured: there is no history"));
  int64_t seconds = 3600;
  for (absl::string_view pair :
       absl::StrSplit(absl::string_view(call.request.query.data(), call.request.query.size()), '&',
                      absl::SkipEmpty())) {
    size_t eq = pair.find('=');
    std::string key(pair.substr(0, eq));
    absl::string_view value = eq == absl::string_view::npos ? "" : pair.substr(eq + 1);
    if (key != "window") {
      return call.reply(Error(400, absl::StrFormat("query: unknown parameter \"%s\"", key)));
    }
    if (!absl::SimpleAtoi(value, &seconds) || seconds < absl::ToInt64Seconds(kMinChartWindow) ||
        seconds > absl::ToInt64Seconds(kMaxChartWindow)) {
      return call.reply(Error(400, absl::StrFormat("query: window must be seconds, %d to %d",
                                                   absl::ToInt64Seconds(kMinChartWindow),
                                                   absl::ToInt64Seconds(kMaxChartWindow))));
    }
  }
  // Compact: a day's chart is a few thousand numbers, for a program, not a reader.
  AdminResponse r;
  r.body = d->Chart(absl::Seconds(seconds), absl::Now())
               .dump(-1, ' ', false, json::error_handler_t::replace);
  call.reply(std::move(r));
}

void AdminApi::PostHistory(const Call& call) {
  DetectionControl* d = backend_->detection();
  if (!d) return call.reply(Error(404, "steering is not configured: there is no history"));
  absl::StatusOr<size_t> rows = d->Import(call.request.body);
  if (!rows.ok()) return call.reply(Error(rows.status()));
  call.reply(Json(200, json{{"imported", *rows}}));
}

}  // namespace sluice
