#include "ctl/sluicectl.h"

#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/strings.h"
#include "common/units.h"
#include "ctl/admin_client.h"
#include "ctl/audit_table.h"
#include "ctl/health_table.h"

namespace sluice {
namespace {

using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "usage: sluicectl [--admin URL]... [--admins FILE] [--token T | --token-file F] [--json]\n"
    "                 [--timeout 5s] COMMAND\n"
    "\n"
    "commands:\n"
    "  status                                       table, plans, gates and fleet of every "
    "endpoint\n"
    "  evacuate REGION --to A=70,B=30|auto[:A,B] [--cohort C=A[:W][+B[:W]],...]\n"
    "           [--ramp 1,5,10,25,50,100] [--hold 10s] [--no-hook] [--dns|--no-dns] [--force]\n"
    "           [--dry-run]                         --dns: end with the DNS step (default with "
    "dns:)\n"
    "                                               --to auto: weights by the saviors' capacity;\n"
    "                                               --dry-run: the predicted load per savior\n"
    "  abort PLAN                                   stop a ramp where it stands\n"
    "  restore REGION [--ramp 50,10,0] [--hold 10s] [--force]   ramp back to 0\n"
    "  set REGION [--fraction 25] [--to A=70,B=30] [--healthy yes|no] [--version N] [--force]\n"
    "             [--cohort C=A[:W],...|none] [--misrouted proxy_home|serve_local|default]\n"
    "  inject|uninject CLUSTER [--region R]         hot standbys take traffic (or leave it): on\n"
    "                                               this node, or on every node of R (\"*\": all)\n"
    "  watch [--interval 1s] [--count N] [--until-done]   the ramps as they go\n"
    "  ready                                        exit 0 when every endpoint serves (/readyz;\n"
    "                                               no token needed: health checks, probes)\n"
    "  detection [mode off|alert|auto]              the sick-region detector: verdicts, or set\n"
    "                                               its mode (kept with the steering state)\n"
    "  health                                       per region: stream starts now and expected,\n"
    "                                               errors, sheds, p99, capacity, verdict\n"
    "  history [--since T] [--limit N] [--follow]   the audit trail (who changed what); T:\n"
    "                                               seq:N, Unix seconds, RFC 3339 or 10m (ago);\n"
    "                                               --follow: new events until Ctrl-C\n"
    "  history import FILE                          load history (CSV) into every endpoint\n"
    "  history export FILE [--from UNIX] [--to UNIX]   the first endpoint's history (- : stdout)\n"
    "\n"
    "  --admin URL     an admin endpoint, http:// or https:// (repeatable; default\n"
    "                  http://127.0.0.1:9901)\n"
    "  --admins FILE   lines of \"NAME URL\": one endpoint per region\n"
    "  --token T       the bearer token (or --token-file F, or SLUICE_ADMIN_TOKEN)\n"
    "  --cacert FILE   https: the CA bundle (PEM) the admin certificate must chain to (or\n"
    "                  SLUICE_ADMIN_CACERT; default: the system's)\n"
    "  --json          machine-readable output\n";

struct Options {
  std::vector<AdminEndpoint> endpoints;
  std::string token;
  bool json = false;
  absl::Duration timeout = absl::Seconds(5);
  std::string command;
  std::vector<std::string> args;             // positional arguments after the command
  std::map<std::string, std::string> flags;  // command flags: --to, --ramp, ...
};

struct UsageError {
  std::string message;
};

// Set by SIGINT and SIGTERM while `history --follow` runs: it stops between two polls.
volatile std::sig_atomic_t follow_interrupted = 0;

void OnFollowSignal(int) { follow_interrupted = 1; }

std::string Trim(std::string s) { return std::string(StripWhitespace(s)); }

// "A=70,B=30" -> {"A": 70, "B": 30}.
bool ParseWeights(const std::string& text, json* out, std::string* error) {
  *out = json::object();
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t eq = item.find('=');
    int weight = 0;
    if (eq == std::string::npos || eq == 0 || !ParseInteger(item.substr(eq + 1), &weight)) {
      *error = absl::StrFormat("--to: \"%s\" is not REGION=WEIGHT", item);
      return false;
    }
    (*out)[item.substr(0, eq)] = weight;
  }
  if (out->empty()) {
    *error = "--to: needs REGION=WEIGHT[,REGION=WEIGHT...]";
    return false;
  }
  return true;
}

// "1,5,25" -> ["1%", "5%", "25%"] (the API checks the values).
json ParseRamp(const std::string& text) {
  json steps = json::array();
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    item = Trim(item);
    if (!item.empty() && item.back() != '%' && !item.ends_with("bp")) item += "%";
    steps.push_back(item);
  }
  return steps;
}

std::string FractionText(const json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  if (!text.empty() && text.back() != '%' && !text.ends_with("bp")) text += "%";
  return text;
}

std::string Weights(const json& weights) {
  if (!weights.is_object() || weights.empty()) return "-";
  std::vector<std::string> parts;
  for (const auto& [name, w] : weights.items()) parts.push_back(name + "=" + w.dump());
  return absl::StrJoin(parts, ",");
}

// A region's measured health as this node sees it (GET /v1/health): "origins down", "unreachable",
// or its error rate and p99; "?" when the node did not say.
std::string Measured(bool ok, const json& health, const std::string& region,
                     const std::string& local) {
  if (!ok || !health.is_object()) return "?";
  json view;
  if (region == local) {
    view = health.value("local", json::object());
  } else {
    json peers = health.value("peers", json::object());
    if (!peers.is_object() || !peers.contains(region)) return "?";
    view = peers[region];
    if (!view.is_object()) return "?";
    auto reachable = view.find("reachable");
    if (reachable != view.end() && reachable->is_boolean() && !reachable->get<bool>()) {
      return "unreachable";
    }
  }
  if (!view.is_object()) return "?";
  auto down = view.find("origins_down");
  if (down != view.end() && down->is_boolean() && down->get<bool>()) return "origins down";
  auto rate = view.find("error_rate");
  auto p99 = view.find("p99_ms");
  if (rate == view.end() || !rate->is_number() || p99 == view.end() || !p99->is_number()) {
    return "?";
  }
  return absl::StrFormat("err %.1f%% p99 %.0fms", rate->get<double>() * 100, p99->get<double>());
}

std::string Percent(const json& bp) {
  if (!bp.is_number()) return "?";
  double p = bp.get<double>() / 100;
  return absl::StrFormat("%g%%", p);
}

