#include "steering/fleet_view.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "steering/steering_table.h"

namespace sluice {
namespace {

using nlohmann::json;

json TotalsJson(const TrafficTotals& t) {
  json latency = json::array();
  for (uint64_t count : t.latency) latency.push_back(count);
  return json{{"requests", t.requests},
              {"errors", t.errors},
              {"sheds", t.sheds},
              {"starts", t.starts},
              {"latency", latency}};
}

absl::Status Counter(const json& j, const char* key, const std::string& where, uint64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s.%s: must be a non-negative integer", where, key));
  }
  *out = it->get<uint64_t>();
  return absl::OkStatus();
}

absl::StatusOr<TrafficTotals> TotalsFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return absl::InvalidArgumentError(where + ": must be an object");
  TrafficTotals t;
  absl::Status s = Counter(j, "requests", where, &t.requests);
  if (s.ok()) s = Counter(j, "errors", where, &t.errors);
  if (s.ok()) s = Counter(j, "sheds", where, &t.sheds);
  if (s.ok()) s = Counter(j, "starts", where, &t.starts);
  if (!s.ok()) return s;
  auto latency = j.find("latency");
  if (latency == j.end() || !latency->is_array() || latency->size() != kLatencyBounds + 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s.latency: must list %d bucket counts", where, kLatencyBounds + 1));
  }
  for (size_t i = 0; i <= kLatencyBounds; ++i) {
    if (!(*latency)[i].is_number_unsigned()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s.latency[%d]: must be a non-negative integer", where, i));
    }
    t.latency[i] = (*latency)[i].get<uint64_t>();
  }
  if (t.errors > t.requests) {
    return absl::InvalidArgumentError(where + ": more failed attempts than attempts");
  }
  return t;
}

absl::Status StringField(const json& j, const char* key, bool required, std::string* out) {
  auto it = j.find(key);
  if (it == j.end() && !required) return absl::OkStatus();
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > 256) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: must be a string", key));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

}  // namespace

