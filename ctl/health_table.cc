#include "ctl/health_table.h"

#include <set>
#include <string>

#include "absl/strings/str_format.h"

namespace sluice {
namespace {

using nlohmann::json;

// `j[key]` when it is an object, else an empty object.
json ObjectAt(const json& j, const char* key) {
  if (!j.is_object()) return json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : json::object();
}

// `j[key]` when it is a number (or a boolean, for flags), else null.
json ValueAt(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it != j.end() && (it->is_number() || it->is_boolean() || it->is_string()) ? *it
                                                                                   : json(nullptr);
}

std::string HealthCell(const json& v, const char* format, double scale = 1) {
  return v.is_number() ? absl::StrFormat(format, v.get<double>() * scale) : std::string("-");
}

}  // namespace

json HealthRows(const json& health, const json& detection) {
  const std::string local = health.is_object() ? health.value("region", "") : "";
  const json peers = ObjectAt(health, "peers");
  const json capacity = ObjectAt(health, "regions_capacity");
  const json judged = ObjectAt(detection, "regions");
  std::set<std::string> regions;
  if (!local.empty()) regions.insert(local);
  for (const json* m : {&peers, &capacity, &judged}) {
    for (const auto& item : m->items()) regions.insert(item.key());
  }
  json rows = json::array();
  for (const std::string& region : regions) {
    const json d = ObjectAt(judged, region.c_str());
    const json c = ObjectAt(capacity, region.c_str());
    const bool is_local = region == local;
    json view = is_local ? ObjectAt(health, "local") : ObjectAt(peers, region.c_str());
    json reachable = is_local ? json(true) : ValueAt(view, "reachable");
    if (reachable.is_boolean() && !reachable.get<bool>()) view = json::object();
    // Rates and a p99 over no request at all measure nothing.
    if (ValueAt(view, "requests") == json(0)) {
      for (const char* key : {"error_rate", "shed_rate", "p99_ms"}) view.erase(key);
    }
    // A capacity of 0 is "unknown or none" (steering/capacity.h): not a figure to show.
    json capacity_rps = ValueAt(c, "capacity_rps");
    if (capacity_rps.is_number() && capacity_rps.get<double>() <= 0) capacity_rps = nullptr;
    rows.push_back(json{{"region", region},
                        {"local", is_local},
                        {"verdict", ValueAt(d, "verdict")},
                        {"sps", ValueAt(d, "sps")},
                        {"expected_sps", ValueAt(d, "expected")},
                        {"ratio", ValueAt(d, "ratio")},
                        {"error_rate", ValueAt(view, "error_rate")},
                        {"shed_rate", ValueAt(view, "shed_rate")},
                        {"p99_ms", ValueAt(view, "p99_ms")},
                        {"capacity_rps", capacity_rps},
                        {"load_rps", ValueAt(c, "load_rps")},
                        {"utilization", ValueAt(c, "utilization")},
                        {"reachable", reachable},
                        {"origins_down", ValueAt(view, "origins_down")}});
  }
  return rows;
}

void RenderHealthRows(const json& rows, std::ostream& out) {
  out << absl::StrFormat("  %-16s %-10s %8s %8s %6s %7s %7s %8s %9s %5s  %s\n", "REGION", "VERDICT",
                         "SPS", "EXPECTED", "RATIO", "ERR", "SHED", "P99", "CAPACITY", "UTIL",
                         "NOTE");
  for (const json& r : rows) {
    std::string note;
    if (r.value("local", false)) note = "this node's region";
    if (json reachable = ValueAt(r, "reachable");
        reachable.is_boolean() && !reachable.get<bool>()) {
      note = "unreachable";
    }
    if (ValueAt(r, "origins_down") == json(true)) {
      note += note.empty() ? "origins down" : ", origins down";
    }
    const json verdict = ValueAt(r, "verdict");
    out << absl::StrFormat(
        "  %-16s %-10s %8s %8s %6s %7s %7s %8s %9s %5s  %s\n", r.value("region", ""),
        verdict.is_string() ? verdict.get<std::string>() : "-",
        HealthCell(ValueAt(r, "sps"), "%.1f"), HealthCell(ValueAt(r, "expected_sps"), "%.1f"),
        HealthCell(ValueAt(r, "ratio"), "%.2f"),
        HealthCell(ValueAt(r, "error_rate"), "%.2f%%", 100),
        HealthCell(ValueAt(r, "shed_rate"), "%.2f%%", 100),
        HealthCell(ValueAt(r, "p99_ms"), "%.0fms"), HealthCell(ValueAt(r, "capacity_rps"), "%.0f"),
        HealthCell(ValueAt(r, "utilization"), "%.0f%%", 100), note);
  }
}

}  // namespace sluice