class Ctl {
 public:
  Ctl(Options options, std::ostream& out, std::ostream& err)
      : o_(std::move(options)), out_(out), err_(err) {}

  int Run() {
    const std::string& c = o_.command;
    if (c == "status") return Status();
    if (c == "watch") return Watch();
    if (c == "evacuate") return Evacuate();
    if (c == "restore") return Restore();
    if (c == "abort") return Abort();
    if (c == "set") return Set();
    if (c == "inject") return Inject(true);
    if (c == "uninject") return Inject(false);
    if (c == "ready") return Ready();
    if (c == "detection") return Detection();
    if (c == "history") return o_.args.empty() ? AuditHistory() : History();
    if (c == "health") return Health();
    throw UsageError{absl::StrFormat("unknown command \"%s\"", c)};
  }

 private:
  struct Reply {
    bool ok = false;
    int status = 0;
    json body;
    std::string error;
  };

  Reply Call(const AdminEndpoint& e, const char* method, const std::string& path,
             const json& body = nullptr) {
    Reply r;
    std::string text = body.is_null() ? std::string() : body.dump();
    absl::StatusOr<HttpReply> reply = AdminRequest(e, method, path, o_.token, text, o_.timeout);
    if (!reply.ok()) {
      r.error = std::string(reply.status().message());
      return r;
    }
    r.status = reply->status;
    r.body = json::parse(reply->body, nullptr, false);
    if (r.body.is_discarded()) r.body = json{{"error", Trim(reply->body)}};
    r.ok = reply->status >= 200 && reply->status < 300;
    if (!r.ok) {
      std::string message = r.body.contains("error") && r.body["error"].is_string()
                                ? r.body["error"].get<std::string>()
                                : reply->body;
      r.error = absl::StrFormat("%d %s", reply->status, message);
    }
    return r;
  }

  // Runs one change on every endpoint and reports each.
  // The node name of `e` when it belongs to a fleet, and the names of every node of it.
  bool FleetOf(const AdminEndpoint& e, std::string* node, std::set<std::string>* members) {
    Reply r = Call(e, "GET", "/v1/fleet");
    if (!r.ok || !r.body.is_object() || !r.body.value("enabled", false)) return false;
    *node = r.body.value("node", "");
    for (const json& n : r.body.value("nodes", json::array())) members->insert(n.value("node", ""));
    members->insert(*node);
    return true;
  }

  // `fleet_wide`: a change of the steering state, which a fleet shares (standby injection is
  // per node).
  int Change(const char* method, const std::string& path, const json& body,
             const std::function<std::string(const json&)>& describe, bool fleet_wide = true) {
    int code = kExitOk;
    json results = json::array();
    // Nodes of one fleet share the table: a change made through one of them is not made again
    // through the others (it would be refused, or made twice).
    std::set<std::string> changed_fleet;
    std::string changed_through;
    for (const AdminEndpoint& e : o_.endpoints) {
      std::string node;
      std::set<std::string> members;
      bool in_fleet = fleet_wide && o_.endpoints.size() > 1 && FleetOf(e, &node, &members);
      if (in_fleet && changed_fleet.count(node)) {
        if (o_.json) {
          results.push_back(
              json{{"endpoint", e.name}, {"ok", true}, {"same_fleet_as", changed_through}});
        } else {
          out_ << e.name << ": same fleet as " << changed_through << ", changed there\n";
        }
        continue;
      }
      Reply r = Call(e, method, path, body);
      if (!r.ok) code = kExitFailed;
      if (r.ok && in_fleet) {
        changed_fleet = members;
        changed_through = e.name;
      }
      if (o_.json) {
        results.push_back(json{{"endpoint", e.name},
                               {"ok", r.ok},
                               {"status", r.status},
                               {"reply", r.body.is_discarded() ? json(nullptr) : r.body},
                               {"error", r.error}});
      } else if (r.ok) {
        out_ << e.name << ": " << describe(r.body) << "\n";
      } else {
        err_ << e.name << ": " << r.error << "\n";
      }
    }
    if (o_.json) out_ << json{{"results", results}}.dump(2) << "\n";
    return code;
  }

  std::string Flag(const std::string& name, const std::string& fallback = "") const {
    auto it = o_.flags.find(name);
    return it == o_.flags.end() ? fallback : it->second;
  }
  bool Has(const std::string& name) const { return o_.flags.count(name) > 0; }
  const std::string& Arg(const char* what) const {
    if (o_.args.size() != 1) throw UsageError{absl::StrFormat("%s needs %s", o_.command, what)};
    return o_.args[0];
  }
  void Allow(std::initializer_list<const char*> allowed) const {
    for (const auto& [name, value] : o_.flags) {
      bool ok = false;
      for (const char* a : allowed) ok = ok || name == a;
      if (!ok) throw UsageError{absl::StrFormat("%s does not take --%s", o_.command, name)};
    }
  }

  static std::string DescribePlan(const json& reply) {
    const json& p = reply.value("plan", json::object());
    std::vector<std::string> steps;
    for (const json& s : p.value("steps_bp", json::array())) steps.push_back(Percent(s));
    return absl::StrFormat(
        "plan %s started: %s %s%s, ramp %s, hold %gs (table version %s)",
        p.value("id", json(0)).dump(), p.value("kind", ""), p.value("region", ""),
        p.value("kind", "") == "evacuate" ? " to " + Weights(p.value("saviors", json::object()))
                                          : std::string(),
        absl::StrJoin(steps, ","), p.value("hold_ms", 0) / 1000.0,
        reply.value("version", json(0)).dump());
  }