std::string EncodeNodeView(const NodeView& view) {
  json tunnels = json::object();
  for (const auto& [region, totals] : view.tunnels) tunnels[region] = TotalsJson(totals);
  json starts = json::object();
  for (const auto& [region, rate] : view.starts_per_second) starts[region] = rate;
  json j{{"format", kNodeViewFormat},
         {"node", view.node},
         {"region", view.region},
         {"admin", view.admin},
         {"version", view.version},
         {"revision", view.revision},
         {"updated_ms", absl::ToUnixMillis(view.updated)},
         {"window_ms", absl::ToInt64Milliseconds(view.window)},
         {"local", TotalsJson(view.local)},
         {"tunnels", tunnels},
         {"starts_per_second", starts},
         {"origins_down", view.origins_down},
         {"origins_detail", view.origins_detail}};
  if (view.has_signal) j["signal"] = SignalToJson(view);
  if (view.capacity.known) j["capacity"] = CapacityToJson(view.capacity);
  if (view.can_lead) j["can_lead"] = *view.can_lead;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::StatusOr<NodeView> DecodeNodeView(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("a node view must be a JSON object");
  }
  auto format = j.find("format");
  if (format == j.end() || !format->is_string() || format->get<std::string>() != kNodeViewFormat) {
    return absl::InvalidArgumentError(absl::StrFormat("format: must be \"%s\"", kNodeViewFormat));
  }
  NodeView view;
  absl::Status s = StringField(j, "node", true, &view.node);
  if (s.ok()) s = StringField(j, "region", true, &view.region);
  if (s.ok()) s = StringField(j, "admin", false, &view.admin);
  if (!s.ok()) return s;
  if (view.node.empty()) return absl::InvalidArgumentError("node: must not be empty");
  if (!view.region.empty() && !ValidRegionName(view.region)) {
    return absl::InvalidArgumentError("region: must be a region name");
  }
  uint64_t version = 0, updated_ms = 0, window_ms = 0, revision = 0;
  s = Counter(j, "version", "view", &version);
  if (s.ok()) s = Counter(j, "revision", "view", &revision);
  if (s.ok()) s = Counter(j, "updated_ms", "view", &updated_ms);
  if (s.ok()) s = Counter(j, "window_ms", "view", &window_ms);
  if (!s.ok()) return s;
  if (revision > static_cast<uint64_t>(INT64_MAX) || updated_ms > (uint64_t{1} << 50) ||
      window_ms > 86400000) {
    return absl::InvalidArgumentError("view: revision, updated_ms or window_ms out of range");
  }
  view.version = version;
  view.revision = static_cast<int64_t>(revision);
  view.updated = absl::FromUnixMillis(static_cast<int64_t>(updated_ms));
  view.window = absl::Milliseconds(static_cast<int64_t>(window_ms));
  auto local = j.find("local");
  if (local == j.end()) return absl::InvalidArgumentError("local: missing");
  absl::StatusOr<TrafficTotals> totals = TotalsFromJson(*local, "local");
  if (!totals.ok()) return totals.status();
  view.local = *totals;
  auto tunnels = j.find("tunnels");
  if (tunnels == j.end() || !tunnels->is_object() ||
      tunnels->size() > static_cast<size_t>(kMaxRegions)) {
    return absl::InvalidArgumentError("tunnels: must be an object of at most 64 regions");
  }
  for (const auto& [region, value] : tunnels->items()) {
    if (!ValidRegionName(region)) {
      return absl::InvalidArgumentError(absl::StrFormat("tunnels.%s: not a region name", region));
    }
    absl::StatusOr<TrafficTotals> t = TotalsFromJson(value, "tunnels." + region);
    if (!t.ok()) return t.status();
    view.tunnels[region] = *t;
  }
  // Added later: absent from older nodes' views.
  if (auto down = j.find("origins_down"); down != j.end() && down->is_boolean()) {
    view.origins_down = down->get<bool>();
  }
  if (auto detail = j.find("origins_detail"); detail != j.end() && detail->is_string()) {
    view.origins_detail = detail->get<std::string>().substr(0, 500);
  }
  if (auto can_lead = j.find("can_lead"); can_lead != j.end()) {
    if (!can_lead->is_boolean()) return absl::InvalidArgumentError("can_lead: must be a boolean");
    view.can_lead = can_lead->get<bool>();
  }
  auto starts = j.find("starts_per_second");
  if (starts == j.end() || !starts->is_object() ||
      starts->size() > static_cast<size_t>(kMaxRegions)) {
    return absl::InvalidArgumentError("starts_per_second: must be an object of at most 64 regions");
  }
  for (const auto& [region, value] : starts->items()) {
    if (!ValidRegionName(region) || !value.is_number() || value.get<double>() < 0) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "starts_per_second.%s: must be a region name with a non-negative number", region));
    }
    view.starts_per_second[region] = value.get<double>();
  }
  if (auto capacity = j.find("capacity"); capacity != j.end()) {
    // A capacity this release cannot read (a newer node's source, a figure out of range)
    // leaves the view without one; the rest of the view (the gates' counts) still counts.
    if (!CapacityFromJson(*capacity, &view.capacity).ok()) view.capacity = NodeCapacity{};
  }
  if (auto signal = j.find("signal"); signal != j.end()) {
    if (absl::Status bad = SignalFromJson(*signal, &view); !bad.ok()) return bad;
  }
  return view;
}

json SignalToJson(const NodeView& view) {
  json serving = json::object();
  for (const auto& [region, rate] : view.serving_sps) serving[region] = rate;
  return json{{"entry_sps", view.entry_sps},
              {"requests_per_second", view.requests_per_second},
              {"serving_sps", serving}};
}

absl::Status SignalFromJson(const json& signal, NodeView* view) {
  absl::Status bad = absl::InvalidArgumentError(
      "signal: must hold non-negative numbers entry_sps, requests_per_second and serving_sps "
      "(an object of at most 64 regions)");
  if (!signal.is_object()) return bad;
  auto number = [](const json& value, double* out) {
    if (!value.is_number()) return false;
    double v = value.get<double>();
    if (!(v >= 0) || v > 1e12) return false;
    *out = v;
    return true;
  };
  auto entry = signal.find("entry_sps");
  auto requests = signal.find("requests_per_second");
  auto serving = signal.find("serving_sps");
  if (entry == signal.end() || requests == signal.end() || serving == signal.end() ||
      !number(*entry, &view->entry_sps) || !number(*requests, &view->requests_per_second) ||
      !serving->is_object() || serving->size() > static_cast<size_t>(kMaxRegions)) {
    return bad;
  }
  view->serving_sps.clear();
  for (const auto& [region, value] : serving->items()) {
    double rate = 0;
    if (!ValidRegionName(region) || !number(value, &rate)) return bad;
    view->serving_sps[region] = rate;
  }
  view->has_signal = true;
  return absl::OkStatus();
}

json CapacityToJson(const NodeCapacity& c) {
  return json{{"capacity_rps", c.capacity_rps},
              {"standby_capacity_rps", c.standby_capacity_rps},
              {"source", c.source},
              {"load_rps", c.load_rps},
              {"cohort_rps", c.cohort_rps.empty() ? json::object() : json(c.cohort_rps)},
              {"standbys", c.standbys},
              {"standby_version", c.standby_version},
              {"standby_endpoints", c.standby_endpoints},
              {"injected_endpoints", c.injected_endpoints}};
}

absl::Status CapacityFromJson(const json& j, NodeCapacity* c) {
  auto bad = [](const char* what) {
    return absl::InvalidArgumentError(absl::StrFormat("capacity.%s", what));
  };
  if (!j.is_object()) return bad("must be an object");
  auto number = [&](const char* key, double* out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number()) return false;
    double v = it->get<double>();
    if (!(v >= 0) || v > 1e12) return false;
    *out = v;
    return true;
  };
  auto count = [&](const char* key, uint64_t max, uint64_t* out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned() || it->get<uint64_t>() > max) return false;
    *out = it->get<uint64_t>();
    return true;
  };
  NodeCapacity out;
  if (!number("capacity_rps", &out.capacity_rps)) {
    return bad("capacity_rps: must be a number 0..1e12");
  }
  if (!number("load_rps", &out.load_rps)) return bad("load_rps: must be a number 0..1e12");
  if (!number("standby_capacity_rps", &out.standby_capacity_rps)) {
    return bad("standby_capacity_rps: must be a number 0..1e12");
  }
  auto source = j.find("source");
  if (source == j.end() || !source->is_string() ||
      (*source != "configured" && *source != "learned" && *source != "none")) {
    return bad("source: must be configured, learned or none");
  }
  out.source = source->get<std::string>();
  auto cohorts = j.find("cohort_rps");
  if (cohorts == j.end() || !cohorts->is_object() || cohorts->size() > 1000) {
    return bad("cohort_rps: must be an object of cohort: rate");
  }
  for (const auto& [cohort, rate] : cohorts->items()) {
    if (!ValidRegionName(cohort) || !rate.is_number() || !(rate.get<double>() >= 0) ||
        rate.get<double>() > 1e12) {
      return bad("cohort_rps: must be an object of cohort: rate");
    }
    out.cohort_rps[cohort] = rate.get<double>();
  }
  auto standbys = j.find("standbys");
  if (standbys == j.end() || !standbys->is_array() || standbys->size() > 1000) {
    return bad("standbys: must be a list of cluster names");
  }
  for (const json& s : *standbys) {
    if (!s.is_string() || !ValidStandbyName(s.get<std::string>())) {
      return bad("standbys: must be a list of cluster names");
    }
    out.standbys.push_back(s.get<std::string>());
  }
  uint64_t version = 0;
  uint64_t waiting = 0;
  uint64_t serving = 0;
  if (!count("standby_version", std::numeric_limits<int64_t>::max(), &version) ||
      !count("standby_endpoints", 1u << 20, &waiting) ||
      !count("injected_endpoints", 1u << 20, &serving)) {
    return bad("standby_version, standby_endpoints, injected_endpoints: must be counts");
  }
  out.standby_version = version;
  out.standby_endpoints = static_cast<uint32_t>(waiting);
  out.injected_endpoints = static_cast<uint32_t>(serving);
  out.known = true;
  *c = std::move(out);
  return absl::OkStatus();
}