  // "south-america=us-west-2,emea=eu-west-1:70+us-west-2:30" -> cohort rows.
  static json ParseCohorts(const std::string& text) {
    json rows = json::object();
    if (text == "none") return rows;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
      size_t eq = item.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
        throw UsageError{absl::StrFormat("--cohort: \"%s\" is not COHORT=REGION[:WEIGHT]", item)};
      }
      json row = json::object();
      std::stringstream savior_list(item.substr(eq + 1));
      std::string savior;
      while (std::getline(savior_list, savior, '+')) {
        size_t colon = savior.find(':');
        uint64_t weight = 1;
        if (colon != std::string::npos &&
            (!ParseInteger(savior.substr(colon + 1), &weight) || weight > 100)) {
          throw UsageError{absl::StrFormat("--cohort: weight in \"%s\" must be 0..100", savior)};
        }
        row[savior.substr(0, colon)] = weight;
      }
      rows[item.substr(0, eq)] = row;
    }
    if (rows.empty()) throw UsageError{"--cohort: needs COHORT=REGION[:WEIGHT][,...] or none"};
    return rows;
  }

  static std::string Rps(const json& v) {
    return v.is_number() ? absl::StrFormat("%.0f", v.get<double>()) : std::string("?");
  }
  static std::string Util(const json& v) {
    return v.is_number() ? absl::StrFormat("%.0f%%", v.get<double>() * 100)
                         : std::string("unknown");
  }

  // POST /v1/plans:preview, as a table.
  static void RenderPreview(const json& p, std::ostream& out) {
    out << absl::StrFormat("evacuating %s (%s rps expected) to %s%s\n", p.value("region", ""),
                           Rps(p.value("region_rps", json())),
                           Weights(p.value("saviors_weights", json::object())),
                           p.value("auto_split", false) ? " (by capacity)" : "");
    out << "  step      members   moves rps\n";
    for (const json& s : p.value("steps", json::array())) {
      out << absl::StrFormat("  %-8s  %6.1f%%   %9s\n", s.value("step", ""),
                             s.value("members_share", 0.0) * 100,
                             Rps(s.value("requests_per_second", json())));
    }
    out << "  savior          capacity   load now  share  extra at each step          predicted"
           "  util  standbys\n";
    for (const json& s : p.value("saviors", json::array())) {
      std::vector<std::string> extra;
      for (const json& e : s.value("extra_rps", json::array())) extra.push_back(Rps(e));
      out << absl::StrFormat(
          "  %-14s  %8s  %9s  %4.0f%%  %-26s  %9s  %4s  %d%s\n", s.value("region", ""),
          Rps(s.value("capacity_rps", json())), Rps(s.value("load_rps", json())),
          s.value("share", 0.0) * 100, absl::StrJoin(extra, ","),
          Rps(s.value("predicted_rps", json())), Util(s.value("predicted_utilization", json())),
          s.value("standbys_to_inject", 0),
          s.contains("unusable") ? "  (" + s.value("unusable", std::string()) + ")"
                                 : std::string());
    }
    out << absl::StrFormat("  busiest: %s at %s%s\n", p.value("busiest", "-"),
                           Util(p.value("max_utilization", json())),
                           p.value("would_refuse", false)
                               ? "; refused unless forced: " + p.value("refusal", std::string())
                               : std::string());
    if (p.contains("second_evacuation")) {
      out << "  refused unless forced: " << p.value("second_evacuation", std::string())
          << " (one region at a time)\n";
    }
    if (p.value("hook", false)) out << "  the scale hook runs before the ramp\n";
  }

  int Evacuate() {
    Allow({"to", "ramp", "hold", "force", "cohort", "no-hook", "dry-run", "dns", "no-dns"});
    json body{{"kind", "evacuate"}, {"region", Arg("a REGION")}};
    if (!Has("to")) throw UsageError{"evacuate needs --to REGION=WEIGHT[,...] or --to auto"};
    std::string to = Flag("to");
    if (to == "auto" || to.starts_with("auto:")) {
      body["saviors"] = "auto";
      if (to.size() > 5) {
        json candidates = json::array();
        std::stringstream in(to.substr(5));
        std::string region;
        while (std::getline(in, region, ',')) candidates.push_back(region);
        body["candidates"] = candidates;
      }
    } else {
      std::string error;
      json saviors;
      if (!ParseWeights(to, &saviors, &error)) throw UsageError{error};
      body["saviors"] = saviors;
    }
    if (Has("cohort")) body["cohorts"] = ParseCohorts(Flag("cohort"));
    if (Has("ramp")) body["ramp"] = ParseRamp(Flag("ramp"));
    if (Has("hold")) body["hold"] = Flag("hold");
    if (Has("force")) body["force"] = true;
    if (Has("no-hook")) body["hook"] = false;
    if (Has("dns") && Has("no-dns")) throw UsageError{"--dns and --no-dns: one or the other"};
    if (Has("dns")) body["dns"] = true;
    if (Has("no-dns")) body["dns"] = false;
    if (Has("dry-run")) {
      // One prediction: every node of a fleet sees the same; the first endpoint answers.
      Reply r = Call(o_.endpoints.front(), "POST", "/v1/plans:preview", body);
      if (o_.json) {
        out_ << (r.ok ? r.body : json{{"error", r.error}}).dump(2) << "\n";
      } else if (r.ok) {
        RenderPreview(r.body, out_);
      } else {
        err_ << o_.endpoints.front().name << ": " << r.error << "\n";
      }
      return r.ok ? kExitOk : kExitFailed;
    }
    return Change("POST", "/v1/plans", body, DescribePlan);
  }

  int Restore() {
    Allow({"ramp", "hold", "force"});
    json body{{"kind", "restore"}, {"region", Arg("a REGION")}};
    if (Has("ramp")) body["ramp"] = ParseRamp(Flag("ramp"));
    if (Has("hold")) body["hold"] = Flag("hold");
    if (Has("force")) body["force"] = true;
    return Change("POST", "/v1/plans", body, DescribePlan);
  }

  int Abort() {
    Allow({});
    const std::string& plan = Arg("a PLAN id");
    return Change("DELETE", "/v1/plans/" + plan, nullptr, [](const json& reply) {
      const json& p = reply.value("plan", json::object());
      return absl::StrFormat("plan %s %s", p.value("id", json(0)).dump(), p.value("state", ""));
    });
  }

  int Set() {
    Allow({"fraction", "to", "healthy", "version", "force", "cohort", "misrouted"});
    const std::string& region = Arg("a REGION");
    json body = json::object();
    if (Has("fraction")) body["fraction"] = FractionText(Flag("fraction"));
    if (Has("to")) {
      std::string error;
      json saviors;
      if (!ParseWeights(Flag("to"), &saviors, &error)) throw UsageError{error};
      body["saviors"] = saviors;
    }
    if (Has("healthy")) {
      std::string h = Flag("healthy");
      if (h != "yes" && h != "no" && h != "true" && h != "false") {
        throw UsageError{"--healthy: yes or no"};
      }
      body["healthy"] = h == "yes" || h == "true";
    }
    if (Has("version")) {
      uint64_t version = 0;
      if (!ParseInteger(Flag("version"), &version)) throw UsageError{"--version: a number"};
      body["version"] = version;
    }
    if (Has("cohort")) body["cohorts"] = ParseCohorts(Flag("cohort"));
    if (Has("misrouted")) {
      std::string m = Flag("misrouted");
      if (m != "proxy_home" && m != "serve_local" && m != "default") {
        throw UsageError{"--misrouted: proxy_home, serve_local or default"};
      }
      body["misrouted"] = m == "default" ? json(nullptr) : json(m);
    }
    if (Has("force")) body["force"] = true;
    if (body.empty() || (body.size() == 1 && body.contains("force"))) {
      throw UsageError{"set needs --fraction, --to, --healthy, --cohort or --misrouted"};
    }
    return Change("PUT", "/v1/steering/regions/" + region, body, [&](const json& reply) {
      const json& r = reply["regions"].value(region, json::object());
      return absl::StrFormat("%s evacuated %s to %s (table version %s)", region,
                             r.value("fraction", "?"), Weights(r.value("saviors", json())),
                             reply.value("version", json(0)).dump());
    });
  }

  int Inject(bool inject) {
    Allow({"region"});
    const std::string& cluster = Arg("a CLUSTER");
    const char* verb = inject ? "inject" : "uninject";
    if (Has("region")) {
      // The steering state: every node of the region, through the fleet.
      const std::string region = Flag("region");
      return Change("POST", absl::StrFormat("/v1/regions/%s/standbys/%s:%s", region, cluster, verb),
                    json::object(), [&](const json& reply) {
                      return absl::StrFormat(
                          "standbys of %s %s on every node of %s (table version %s)",
                          cluster == "*" ? "every cluster" : cluster,
                          inject ? "injected" : "taken out", region,
                          reply.value("version", json(0)).dump());
                    });
    }
    return Change(
        "POST", "/v1/clusters/" + cluster + "/standby:" + verb, nullptr,
        [&](const json&) {
          return "standby endpoints of " + cluster + (inject ? " injected" : " taken out") +
                 " on this node";
        },
        /*fleet_wide=*/false);
  }

  // GET /readyz on every endpoint: 0 when each answers 200 (starting and draining say 503).
  int Ready() {
    Allow({});
    int code = kExitOk;
    for (const AdminEndpoint& e : o_.endpoints) {
      absl::StatusOr<HttpReply> reply = AdminRequest(e, "GET", "/readyz", "", "", o_.timeout);
      std::string what = !reply.ok() ? std::string(reply.status().message())
                                     : absl::StrFormat("%d %s", reply->status, Trim(reply->body));
      if (!reply.ok() || reply->status != 200) code = kExitFailed;
      if (o_.json) {
        out_ << json{{"endpoint", e.name},
                     {"ready", reply.ok() && reply->status == 200},
                     {"answer", what}}
                    .dump()
             << "\n";
      } else if (!reply.ok()) {
        out_ << what << "\n";  // names the endpoint already
      } else {
        out_ << e.name << ": " << what << "\n";
      }
    }
    return code;
  }

  // GET /v1/steering and /v1/plans from one endpoint.
  struct View {
    Reply steering;
    Reply plans;
    Reply fleet;      // fetched only when the node is in a fleet
    Reply health;     // the node's measured view of the regions (GET /v1/health)
    Reply detection;  // the detector's verdicts (GET /v1/detection)
  };
  View Fetch(const AdminEndpoint& e, bool with_fleet = false) {
    View v;
    v.steering = Call(e, "GET", "/v1/steering");
    if (v.steering.ok) v.plans = Call(e, "GET", "/v1/plans");
    if (v.steering.ok) v.health = Call(e, "GET", "/v1/health");
    if (v.steering.ok) v.detection = Call(e, "GET", "/v1/detection");
    if (with_fleet && v.steering.ok &&
        v.steering.body.value("fleet", json::object()).value("enabled", false)) {
      v.fleet = Call(e, "GET", "/v1/fleet");
    }
    return v;
  }

  // The fleet as one node sees it: the store, the leader, and every node's last seen version.
  static void RenderFleet(const Reply& reply, std::ostream& out) {
    if (!reply.ok) {
      out << "  fleet: " << reply.error << "\n";
      return;
    }
    const json& f = reply.body;
    const json& leader = f.value("leader", json());
    std::string leader_text = "none";
    if (leader.is_object()) {
      leader_text = absl::StrFormat("%s (%s, admin %s)", leader.value("node", ""),
                                    leader.value("region", ""), leader.value("admin", ""));
    }
    const json& since = f.value("seconds_since_sync", json());
    std::string sync = since.is_number() ? absl::StrFormat("%.1fs ago", since.get<double>())
                                         : std::string("never");
    if (f.value("connected", false)) {
      out << absl::StrFormat("  fleet: node %s, etcd %s revision %s, leader %s\n",
                             f.value("node", ""), f.value("etcd", ""),
                             f.value("revision", json(0)).dump(), leader_text);
    } else {
      out << absl::StrFormat(
          "  fleet: node %s NOT CONNECTED to etcd %s (%s); last sync %s, revision %s; changes "
          "are refused and ramps pause until it is back\n",
          f.value("node", ""), f.value("etcd", ""), f.value("error", ""), sync,
          f.value("revision", json(0)).dump());
    }
    out << absl::StrFormat("  %-28s %-12s %-8s %-9s %-10s %s\n", "NODE", "REGION", "VERSION",
                           "REVISION", "SEEN", "ADMIN");
    for (const json& n : f.value("nodes", json::array())) {
      out << absl::StrFormat("  %-28s %-12s %-8s %-9s %-10s %s%s\n", n.value("node", ""),
                             n.value("region", ""), n.value("version", json(0)).dump(),
                             n.value("revision", json(0)).dump(),
                             absl::StrFormat("%.1fs ago", n.value("age_seconds", 0.0)),
                             n.value("admin", ""), n.value("leader", false) ? "  (leader)" : "");
    }
  }

  static std::string Bar(double fraction, int width) {
    int filled = static_cast<int>(fraction * width + 0.5);
    return "[" + std::string(static_cast<size_t>(filled), '#') +
           std::string(static_cast<size_t>(width - filled), '.') + "]";
  }

  // Renders one endpoint's view as text. Returns the number of active plans.
  int Render(const AdminEndpoint& e, const View& v, bool bars, std::ostream& out) {
    if (!v.steering.ok || !v.plans.ok) {
      out << e.name << ": " << (v.steering.ok ? v.plans.error : v.steering.error) << "\n";
      return 0;
    }
    const json& s = v.steering.body;
    if (!s.value("enabled", false)) {
      out << e.name << ": steering is not configured\n";
      return 0;
    }
    std::map<uint64_t, json> plans;
    int active = 0;
    for (const json& p : v.plans.body.value("plans", json::array())) {
      plans[p.value("id", uint64_t{0})] = p;
      std::string state = p.value("state", "");
      active += state == "running" || state == "holding";
    }
    std::string where = e.name == e.url ? e.url : absl::StrFormat("%s (%s)", e.name, e.url);
    out << absl::StrFormat("%s: local region %s, table version %s\n", where,
                           s.value("local_region", ""), s.value("version", json(0)).dump());
    const json& regions = s.value("regions", json::object());
    std::vector<std::string> order;
    for (const json& name : s.value("region_order", json::array())) {
      order.push_back(name.get<std::string>());
    }
    const json& fleet = s.value("fleet", json::object());
    // Without the store this node's view of the plans may be stale: its gates are not news.
    const bool store_lost = fleet.value("enabled", false) && !fleet.value("connected", false);
    if (fleet.value("enabled", false)) {
      out << (fleet.value("connected", false)
                  ? absl::StrFormat("  fleet: connected, etcd revision %s\n",
                                    fleet.value("revision", json(0)).dump())
                  : std::string("  fleet: THE STORE IS UNREACHABLE: this table may be stale, "
                                "changes and ramp steps wait for it\n"));
    }
    if (!bars) {
      out << absl::StrFormat("  %-14s %-10s %-8s %-30s %-32s %s\n", "REGION", "EVACUATED",
                             "HEALTHY", "MEASURED", "SAVIORS", "PLAN");
    }
    for (const std::string& name : order) {
      const json& r = regions.value(name, json::object());
      const json& plan_id = r.value("active_plan", json());
      std::string plan = "-";
      if (plan_id.is_number()) {
        const json& p = plans[plan_id.get<uint64_t>()];
        plan = absl::StrFormat("%s %s, step %d/%d %s", plan_id.dump(), p.value("kind", ""),
                               p.value("step", -1) + 1, p.value("steps_bp", json::array()).size(),
                               p.value("state", ""));
      }
      if (bars) {
        double fraction = r.value("evacuated_bp", 0) / 10000.0;
        out << absl::StrFormat("  %-14s %s %6s  %s\n", name, Bar(fraction, 30),
                               r.value("fraction", ""), plan);
        if (plan_id.is_number()) {
          const json& p = plans[plan_id.get<uint64_t>()];
          std::string gate = p.value("gate_message", "");
          out << "  " << std::string(14, ' ') << " gates: "
              << (store_lost     ? std::string("unknown (the store is unreachable)")
                  : gate.empty() ? std::string("passing")
                                 : "holding: " + gate)
              << "\n";
          std::string rollback = p.value("last_rollback", "");
          if (!rollback.empty()) {
            out << "  " << std::string(14, ' ') << " last: " << rollback << " ("
                << p.value("rollbacks", 0) << " so far)\n";
          }
        }
      } else {
        out << absl::StrFormat(
            "  %-14s %-10s %-8s %-30s %-32s %s\n", name, r.value("fraction", ""),
            r.value("healthy", true) ? "yes" : "no",
            Measured(v.health.ok, v.health.body, name, s.value("local_region", "")),
            Weights(r.value("saviors", json())), plan);
      }
    }
    if (!bars && v.detection.ok) RenderDetection(v.detection.body, out);
    if (!bars && v.health.ok) RenderCapacity(v.health.body, out);
    if (!bars) {
      bool header = false;
      for (const auto& [id, p] : plans) {
        if (!header) {
          out << absl::StrFormat("  %-5s %-9s %-12s %-8s %-6s %s\n", "PLAN", "KIND", "REGION",
                                 "STATE", "STEP", "GATE");
          header = true;
        }
        std::string note = p.value("gate_message", "");
        if (note.empty()) note = p.value("last_rollback", "");
        out << absl::StrFormat("  %-5d %-9s %-12s %-8s %d/%-4d %s\n", id, p.value("kind", ""),
                               p.value("region", ""), p.value("state", ""), p.value("step", -1) + 1,
                               p.value("steps_bp", json::array()).size(), note);
        if (std::string dns = p.value("dns", "none"); dns != "none") {
          std::string why = p.value("dns_message", "");
          out << absl::StrFormat("  %-5s dns: %s%s\n", "", dns, why.empty() ? "" : ": " + why);
        }
      }
    }
    return active;
  }

  static std::string Number(const json& value, const char* format) {
    return value.is_number() ? absl::StrFormat(format, value.get<double>()) : std::string("-");
  }

  // The detector's view (GET /v1/detection) as text.
  // Capacity per region (GET /v1/health regions_capacity) and this node's standbys.
  static void RenderCapacity(const json& h, std::ostream& out) {
    const json& regions = h.value("regions_capacity", json::object());
    if (!regions.is_object() || regions.empty()) return;
    out << "  capacity        nodes  capacity rps  with standbys  load rps   util  standbys "
           "in/out\n";
    for (const auto& [region, r] : regions.items()) {
      out << absl::StrFormat("    %-13s  %5d  %12s  %13s  %8s  %5s  %d/%d\n", region,
                             r.value("nodes", 0), Rps(r.value("capacity_rps", json())),
                             Rps(r.value("standby_capacity_rps", json())),
                             Rps(r.value("load_rps", json())), Util(r.value("utilization", json())),
                             r.value("injected_endpoints", 0), r.value("standby_endpoints", 0));
    }
    const json& mine = h.value("capacity", json::object());
    if (mine.is_object() && !mine.empty()) {
      std::vector<std::string> standbys;
      for (const json& s : mine.value("standbys", json::array())) {
        if (s.is_string()) standbys.push_back(s.get<std::string>());
      }
      out << absl::StrFormat(
          "    this node: %s capacity (%s), standbys injected: %s\n",
          Rps(mine.value("capacity_rps", json())), mine.value("source", std::string("?")),
          standbys.empty() ? std::string("none") : absl::StrJoin(standbys, ", "));
    }
  }

  static void RenderDetection(const json& d, std::ostream& out) {
    const json& g = d.value("global", json::object());
    std::string held = d.value("held", json()).is_string() ? d["held"].get<std::string>() : "";
    out << absl::StrFormat("  detection: mode %s (set by %s, %s), global %s: %s%s\n",
                           d.value("mode", ""), d.value("mode_set_by", ""), d.value("role", ""),
                           g.value("verdict", ""), g.value("reason", ""),
                           held.empty() ? "" : " [" + held + "]");
    out << absl::StrFormat("  %-14s %-10s %-9s %-9s %-9s %-6s %-9s %s\n", "REGION", "VERDICT",
                           "ENTRY/S", "SERVED/S", "EXPECTED", "RATIO", "REQ/S", "WHY");
    const json regions = d.value("regions", json::object());
    for (const auto& [name, r] : regions.items()) {
      out << absl::StrFormat(
          "  %-14s %-10s %-9s %-9s %-9s %-6s %-9s %s\n", name, r.value("verdict", ""),
          Number(r.value("entry_sps", json()), "%.1f"),
          Number(r.value("serving_sps", json()), "%.1f"),
          Number(r.value("expected", json()), "%.1f"), Number(r.value("ratio", json()), "%.2f"),
          Number(r.value("requests_per_second", json()), "%.0f"), r.value("reason", ""));
    }
    const json& history = d.value("history", json::object());
    if (history.contains("error")) out << "  history: " << history.value("error", "") << "\n";
  }

  int Detection() {
    Allow({});
    if (o_.args.size() == 2 && o_.args[0] == "mode") {
      const std::string& mode = o_.args[1];
      if (mode != "off" && mode != "alert" && mode != "auto") {
        throw UsageError{"detection mode: off, alert or auto"};
      }
      return Change("PUT", "/v1/detection", json{{"mode", mode}}, [](const json& reply) {
        return absl::StrFormat("detection mode %s", reply.value("mode", ""));
      });
    }
    if (!(o_.args.empty() || (o_.args.size() == 1 && o_.args[0] == "status"))) {
      throw UsageError{"detection takes no arguments, or mode off|alert|auto"};
    }
    int code = kExitOk;
    json all = json::array();
    for (const AdminEndpoint& e : o_.endpoints) {
      Reply r = Call(e, "GET", "/v1/detection");
      if (!r.ok) code = kExitFailed;
      if (o_.json) {
        all.push_back(json{{"endpoint", e.name}, {"ok", r.ok}, {"detection", r.body}});
      } else if (!r.ok) {
        err_ << e.name << ": " << r.error << "\n";
      } else {
        out_ << (e.name == e.url ? e.url : absl::StrFormat("%s (%s)", e.name, e.url)) << ":\n";
        RenderDetection(r.body, out_);
      }
    }
    if (o_.json) out_ << json{{"results", all}}.dump(2) << "\n";
    return code;
  }

  // history import FILE (into every endpoint: each node keeps its own copy) and history
  // export FILE (from the first endpoint).
  int History() {
    Allow({"from", "to"});
    if (o_.args.size() != 2 || (o_.args[0] != "import" && o_.args[0] != "export")) {
      throw UsageError{"history needs import FILE or export FILE"};
    }
    const std::string& file = o_.args[1];
    if (o_.args[0] == "export") {
      std::string query;
      for (const char* key : {"from", "to"}) {
        if (!Has(key)) continue;
        int64_t t = 0;
        if (!ParseInteger(Flag(key), &t) || t < 0) {
          throw UsageError{absl::StrFormat("--%s: a Unix time in seconds", key)};
        }
        query += absl::StrFormat("%s%s=%d", query.empty() ? "?" : "&", key, t);
      }
      const AdminEndpoint& e = o_.endpoints.front();
      absl::StatusOr<HttpReply> reply =
          AdminRequest(e, "GET", "/v1/history" + query, o_.token, "", o_.timeout);
      if (!reply.ok() || reply->status != 200) {
        err_ << e.name << ": "
             << (reply.ok() ? absl::StrFormat("%d %s", reply->status, Trim(reply->body))
                            : std::string(reply.status().message()))
             << "\n";
        return kExitFailed;
      }
      if (file == "-") {
        out_ << reply->body;
        return kExitOk;
      }
      std::ofstream f(file, std::ios::binary | std::ios::trunc);
      f << reply->body;
      f.close();
      if (!f) {
        err_ << "sluicectl: cannot write " << file << "\n";
        return kExitFailed;
      }
      return kExitOk;
    }
    if (Has("from") || Has("to")) throw UsageError{"history import takes no --from or --to"};
    std::ifstream in(file, std::ios::binary);
    if (!in) throw UsageError{absl::StrFormat("history import: cannot read %s", file)};
    std::stringstream text;
    text << in.rdbuf();
    const std::string body = text.str();
    int code = kExitOk;
    for (const AdminEndpoint& e : o_.endpoints) {
      absl::StatusOr<HttpReply> reply =
          AdminRequest(e, "POST", "/v1/history", o_.token, body, o_.timeout);
      json answer = reply.ok() ? json::parse(reply->body, nullptr, false) : json();
      if (!reply.ok() || reply->status != 200) {
        code = kExitFailed;
        std::string why = !reply.ok() ? std::string(reply.status().message())
                          : answer.is_object() && answer.contains("error")
                              ? answer.value("error", "")
                              : Trim(reply->body);
        err_ << e.name << ": " << why << "\n";
        continue;
      }
      out_ << e.name << ": " << answer.value("imported", json(0)).dump() << " rows imported\n";
    }
    return code;
  }

  // GET /v1/audit on every endpoint; --follow asks each again every second for what came after
  // the last event it saw (since=seq:N), until SIGINT or SIGTERM.
  int AuditHistory() {
    Allow({"since", "limit", "follow"});
    int limit = 0;
    if (Has("limit") && (!ParseInteger(Flag("limit"), &limit) || limit < 1 || limit > 1000)) {
      throw UsageError{"--limit: a number 1..1000"};
    }
    absl::StatusOr<std::string> query = AuditQueryString(Flag("since"), limit, absl::Now());
    if (!query.ok()) throw UsageError{std::string(query.status().message())};
    const bool follow = Has("follow");
    const bool several = o_.endpoints.size() > 1;
    int code = kExitOk;
    json all = json::array();
    struct Cursor {
      uint64_t next = 0;  // 0: not answered yet (the first query is the user's)
      std::string error;  // the last one reported
    };
    std::vector<Cursor> cursors(o_.endpoints.size());
    if (follow) {
      follow_interrupted = 0;
      struct sigaction action {};
      action.sa_handler = OnFollowSignal;  // no SA_RESTART: a wait in poll() ends at once
      sigemptyset(&action.sa_mask);
      ::sigaction(SIGINT, &action, nullptr);
      ::sigaction(SIGTERM, &action, nullptr);
    }
    bool header = !o_.json;
    for (bool first = true; first || (follow && !follow_interrupted); first = false) {
      if (!first) {
        // A second in short slices: Ctrl-C ends the wait at once.
        for (int i = 0; i < 10 && !follow_interrupted; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (follow_interrupted) break;
      }
      for (size_t i = 0; i < o_.endpoints.size() && !follow_interrupted; ++i) {
        const AdminEndpoint& e = o_.endpoints[i];
        Cursor& cursor = cursors[i];
        std::string path = "/v1/audit" + *query;
        if (cursor.next > 0) path = absl::StrFormat("/v1/audit?since=seq:%d", cursor.next - 1);
        Reply r = Call(e, "GET", path);
        if (!r.ok) {
          code = kExitFailed;
          if (follow && r.error == cursor.error) continue;  // said once is enough
          cursor.error = r.error;
          if (o_.json && !follow) {
            all.push_back(json{{"endpoint", e.name}, {"ok", false}, {"error", r.error}});
          } else {
            err_ << e.name << ": " << r.error << "\n";
          }
          continue;
        }
        cursor.error.clear();
        const uint64_t next = r.body.value("next", uint64_t{1});
        if (cursor.next > 0 && next < cursor.next) {
          // Sequence numbers went back: the node restarted, and its trail begins again.
          err_ << e.name << ": restarted; its audit trail starts again\n";
          cursor.next = 1;
          continue;
        }
        cursor.next = next;
        const json events = r.body.value("events", json::array());
        const uint64_t dropped = r.body.value("dropped", uint64_t{0});
        if (o_.json) {
          if (!follow) {
            all.push_back(json{{"endpoint", e.name}, {"ok", true}, {"audit", r.body}});
            continue;
          }
          for (json event : events) {  // one line per event (JSON Lines)
            event["endpoint"] = e.name;
            out_ << event.dump() << "\n";
          }
        } else {
          if (several && !follow) {
            out_ << (e.name == e.url ? e.url : absl::StrFormat("%s (%s)", e.name, e.url)) << ":\n";
            header = true;
          }
          if (dropped > 0) {
            err_ << absl::StrFormat(
                "%s: %d earlier events asked for are no longer in the node's memory "
                "(controller.audit_log keeps them all)\n",
                e.name, dropped);
          }
          if (several && follow) {
            for (const json& event : events) {
              out_ << e.name << "  ";
              RenderAuditEvents(json::array({event}), false, out_);
            }
          } else {
            RenderAuditEvents(events, header, out_);
          }
          header = false;
        }
        out_.flush();
      }
    }
    if (follow) {
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      // Stopped by the user: what was shown is complete, and that is success.
      if (follow_interrupted) code = kExitOk;
    }
    if (o_.json && !follow) out_ << json{{"results", all}}.dump(2) << "\n";
    return code;
  }

  // GET /v1/health and /v1/detection of every endpoint, one row per region.
  int Health() {
    Allow({});
    if (!o_.args.empty()) throw UsageError{"health takes no arguments"};
    int code = kExitOk;
    json all = json::array();
    for (const AdminEndpoint& e : o_.endpoints) {
      Reply h = Call(e, "GET", "/v1/health");
      if (!h.ok) {
        code = kExitFailed;
        if (o_.json) {
          all.push_back(
              json{{"endpoint", e.name}, {"url", e.url}, {"ok", false}, {"error", h.error}});
        } else {
          err_ << e.name << ": " << h.error << "\n";
        }
        continue;
      }
      // 404 without steering: there is no detector, and no verdicts to show.
      Reply d = Call(e, "GET", "/v1/detection");
      if (!d.ok && d.status != 404) code = kExitFailed;
      json rows = HealthRows(h.body, d.ok ? d.body : json());
      if (o_.json) {
        json j{{"endpoint", e.name},
               {"url", e.url},
               {"ok", d.ok || d.status == 404},
               {"region", h.body.value("region", json())},
               {"ready", h.body.value("ready", json())},
               {"window_seconds", h.body.value("window_seconds", json())},
               {"detection_mode", d.ok ? d.body.value("mode", json()) : json()},
               {"regions", rows}};
        if (!d.ok && d.status != 404) j["error"] = d.error;
        all.push_back(j);
        continue;
      }
      out_ << (e.name == e.url ? e.url : absl::StrFormat("%s (%s)", e.name, e.url)) << ": region "
           << h.body.value("region", std::string("-"));
      if (h.body.contains("window_seconds") && h.body["window_seconds"].is_number()) {
        out_ << absl::StrFormat(", rates over the last %gs",
                                h.body["window_seconds"].get<double>());
      }
      if (d.ok) {
        const json g = d.body.value("global", json::object());
        out_ << ", detection " << d.body.value("mode", std::string("-")) << " ("
             << g.value("verdict", std::string("-")) << ")";
      } else if (d.status == 404) {
        out_ << ", no detector (steering is off)";
      } else {
        err_ << e.name << ": detection: " << d.error << "\n";
      }
      out_ << "\n";
      RenderHealthRows(rows, out_);
    }
    if (o_.json) out_ << json{{"endpoints", all}}.dump(2) << "\n";
    return code;
  }

  json JsonView(const AdminEndpoint& e, const View& v) {
    json j{{"endpoint", e.name}, {"url", e.url}, {"ok", v.steering.ok && v.plans.ok}};
    if (v.steering.ok && v.plans.ok) {
      j["steering"] = v.steering.body;
      j["plans"] = v.plans.body.value("plans", json::array());
      if (v.fleet.ok) j["fleet"] = v.fleet.body;
      if (v.detection.ok) j["detection"] = v.detection.body;
    } else {
      j["error"] = v.steering.ok ? v.plans.error : v.steering.error;
    }
    return j;
  }

  int Status() {
    Allow({});
    if (!o_.args.empty()) throw UsageError{"status takes no arguments"};
    int code = kExitOk;
    json all = json::array();
    for (const AdminEndpoint& e : o_.endpoints) {
      View v = Fetch(e, /*with_fleet=*/true);
      if (!v.steering.ok || !v.plans.ok) code = kExitFailed;
      if (o_.json) {
        all.push_back(JsonView(e, v));
      } else {
        std::ostream& out = (v.steering.ok && v.plans.ok) ? out_ : err_;
        Render(e, v, false, out);
        if (v.fleet.ok || !v.fleet.error.empty()) RenderFleet(v.fleet, out);
      }
    }
    if (o_.json) out_ << json{{"endpoints", all}}.dump(2) << "\n";
    return code;
  }

  int Watch() {
    Allow({"interval", "count", "until-done"});
    absl::Duration interval = absl::Seconds(1);
    if (Has("interval")) {
      absl::StatusOr<absl::Duration> d = ParseDurationText(Flag("interval"));
      if (!d.ok() || *d < absl::Milliseconds(50)) throw UsageError{"--interval: at least 50ms"};
      interval = *d;
    }
    int64_t count = -1;
    if (Has("count") && (!ParseInteger(Flag("count"), &count) || count <= 0)) {
      throw UsageError{"--count: a positive number"};
    }
    const bool until_done = Has("until-done");
    const bool tty = !o_.json && ::isatty(STDOUT_FILENO) && &out_ == &std::cout;
    int code = kExitOk;
    for (int64_t frame = 0; count < 0 || frame < count; ++frame) {
      if (frame > 0) std::this_thread::sleep_for(absl::ToChronoMilliseconds(interval));
      std::ostringstream text;
      json frames = json::array();
      int active = 0;
      code = kExitOk;
      for (const AdminEndpoint& e : o_.endpoints) {
        View v = Fetch(e);
        if (!v.steering.ok || !v.plans.ok) code = kExitFailed;
        if (o_.json) {
          frames.push_back(JsonView(e, v));
          for (const json& p : frames.back().value("plans", json::array())) {
            std::string state = p.value("state", "");
            active += state == "running" || state == "holding";
          }
        } else {
          active += Render(e, v, true, text);
        }
      }
      if (o_.json) {
        out_ << json{{"time",
                      absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone())},
                     {"endpoints", frames}}
                    .dump()
             << "\n";
      } else {
        if (tty) out_ << "\033[H\033[2J";
        out_ << absl::FormatTime("%H:%M:%S", absl::Now(), absl::LocalTimeZone()) << "\n"
             << text.str();
        if (!tty) out_ << "\n";
      }
      out_.flush();
      if (until_done && active == 0 && code == kExitOk) break;
    }
    return code;
  }

  Options o_;
  std::ostream& out_;
  std::ostream& err_;
};