std::map<std::string, RegionCapacity> SumCapacity(const std::vector<NodeView>& views,
                                                  uint64_t version) {
  std::map<std::string, RegionCapacity> out;
  for (const NodeView& view : views) {
    if (view.region.empty()) continue;
    RegionCapacity& r = out[view.region];
    ++r.nodes;
    if (!view.capacity.known) continue;
    const NodeCapacity& c = view.capacity;
    ++r.reporting;
    if (c.capacity_rps <= 0) ++r.unknown;
    r.capacity_rps += c.capacity_rps;
    r.standby_capacity_rps += std::max(c.standby_capacity_rps, c.capacity_rps);
    r.load_rps += c.load_rps;
    for (const auto& [cohort, rate] : c.cohort_rps) r.cohort_rps[cohort] += rate;
    r.standby_endpoints += c.standby_endpoints;
    r.injected_endpoints += c.injected_endpoints;
    bool all = std::find(c.standbys.begin(), c.standbys.end(), "*") != c.standbys.end();
    // A node without a standby endpoint has nothing to inject: it is as ready as it gets.
    bool none = c.standby_endpoints == 0 && c.injected_endpoints == 0;
    if ((all && c.standby_version >= version) || none) ++r.applied;
  }
  return out;
}

std::map<std::string, SignalPoint> SumSignals(const std::vector<NodeView>& views,
                                              std::map<std::string, size_t>* reported) {
  std::map<std::string, SignalPoint> out;
  std::map<std::string, size_t> nodes;
  std::set<std::string> silent;  // regions with a view that has no signal
  for (const NodeView& view : views) {
    if (view.region.empty()) continue;
    if (!view.has_signal) {
      silent.insert(view.region);
      continue;
    }
    ++nodes[view.region];
    SignalPoint& own = out[view.region];
    own.entry_sps += view.entry_sps;
    own.requests_per_second += view.requests_per_second;
    for (const auto& [region, rate] : view.serving_sps) out[region].serving_sps += rate;
  }
  if (reported) {
    reported->clear();
    for (const auto& [region, n] : nodes) {
      if (!silent.count(region)) (*reported)[region] = n;
    }
  }
  return out;
}

namespace {

// The gates' view of a region from its sums: `own` over its `nodes`, `tunneled` over every
// node's tunnels into it, and the node (if any) whose checks find its origins down.
RegionHealth HealthOfRegion(const TrafficTotals& own, const TrafficTotals& tunneled, uint64_t nodes,
                            bool checked_down, const std::string& down_node,
                            const std::string& down_detail, uint64_t min_tunnel_requests) {
  RegionHealth h;
  h.requests = own.requests;
  if (own.requests > 0) {
    h.error_rate = static_cast<double>(own.errors) / static_cast<double>(own.requests);
  }
  if (own.requests + own.sheds > 0) {
    h.shed_rate = static_cast<double>(own.sheds) / static_cast<double>(own.requests + own.sheds);
  }
  h.p99 = Percentile99(own.latency);
  // Down: nothing succeeded anywhere in the region, and a node's checks fail everywhere or
  // enough attempts failed to say so.
  if (own.errors >= own.requests) {
    if (checked_down) {
      h.origins_down = true;
      h.detail = absl::StrFormat("%s (node %s)", down_detail, down_node);
    } else if (own.requests >= min_tunnel_requests && own.requests > 0) {
      h.origins_down = true;
      h.detail = absl::StrFormat("all %d attempts at its origins in the window failed, on %d nodes",
                                 own.requests, nodes);
    }
  }
  if (tunneled.requests >= min_tunnel_requests && tunneled.requests > 0) {
    double rate = static_cast<double>(tunneled.errors) / static_cast<double>(tunneled.requests);
    h.error_rate = std::max(h.error_rate, rate);
    h.p99 = std::max(h.p99, Percentile99(tunneled.latency));
  }
  return h;
}

}  // namespace

std::optional<RegionHealth> FleetRegionHealth(const std::vector<NodeView>& views,
                                              const std::string& region,
                                              uint64_t min_tunnel_requests) {
  TrafficTotals own;
  TrafficTotals tunneled;
  size_t nodes = 0;
  const NodeView* checked_down = nullptr;  // a node whose checks find the origins down
  for (const NodeView& view : views) {
    if (view.region == region) {
      own += view.local;
      ++nodes;
      if (view.origins_down) checked_down = &view;
    }
    if (auto t = view.tunnels.find(region); t != view.tunnels.end()) tunneled += t->second;
  }
  if (nodes == 0) return std::nullopt;
  static const std::string* const kNone = new std::string();
  return HealthOfRegion(own, tunneled, nodes, checked_down != nullptr,
                        checked_down ? checked_down->node : *kNone,
                        checked_down ? checked_down->origins_detail : *kNone, min_tunnel_requests);
}

std::map<std::string, RegionSum> SumRegions(const std::vector<NodeView>& views) {
  std::map<std::string, RegionSum> out;
  // Every sum walks the views in the order given, as SumSignals and SumCapacity do: the
  // doubles come out the same to the bit.
  for (const NodeView& view : views) {
    for (const auto& [savior, totals] : view.tunnels) {
      if (!savior.empty()) out[savior].tunneled += totals;
    }
    if (view.region.empty()) continue;
    RegionSum& r = out[view.region];
    ++r.nodes;
    ++r.versions[view.version];
    r.local += view.local;
    if (view.origins_down) {
      r.origins_down = true;
      r.origins_node = view.node;
      r.origins_detail = view.origins_detail;
    }
    if (!view.has_signal) {
      ++r.silent_nodes;
      continue;
    }
    ++r.signal_nodes;
    r.entry_sps += view.entry_sps;
    r.requests_per_second += view.requests_per_second;
    for (const auto& [region, rate] : view.serving_sps) {
      if (region.empty()) continue;
      RegionSum& served = out[region];
      served.serving_sps += rate;
      served.served = true;
    }
  }
  for (auto& [region, capacity] : SumCapacity(views, 0)) out[region].capacity = capacity;
  return out;
}

std::optional<RegionHealth> RegionHealthFromSums(const std::map<std::string, RegionSum>& sums,
                                                 const std::string& region,
                                                 uint64_t min_tunnel_requests) {
  auto it = sums.find(region);
  if (it == sums.end() || it->second.nodes == 0) return std::nullopt;
  const RegionSum& r = it->second;
  return HealthOfRegion(r.local, r.tunneled, r.nodes, r.origins_down, r.origins_node,
                        r.origins_detail, min_tunnel_requests);
}

std::map<std::string, SignalPoint> SignalsFromSums(const std::map<std::string, RegionSum>& sums,
                                                   std::map<std::string, size_t>* reported) {
  std::map<std::string, SignalPoint> out;
  if (reported) reported->clear();
  for (const auto& [region, r] : sums) {
    // SumSignals has an entry for the region of a node with a signal and for a region a
    // signal names as serving; none for a region whose nodes are all silent.
    if (r.signal_nodes == 0 && !r.served) continue;
    SignalPoint& p = out[region];
    p.entry_sps = r.entry_sps;
    p.requests_per_second = r.requests_per_second;
    p.serving_sps = r.serving_sps;
    if (reported && r.signal_nodes > 0 && r.silent_nodes == 0) {
      (*reported)[region] = r.signal_nodes;
    }
  }
  return out;
}

std::map<std::string, RegionCapacity> CapacityFromSums(
    const std::map<std::string, RegionSum>& sums) {
  std::map<std::string, RegionCapacity> out;
  for (const auto& [region, r] : sums) {
    if (r.nodes > 0) out[region] = r.capacity;
  }
  return out;
}