// "NAME URL" per line; # starts a comment.
void ReadAdminsFile(const std::string& path, std::vector<AdminEndpoint>* out) {
  std::ifstream in(path);
  if (!in) throw UsageError{absl::StrFormat("--admins: cannot read %s", path)};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::stringstream words(line);
    std::string name, url, extra;
    if (!(words >> name)) continue;
    if (!(words >> url) || (words >> extra)) {
      throw UsageError{absl::StrFormat("%s:%d: expected \"NAME URL\"", path, number)};
    }
    absl::StatusOr<AdminEndpoint> e = ParseAdminUrl(url);
    if (!e.ok()) throw UsageError{absl::StrFormat("%s:%d: %s", path, number, e.status().message())};
    e->name = name;
    out->push_back(*e);
  }
  if (out->empty()) throw UsageError{absl::StrFormat("--admins: %s names no endpoint", path)};
}

Options Parse(int argc, const char* const* argv) {
  Options o;
  std::string token_file;
  bool token_given = false;
  std::string cacert;
  bool cacert_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    // Arguments end up in request paths, headers and the audit log: nothing there may break a
    // line or hide in a terminal.
    for (char c : arg) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        throw UsageError{absl::StrFormat("argument %d holds a control character", i)};
      }
    }
    std::string value;
    bool inline_value = false;
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      inline_value = true;
    }
    auto take = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= argc) throw UsageError{arg + " needs a value"};
      return argv[++i];
    };
    if (arg == "--admin") {
      absl::StatusOr<AdminEndpoint> e = ParseAdminUrl(take());
      if (!e.ok()) throw UsageError{std::string(e.status().message())};
      o.endpoints.push_back(*e);
    } else if (arg == "--admins") {
      ReadAdminsFile(take(), &o.endpoints);
    } else if (arg == "--token") {
      o.token = take();
      token_given = true;
    } else if (arg == "--token-file") {
      token_file = take();
    } else if (arg == "--cacert") {
      cacert = take();
      cacert_given = true;
    } else if (arg == "--json") {
      o.json = true;
    } else if (arg == "--timeout") {
      absl::StatusOr<absl::Duration> d = ParseDurationText(take());
      if (!d.ok() || *d <= absl::ZeroDuration()) throw UsageError{"--timeout: a duration (5s)"};
      o.timeout = *d;
    } else if (arg == "--help" || arg == "-h") {
      throw UsageError{""};
    } else if (arg.starts_with("--")) {
      if (o.command.empty()) throw UsageError{absl::StrFormat("unknown option %s", arg)};
      // Command flags; --force and --until-done take no value.
      std::string name = arg.substr(2);
      bool boolean = name == "force" || name == "until-done" || name == "dry-run" ||
                     name == "no-hook" || name == "dns" || name == "no-dns" || name == "follow";
      o.flags[name] = boolean ? "" : take();
    } else if (o.command.empty()) {
      o.command = arg;
    } else {
      o.args.push_back(arg);
    }
  }
  if (o.command.empty()) throw UsageError{"a command is needed"};
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) throw UsageError{absl::StrFormat("--token-file: cannot read %s", token_file)};
    std::stringstream text;
    text << in.rdbuf();
    o.token = Trim(text.str());
  } else if (!token_given) {
    if (const char* env = std::getenv("SLUICE_ADMIN_TOKEN")) o.token = Trim(env);
  }
  if (o.endpoints.empty()) o.endpoints.push_back(*ParseAdminUrl("http://127.0.0.1:9901"));
  if (!cacert_given) {
    if (const char* env = std::getenv("SLUICE_ADMIN_CACERT")) cacert = Trim(env);
  }
  if (!cacert.empty()) {
    if (::access(cacert.c_str(), R_OK) != 0) {
      throw UsageError{absl::StrFormat("--cacert: cannot read %s", cacert)};
    }
    for (AdminEndpoint& e : o.endpoints) e.ca_file = cacert;
  }
  return o;
}

}  // namespace

int RunSluicectl(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  try {
    Options options = Parse(argc, argv);
    return Ctl(std::move(options), out, err).Run();
  } catch (const UsageError& e) {
    if (e.message.empty()) {  // --help
      out << kUsage;
      return kExitOk;
    }
    err << "sluicectl: " << e.message << "\n\n" << kUsage;
    return kExitUsage;
  } catch (const nlohmann::json::exception& e) {
    err << "sluicectl: the admin API answered something unexpected: " << e.what() << "\n";
    return kExitFailed;
  }
}

}  // namespace sluice