namespace {

// A region's origins_detail cut to kMaxOriginsDetail bytes, not inside a UTF-8 sequence.
std::string CutDetail(const std::string& detail) {
  if (detail.size() <= kMaxOriginsDetail) return detail;
  size_t end = kMaxOriginsDetail;
  while (end > 0 && (static_cast<unsigned char>(detail[end]) & 0xC0) == 0x80) --end;
  return detail.substr(0, end);
}

json RegionCapacityJson(const RegionCapacity& c) {
  return json{{"nodes", c.nodes},
              {"reporting", c.reporting},
              {"unknown", c.unknown},
              {"capacity_rps", c.capacity_rps},
              {"standby_capacity_rps", c.standby_capacity_rps},
              {"load_rps", c.load_rps},
              {"cohort_rps", c.cohort_rps.empty() ? json::object() : json(c.cohort_rps)},
              {"standby_endpoints", c.standby_endpoints},
              {"injected_endpoints", c.injected_endpoints},
              {"applied", c.applied}};
}

json RegionSumJson(const RegionSum& r) {
  // JSON keys are strings: a table version is written in decimal.
  json versions = json::object();
  for (const auto& [version, nodes] : r.versions) versions[absl::StrCat(version)] = nodes;
  return json{{"nodes", r.nodes},
              {"signal_nodes", r.signal_nodes},
              {"silent_nodes", r.silent_nodes},
              {"versions", versions},
              {"local", TotalsJson(r.local)},
              {"tunneled", TotalsJson(r.tunneled)},
              {"origins_down", r.origins_down},
              {"origins_node", r.origins_node},
              {"origins_detail", CutDetail(r.origins_detail)},
              {"entry_sps", r.entry_sps},
              {"requests_per_second", r.requests_per_second},
              {"serving_sps", r.serving_sps},
              {"served", r.served},
              {"capacity", RegionCapacityJson(r.capacity)}};
}

absl::Status Invalid(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status Count32(const json& j, const char* key, const std::string& where, uint32_t* out) {
  uint64_t v = 0;
  if (absl::Status s = Counter(j, key, where, &v); !s.ok()) return s;
  if (v > std::numeric_limits<uint32_t>::max()) {
    return Invalid(absl::StrCat(where, ".", key), "must be at most 4294967295");
  }
  *out = static_cast<uint32_t>(v);
  return absl::OkStatus();
}

absl::Status Rate(const json& j, const char* key, const std::string& where, double* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number() || !std::isfinite(it->get<double>()) ||
      !(it->get<double>() >= 0)) {
    return Invalid(absl::StrCat(where, ".", key), "must be a non-negative number");
  }
  *out = it->get<double>();
  return absl::OkStatus();
}

absl::Status Flag(const json& j, const char* key, const std::string& where, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_boolean()) {
    return Invalid(absl::StrCat(where, ".", key), "must be true or false");
  }
  *out = it->get<bool>();
  return absl::OkStatus();
}

absl::Status Text(const json& j, const char* key, const std::string& where, size_t max,
                  std::string* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().size() > max) {
    return Invalid(absl::StrCat(where, ".", key),
                   absl::StrFormat("must be a string of at most %d bytes", max));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

// The member `key` of `j`, or null (which the readers refuse as "must be an object").
const json& Member(const json& j, const char* key) {
  static const json* const kNull = new json();
  auto it = j.find(key);
  return it == j.end() ? *kNull : *it;
}

absl::Status RegionCapacityFromJson(const json& j, const std::string& where, RegionCapacity* c) {
  if (!j.is_object()) return Invalid(where, "must be an object");
  absl::Status s = Count32(j, "nodes", where, &c->nodes);
  if (s.ok()) s = Count32(j, "reporting", where, &c->reporting);
  if (s.ok()) s = Count32(j, "unknown", where, &c->unknown);
  if (s.ok()) s = Rate(j, "capacity_rps", where, &c->capacity_rps);
  if (s.ok()) s = Rate(j, "standby_capacity_rps", where, &c->standby_capacity_rps);
  if (s.ok()) s = Rate(j, "load_rps", where, &c->load_rps);
  if (s.ok()) s = Count32(j, "standby_endpoints", where, &c->standby_endpoints);
  if (s.ok()) s = Count32(j, "injected_endpoints", where, &c->injected_endpoints);
  if (s.ok()) s = Count32(j, "applied", where, &c->applied);
  if (!s.ok()) return s;
  if (c->reporting > c->nodes || c->unknown > c->reporting || c->applied > c->reporting) {
    return Invalid(where, "reporting must be at most nodes, unknown and applied at most reporting");
  }
  const json& cohorts = Member(j, "cohort_rps");
  if (!cohorts.is_object() || cohorts.size() > 1000) {
    return Invalid(where + ".cohort_rps", "must be an object of at most 1000 cohort: rate");
  }
  for (const auto& [cohort, rate] : cohorts.items()) {
    if (!ValidRegionName(cohort)) {
      return Invalid(where + ".cohort_rps", "must be an object of at most 1000 cohort: rate");
    }
    if (s = Rate(cohorts, cohort.c_str(), where + ".cohort_rps", &c->cohort_rps[cohort]); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RegionSum> RegionSumFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return Invalid(where, "must be an object");
  RegionSum r;
  absl::Status s = Count32(j, "nodes", where, &r.nodes);
  if (s.ok()) s = Count32(j, "signal_nodes", where, &r.signal_nodes);
  if (s.ok()) s = Count32(j, "silent_nodes", where, &r.silent_nodes);
  if (!s.ok()) return s;
  if (uint64_t{r.signal_nodes} + r.silent_nodes != r.nodes) {
    return Invalid(where, "signal_nodes and silent_nodes must add up to nodes");
  }
  // Every node serves with one version: as many versions as nodes at most, counting them all.
  const json& versions = Member(j, "versions");
  if (!versions.is_object() || versions.size() > r.nodes) {
    return Invalid(where + ".versions", "must be an object of table version: nodes");
  }
  uint64_t counted = 0;
  for (const auto& [key, value] : versions.items()) {
    uint64_t version = 0;
    if (!absl::SimpleAtoi(key, &version) || absl::StrCat(version) != key) {
      return Invalid(where + ".versions",
                     absl::StrFormat("\"%s\" is not a table version", key.substr(0, 64)));
    }
    uint32_t& nodes = r.versions[version];
    if (s = Count32(versions, key.c_str(), where + ".versions", &nodes); !s.ok()) return s;
    if (nodes == 0) return Invalid(absl::StrCat(where, ".versions.", key), "must be at least 1");
    counted += nodes;
  }
  if (counted != r.nodes) return Invalid(where + ".versions", "must count every node once");
  absl::StatusOr<TrafficTotals> totals = TotalsFromJson(Member(j, "local"), where + ".local");
  if (!totals.ok()) return totals.status();
  r.local = *totals;
  totals = TotalsFromJson(Member(j, "tunneled"), where + ".tunneled");
  if (!totals.ok()) return totals.status();
  r.tunneled = *totals;
  s = Flag(j, "origins_down", where, &r.origins_down);
  if (s.ok()) s = Text(j, "origins_node", where, 256, &r.origins_node);
  // The encoder cut it to kMaxOriginsDetail bytes; writing invalid UTF-8 as U+FFFD may have
  // made that up to three times longer. Cut again.
  if (s.ok()) s = Text(j, "origins_detail", where, 3 * kMaxOriginsDetail, &r.origins_detail);
  if (s.ok()) s = Rate(j, "entry_sps", where, &r.entry_sps);
  if (s.ok()) s = Rate(j, "requests_per_second", where, &r.requests_per_second);
  if (s.ok()) s = Rate(j, "serving_sps", where, &r.serving_sps);
  if (s.ok()) s = Flag(j, "served", where, &r.served);
  if (s.ok()) s = RegionCapacityFromJson(Member(j, "capacity"), where + ".capacity", &r.capacity);
  if (!s.ok()) return s;
  r.origins_detail = CutDetail(r.origins_detail);
  if (r.origins_down && r.nodes == 0) {
    return Invalid(where + ".origins_down", "a region without nodes cannot find its origins down");
  }
  if (r.capacity.nodes != r.nodes) return Invalid(where + ".capacity.nodes", "must equal nodes");
  return r;
}

}  // namespace

std::string EncodeFleetRegions(const FleetRegions& regions) {
  json sums = json::object();
  for (const auto& [name, sum] : regions.regions) sums[name] = RegionSumJson(sum);
  json j{{"format", kFleetRegionsFormat},
         {"leader", regions.leader},
         {"updated_ms", absl::ToUnixMillis(regions.updated)},
         {"revision", regions.revision},
         {"regions", sums},
         {"standbys", regions.standbys}};
  if (regions.candidates) j["candidates"] = *regions.candidates;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::StatusOr<FleetRegions> DecodeFleetRegions(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("a fleet's regions must be a JSON object");
  }
  auto format = j.find("format");
  if (format == j.end() || !format->is_string() ||
      format->get_ref<const std::string&>() != kFleetRegionsFormat) {
    return absl::InvalidArgumentError(
        absl::StrFormat("format: must be \"%s\"", kFleetRegionsFormat));
  }
  FleetRegions out;
  absl::Status s = Text(j, "leader", "document", 256, &out.leader);
  if (!s.ok()) return s;
  if (out.leader.empty()) return Invalid("document.leader", "must not be empty");
  uint64_t updated_ms = 0;
  uint64_t revision = 0;
  s = Counter(j, "updated_ms", "document", &updated_ms);
  if (s.ok()) s = Counter(j, "revision", "document", &revision);
  if (!s.ok()) return s;
  if (updated_ms > (uint64_t{1} << 50)) {
    return Invalid("document.updated_ms", "out of range");
  }
  if (revision > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Invalid("document.revision", "out of range");
  }
  out.updated = absl::FromUnixMillis(static_cast<int64_t>(updated_ms));
  out.revision = static_cast<int64_t>(revision);
  const json& regions = Member(j, "regions");
  if (!regions.is_object() || regions.size() > kMaxFleetRegions) {
    return Invalid("regions",
                   absl::StrFormat("must be an object of at most %d regions", kMaxFleetRegions));
  }
  for (const auto& [name, value] : regions.items()) {
    if (name.empty()) return Invalid("regions", "a region name must not be empty");
    if (!ValidRegionName(name)) {
      return Invalid("regions", absl::StrFormat("\"%s\" is not a region name", name.substr(0, 64)));
    }
    absl::StatusOr<RegionSum> sum = RegionSumFromJson(value, "regions." + name);
    if (!sum.ok()) return sum.status();
    out.regions[name] = *std::move(sum);
  }
  if (auto standbys = j.find("standbys"); standbys != j.end()) {
    if (!standbys->is_array())
      return Invalid("document.standbys", "must be an array of node names");
    for (const json& name : *standbys) {
      // More than this release takes (a later one's): the first ones, in order.
      if (out.standbys.size() == kMaxFleetStandbys) break;
      if (!name.is_string() || name.get_ref<const std::string&>().empty() ||
          name.get_ref<const std::string&>().size() > 256) {
        return Invalid("document.standbys", "a node name must be a string of 1 to 256 bytes");
      }
      const std::string& node = name.get_ref<const std::string&>();
      if (std::find(out.standbys.begin(), out.standbys.end(), node) != out.standbys.end()) {
        return Invalid("document.standbys", "names a node twice");
      }
      out.standbys.push_back(node);
    }
  }
  if (j.contains("candidates")) {
    uint32_t candidates = 0;
    if (s = Count32(j, "candidates", "document", &candidates); !s.ok()) return s;
    uint64_t nodes = 0;
    for (const auto& [name, sum] : out.regions) nodes += sum.nodes;
    // Advisory (it only spreads campaigns): past the nodes summed (a later release that
    // counts differently), the nodes.
    out.candidates = static_cast<uint32_t>(std::min<uint64_t>(candidates, nodes));
  }
  return out;
}

uint32_t CountCandidates(const std::vector<NodeView>& views) {
  uint32_t candidates = 0;
  for (const NodeView& view : views) {
    // As SumRegions, which sums no view without a region (the document's check compares).
    candidates += !view.region.empty() && view.can_lead.value_or(true) ? 1 : 0;
  }
  return candidates;
}

absl::Duration FleetViewInterval(absl::Duration publish_interval, size_t nodes) {
  return std::max(publish_interval,
                  absl::Seconds(static_cast<double>(nodes) / kFleetViewsPerSecond));
}

}  // namespace sluice
