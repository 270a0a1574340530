#include "proxy/control/detection_control.h"

#include "proxy/control/capacity_control.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "proxy/fleet/fleet.h"
#include "steering/fleet_view.h"

namespace sluice {
namespace {

constexpr uint64_t kTickMs = 1000;
constexpr absl::Duration kTrimEvery = absl::Minutes(10);
// A dead edge whose evacuation was refused (or did not finish) is tried again after this.
constexpr absl::Duration kEdgeRetry = absl::Seconds(10);

using json = nlohmann::json;

json TimeJson(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return nullptr;
  return absl::ToUnixMillis(t);
}

json PointJson(const SignalPoint& p) {
  return json{{"entry_sps", p.entry_sps},
              {"serving_sps", p.serving_sps},
              {"requests_per_second", p.requests_per_second}};
}

std::string Percent(uint32_t bp) {
  return bp % 100 == 0 ? absl::StrFormat("%d%%", bp / 100) : absl::StrFormat("%.2f%%", bp / 100.0);
}

double Judged(const SignalPoint& p, const std::string& signal) {
  return signal == "serving" ? p.serving_sps : p.entry_sps;
}

}  // namespace

DetectionControl::DetectionControl(LoopContext* context, RegionHealthMonitor* health,
                                   SteeringControl* steering)
    : context_(context), health_(health), steering_(steering) {}

DetectionControl::~DetectionControl() { Stop(); }

void DetectionControl::Configure(const Config& config) {
  config_ = config.detection;
  detector_.set_options(config_.options);
  chart_memo_.Clear();  // new options, or another history: expected values change
  edges_.set_dead_after(config_.edge_dead_after);
  if (config_.prometheus) {
    prometheus_ = std::make_unique<PrometheusBaseline>(context_, config_);
    baseline_minute_ = -1;
    baseline_tried_ = absl::InfinitePast();
    detector_.set_history(&baseline_);
  } else {
    prometheus_.reset();
    detector_.set_history(&history_);
  }
  if (!config.steering.enabled) {
    timer_.Stop();
    return;
  }
  if (config_.history_file != store_path_) {
    store_.reset();
    store_path_ = config_.history_file;
    store_error_.clear();
    if (store_path_.empty()) {
      store_error_ = "no history_file and no controller.state_file: the history is in memory only";
    } else {
      std::string note;
      absl::StatusOr<std::unique_ptr<HistoryStore>> store = HistoryStore::Open(store_path_, &note);
      if (!note.empty()) LOG_ERROR("detection: %s", note);
      if (!store.ok()) {
        store_error_ = std::string(store.status().message());
        LOG_ERROR("detection: %s; the history is kept in memory only", store_error_);
      } else {
        store_ = std::move(*store);
        absl::StatusOr<size_t> rows = store_->Load(&history_, absl::Now());
        if (!rows.ok()) {
          store_error_ = std::string(rows.status().message());
          LOG_ERROR("detection: %s", store_error_);
        } else {
          LOG_INFO("detection: history %s holds %d slots", store_path_, *rows);
        }
      }
    }
  }
  if (!timer_.active()) timer_.Start(context_->loop(), kTickMs, kTickMs, [this] { OnTick(); });
}

void DetectionControl::Stop() {
  timer_.Close();
  prometheus_.reset();  // a fetch in flight is cancelled before the loop closes
}

DetectionMode DetectionControl::mode() const {
  const Controller* c = steering_->controller();
  DetectionMode m = config_.mode;
  if (c && !c->state().detection_mode.empty()) ParseDetectionMode(c->state().detection_mode, &m);
  return m;
}

bool DetectionControl::Acting() const { return !fleet_ || fleet_->leader(); }

void DetectionControl::OnTick() {
  const Controller* c = steering_->controller();
  if (!c) return;
  const absl::Time now = absl::Now();

  // 1. Each region's fleet-wide signal: the leader (and a standby) sums the views (its own
  // signal fresh); the other nodes read the leader's sums (their own signal as they last
  // published it).
  std::map<std::string, size_t> reported;
  std::map<std::string, SignalPoint> sums;
  if (fleet_ && !fleet_->has_views() && !fleet_->RegionSums().empty()) {
    sums = SignalsFromSums(fleet_->RegionSums(), &reported);
  } else {
    std::vector<NodeView> views;
    if (fleet_) {
      for (const auto& [node, view] : fleet_->views()) {
        if (node != fleet_->node()) views.push_back(view);
      }
    } else {
      views = health_->PeerSignals();
    }
    if (NodeView mine = health_->Signal(); mine.has_signal) views.push_back(std::move(mine));
    sums = SumSignals(views, &reported);
  }
  // The cool-down follows every plan in the state, whoever started it and before a restart.
  for (const RampPlan& plan : c->state().plans) {
    detector_.NoteChange(plan.created);
    if (plan.finished != absl::InfinitePast()) detector_.NoteChange(plan.finished);
  }

  // 2. The history.
  std::vector<RegionSignal> signals;
  std::vector<SignalRecord> closed;
  for (const RegionSpec& region : c->spec().regions) {
    RegionSignal s;
    s.region = region.name;
    if (auto it = reported.find(region.name); it != reported.end()) {
      s.reported = true;
      s.nodes = it->second;
    }
    s.now = sums[region.name];
    if (const RampPlan* plan = c->ActivePlanFor(region.name)) {
      s.evacuated = true;
      s.evacuated_detail =
          absl::StrFormat("plan %d (%s) is %s at %s", plan->id, RampPlanKindName(plan->kind),
                          RampPlanStateName(plan->state), Percent(region.evacuated_bp));
    } else if (region.evacuated_bp > 0) {
      s.evacuated = true;
      s.evacuated_detail = "evacuated " + Percent(region.evacuated_bp);
    }
    if (s.reported) {
      if (std::optional<SignalRecord> slot = history_.Observe(region.name, now, s.now)) {
        closed.push_back(*slot);
      }
    }
    signals.push_back(std::move(s));
  }
  Persist(closed);

  if (prometheus_) FetchBaseline(now);

  // 3. The verdicts.
  const DetectionMode m = mode();
  detector_.set_mode(m == DetectionMode::kAuto && !Acting() ? DetectionMode::kAlert : m);
  std::optional<DetectorAction> action = detector_.Observe(now, signals);
  const uint64_t version = c->state().version;
  for (const DetectorEvent& e : detector_.TakeEvents()) {
    if (m == DetectionMode::kOff) continue;
    std::string what =
        e.region.empty()
            ? absl::StrFormat("detection: %s -> %s: %s", e.from, e.to, e.reason)
            : absl::StrFormat("detection: %s %s -> %s: %s", e.region, e.from, e.to, e.reason);
    const bool warning = e.to == "sick" || e.to == "multi_region_dip" || e.to == "vetoed";
    steering_->Audit(ControllerEvent{now, "detector", what, version, version, warning});
  }

  // 4. Acting on it.
  if (action) Act(*action, now);
  WatchEdges(*c, now);

  if (now - last_trim_ >= kTrimEvery) {
    last_trim_ = now;
    history_.Trim(now);
    if (store_) {
      if (absl::Status s = store_->Trim(now); !s.ok()) {
        LOG_ERROR("detection: %s", s.message());
      }
    }
  }
}

void DetectionControl::FetchBaseline(absl::Time now) {
  const int64_t minute = absl::ToUnixSeconds(now) / 60;
  if (prometheus_->busy() || minute == baseline_minute_ ||
      now - baseline_tried_ < absl::Seconds(10)) {
    return;
  }
  baseline_tried_ = now;
  const DetectorOptions& o = config_.options;
  prometheus_->Fetch(now, o.shift + o.smooth,
                     [this, minute, now](absl::StatusOr<std::vector<SignalRecord>> records) {
                       if (records.ok()) {
                         baseline_ = SignalHistory();
                         for (const SignalRecord& r : *records) baseline_.Add(r);
                         baseline_minute_ = minute;
                         baseline_at_ = now;
                         if (!baseline_error_.empty()) {
                           LOG_WARN("detection: baselines from %s again", prometheus_->url());
                         }
                         baseline_error_.clear();
                         detector_.HistoryChanged();
                         chart_memo_.Clear();
                         return;
                       }
                       std::string error(records.status().message());
                       if (error != baseline_error_) LOG_ERROR("detection: %s", error);
                       baseline_error_ = error;
                       // Baselines older than a few minutes are not this minute's: no verdict.
                       if (absl::Now() - baseline_at_ > absl::Minutes(5) && baseline_.size() > 0) {
                         baseline_ = SignalHistory();
                         detector_.HistoryChanged();
                         chart_memo_.Clear();
                       }
                     });
}

void DetectionControl::Persist(const std::vector<SignalRecord>& slots) {
  if (!store_ || slots.empty()) return;
  std::vector<SignalRecord> rows;
  std::set<std::pair<std::string, int64_t>> minutes;
  for (const SignalRecord& r : slots) {
    rows.push_back(r);
    if (r.span == kFineSpan) minutes.emplace(r.region, r.start / kCoarseSpan * kCoarseSpan);
  }
  // A minute is written whole (the mean of its slots so far) each time one of its slots is:
  // once the slots are trimmed after a day, the minute stands for them.
  for (const auto& [region, start] : minutes) {
    absl::Time from = absl::FromUnixSeconds(start);
    if (std::optional<SignalPoint> mean = history_.Mean(region, from, from + absl::Minutes(1))) {
      rows.push_back({region, start, kCoarseSpan, *mean});
    }
  }
  if (absl::Status s = store_->Write(rows); !s.ok()) {
    if (store_error_ != s.message()) LOG_ERROR("detection: %s", s.message());
    store_error_ = std::string(s.message());
  } else {
    store_error_.clear();
  }
}

void DetectionControl::Act(const DetectorAction& action, absl::Time now) {
  PlanRequest request;
  request.kind = RampPlan::Kind::kEvacuate;
  request.region = action.region;
  request.saviors = config_.saviors;  // empty: the region's own
  request.steps_bp = config_.steps_bp;
  request.hold = config_.hold;
  LOG_WARN("detection: evacuating %s: %s", action.region, action.reason);
  last_action_ = absl::StrFormat("evacuating %s: %s", action.region, action.reason);
  last_action_at_ = now;
  auto started = [this, action](const absl::StatusOr<uint64_t>& id) {
    detector_.ActionDone(action.region, id.ok(), absl::Now());
    if (id.ok()) {
      ++evacuations_[action.signal];
      last_action_ = absl::StrFormat("plan %d evacuates %s: %s", *id, action.region, action.reason);
    } else {
      LOG_ERROR("detection: the evacuation of %s was refused: %s", action.region,
                id.status().message());
      last_action_ = absl::StrFormat("the evacuation of %s was refused: %s", action.region,
                                     id.status().message());
    }
  };
  if (!capacity_) {
    steering_->StartPlan(request, "detector", std::move(started));
    return;
  }
  // The saviors by capacity, among the configured ones if any (never forced: a plan that
  // would overload a savior is refused and said so).
  EvacuationOptions options;
  options.auto_split = true;
  for (const auto& [savior, weight] : config_.saviors) options.candidates.push_back(savior);
  request.saviors.clear();
  capacity_->StartPlan(request, options, "detector", std::move(started));
}

void DetectionControl::WatchEdges(const Controller& c, absl::Time now) {
  std::map<std::string, uint32_t> live;
  if (fleet_) {
    for (const auto& [region, sum] : fleet_->RegionSums()) live[region] = sum.nodes;
  }
  std::vector<EdgeObservation> observations;
  for (const RegionSpec& region : c.spec().regions) {
    EdgeObservation o;
    o.region = region.name;
    o.fleet = fleet_ != nullptr;
    o.live_nodes = live[region.name];
    RegionHealth h = health_->Gate(region.name);
    o.reachable = h.reachable;
    o.detail = h.detail;
    observations.push_back(std::move(o));
  }
  edges_.Observe(now, health_->local_region(), observations);
  const DetectionMode m = mode();
  const uint64_t version = c.state().version;
  for (const EdgeEvent& e : edges_.TakeEvents()) {
    if (m == DetectionMode::kOff) continue;
    if (e.from == "unknown" && e.to == "alive") continue;  // first sight: nothing to say
    const bool dead = e.to == "dead";
    steering_->Audit(ControllerEvent{
        now, "detector", absl::StrFormat("edge: %s %s -> %s: %s", e.region, e.from, e.to, e.reason),
        version, version, dead});
    if (!dead) edge_acted_.erase(e.region);
  }
  // Acting follows the state, not the moment of the verdict: a follower that saw the edge die
  // and then became the leader (the dead node led) acts too.
  if (m != DetectionMode::kAuto || !Acting()) return;
  for (const auto& [region, edge] : edges_.edges()) {
    if (edge.state != "dead") continue;
    auto acted = edge_acted_.find(region);
    if (acted != edge_acted_.end() && now - acted->second < kEdgeRetry) continue;
    EvacuateDeadEdge(region, now);
  }
}

void DetectionControl::EvacuateDeadEdge(const std::string& region, absl::Time now) {
  const Controller* c = steering_->controller();
  if (!c) return;
  for (const RegionSpec& r : c->spec().regions) {
    // Done: all its members elsewhere, and its records out (or no DNS to take them out of).
    if (r.name == region && r.evacuated_bp == kBasisPoints &&
        (r.dns_out || !capacity_ || !capacity_->dns_enabled_for(region))) {
      return;
    }
  }
  edge_acted_[region] = now;
  PlanRequest request;
  request.kind = RampPlan::Kind::kEvacuate;
  request.region = region;
  request.steps_bp = {kBasisPoints};  // nobody reaches its edge: no ramp to wait through
  request.hold = absl::ZeroDuration();
  request.inject_standbys = true;
  // Forced: an evacuation already under way (the dip detector's ramp) is replaced, and the
  // saviors' predicted capacity does not stop it: the region's clients come to them through
  // DNS whatever the plan says; the plan makes sure its members are served there.
  request.force = true;
  EvacuationOptions options;
  options.auto_split = true;
  for (const auto& [savior, weight] : config_.saviors) options.candidates.push_back(savior);
  options.no_hook = true;  // no time for a hook: the saviors take what they can
  const bool dns = capacity_ && capacity_->dns_enabled_for(region);
  request.dns_first = dns;
  LOG_WARN("detection: the edge of %s is dead: evacuating it at once%s", region,
           dns ? ", DNS first" : "");
  last_action_ = absl::StrFormat("the edge of %s is dead: evacuating it at once", region);
  last_action_at_ = now;
  auto started = [this, region](const absl::StatusOr<uint64_t>& id) {
    if (id.ok()) {
      ++evacuations_["edge"];
      last_action_ = absl::StrFormat("plan %d evacuates %s: its edge is dead", *id, region);
    } else {
      LOG_ERROR("detection: the evacuation of %s (dead edge) was refused: %s", region,
                id.status().message());
      last_action_ = absl::StrFormat("the evacuation of %s (dead edge) was refused: %s", region,
                                     id.status().message());
    }
  };
  if (!capacity_) {
    steering_->StartPlan(request, "detector", std::move(started));
    return;
  }
  capacity_->StartPlan(request, options, "detector", std::move(started));
}

absl::StatusOr<size_t> DetectionControl::Import(std::string_view csv) {
  absl::StatusOr<std::vector<SignalRecord>> records = DecodeHistoryCsv(csv, absl::Now());
  if (!records.ok()) return records.status();
  const Controller* c = steering_->controller();
  if (c) {
    for (const SignalRecord& r : *records) {
      bool known = false;
      for (const RegionSpec& region : c->spec().regions) known = known || region.name == r.region;
      if (!known) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "history: region \"%s\" is not one of the steering table's regions", r.region));
      }
    }
  }
  // All or nothing: the store takes the rows (and the minutes they build) first; memory only
  // once they are written.
  SignalHistory next = history_;
  for (const SignalRecord& r : *records) next.Add(r);
  if (store_) {
    std::vector<SignalRecord> rows;
    std::set<std::pair<std::string, int64_t>> minutes;
    for (const SignalRecord& r : *records) {
      if (r.span == kFineSpan) {
        minutes.emplace(r.region, r.start / kCoarseSpan * kCoarseSpan);
        rows.push_back(r);
      } else {
        minutes.emplace(r.region, r.start);
      }
    }
    for (const auto& [region, start] : minutes) {
      absl::Time from = absl::FromUnixSeconds(start);
      if (auto mean = next.Mean(region, from, from + absl::Minutes(1))) {
        rows.push_back({region, start, kCoarseSpan, *mean});
      }
    }
    if (absl::Status s = store_->Write(rows); !s.ok()) return s;
  }
  history_ = std::move(next);
  detector_.HistoryChanged();
  chart_memo_.Clear();
  LOG_INFO("detection: %d history rows imported", records->size());
  return records->size();
}

namespace {

nlohmann::json ChartLineJson(const ChartLine& line) {
  nlohmann::json values = nlohmann::json::array();
  for (const std::optional<double>& v : line.values) {
    // Two decimals are plenty for a line on a screen, and keep a day's chart small.
    values.push_back(v ? nlohmann::json(std::round(*v * 100) / 100) : nlohmann::json(nullptr));
  }
  return nlohmann::json{{"start", line.start}, {"step", line.step}, {"values", values}};
}

}  // namespace

nlohmann::json DetectionControl::Chart(absl::Duration window, absl::Time now) const {
  const SignalHistory& baselines = config_.prometheus ? baseline_ : history_;
  std::set<std::string> regions;
  for (const std::string& r : history_.regions()) regions.insert(r);
  for (const auto& [region, judgement] : detector_.regions()) regions.insert(region);
  nlohmann::json out = nlohmann::json::object();
  for (const std::string& region : regions) {
    SignalChart c = BuildSignalChart(history_, baselines, detector_.options(), region, now, window,
                                     &chart_memo_);
    out[region] = nlohmann::json{{"now", ChartLineJson(c.now)},
                                 {"expected", ChartLineJson(c.expected)},
                                 {"day", ChartLineJson(c.day)},
                                 {"week", ChartLineJson(c.week)}};
  }
  return nlohmann::json{{"now", absl::ToUnixSeconds(now)},
                        {"window_seconds", absl::ToInt64Seconds(window)},
                        {"signal", "entry_sps"},
                        {"baseline", config_.prometheus ? "prometheus" : "history"},
                        {"regions", out}};
}

std::string DetectionControl::Export(absl::Time from, absl::Time to) const {
  return EncodeHistoryCsv(history_.Records(from, to));
}

json DetectionControl::Status() const {
  const absl::Time now = absl::Now();
  const DetectionMode m = mode();
  const Controller* c = steering_->controller();
  json out{{"mode", DetectionModeName(m)}};
  if (c && !c->state().detection_mode.empty()) {
    out["mode_set_by"] = c->state().detection_actor;
    out["mode_set_ms"] = TimeJson(c->state().detection_set);
  } else {
    out["mode_set_by"] = "configuration";
  }
  out["acting"] = m == DetectionMode::kAuto && Acting();
  out["role"] = !fleet_ ? "standalone" : fleet_->leader() ? "leader" : "follower";
  const DetectorOptions& o = detector_.options();
  out["options"] = json{{"dip_ratio", o.dip_ratio},
                        {"dip_for_seconds", absl::ToDoubleSeconds(o.dip_for)},
                        {"other_dip_ratio", o.other_dip_ratio},
                        {"min_expected_sps", o.min_expected_sps},
                        {"surge_ratio", o.surge_ratio},
                        {"window_seconds", absl::ToDoubleSeconds(o.window)},
                        {"smooth_seconds", absl::ToDoubleSeconds(o.smooth)},
                        {"shift_seconds", absl::ToDoubleSeconds(o.shift)},
                        {"cooldown_seconds", absl::ToDoubleSeconds(o.cooldown)}};
  out["history"] =
      json{{"file", store_ ? json(store_path_) : json(nullptr)}, {"slots", history_.size()}};
  if (!store_error_.empty()) out["history"]["error"] = store_error_;
  out["baseline"] = json{{"source", prometheus_ ? "prometheus" : "local"}};
  if (prometheus_) {
    out["baseline"]["url"] = prometheus_->url();
    out["baseline"]["fetched_ms"] = TimeJson(baseline_at_);
    out["baseline"]["slots"] = baseline_.size();
    if (!baseline_error_.empty()) out["baseline"]["error"] = baseline_error_;
  }
  const GlobalJudgement& g = detector_.global();
  out["global"] = json{{"verdict", GlobalVerdictName(g.verdict)},
                       {"region", g.region.empty() ? json(nullptr) : json(g.region)},
                       {"reason", g.reason},
                       {"since_ms", TimeJson(g.since)}};
  std::string held = detector_.held();
  if (m == DetectionMode::kAuto && !Acting() && g.verdict == GlobalVerdict::kSick) {
    held = "this node does not lead the fleet: the leader evacuates";
  }
  out["held"] = held.empty() ? json(nullptr) : json(held);
  json edges = json::object();
  for (const auto& [name, e] : edges_.edges()) {
    edges[name] = json{{"state", e.state}, {"since_ms", TimeJson(e.since)}, {"detail", e.detail}};
  }
  out["edges"] = edges;
  out["edge_dead_after_seconds"] = absl::ToDoubleSeconds(config_.edge_dead_after);
  json regions = json::object();
  for (const auto& [name, j] : detector_.regions()) {
    json r{{"verdict", RegionVerdictName(j.verdict)},
           {"reason", DescribeJudgement(j, o, now)},
           {"since_ms", TimeJson(j.since)},
           {"signal", j.signal.empty() ? json(nullptr) : json(j.signal)},
           {"sps", Judged(j.now, j.signal)},
           {"expected", j.has_expected ? json(Judged(j.expected, j.signal)) : json(nullptr)},
           {"ratio", j.signal.empty() ? json(nullptr) : json(j.ratio)},
           {"entry_sps", j.now.entry_sps},
           {"serving_sps", j.now.serving_sps},
           {"requests_per_second", j.now.requests_per_second},
           {"request_ratio", j.has_expected ? json(j.request_ratio) : json(nullptr)},
           {"below_since_ms", TimeJson(j.below_since)},
           {"baseline_1d", j.has_1d ? PointJson(j.baseline_1d) : json(nullptr)},
           {"baseline_7d", j.has_7d ? PointJson(j.baseline_7d) : json(nullptr)}};
    if (j.has_expected) {
      r["expected_entry_sps"] = j.expected.entry_sps;
      r["expected_serving_sps"] = j.expected.serving_sps;
      r["expected_requests_per_second"] = j.expected.requests_per_second;
    }
    regions[name] = std::move(r);
  }
  out["regions"] = std::move(regions);
  uint64_t total = 0;
  for (const auto& [reason, n] : evacuations_) total += n;
  out["evacuations"] = total;
  out["last_action"] = last_action_.empty() ? json(nullptr) : json(last_action_);
  out["last_action_ms"] = TimeJson(last_action_at_);
  return out;
}

void DetectionControl::FillGauges(NodeGauges* node) const {
  for (const auto& [name, j] : detector_.regions()) {
    NodeGauges::DetectionRegion d;
    d.region = name;
    d.has_expected = j.has_expected;
    d.expected_sps = Judged(j.expected, j.signal);
    d.has_ratio = !j.signal.empty();
    d.ratio = j.ratio;
    d.state = RegionVerdictName(j.verdict);
    node->detection.push_back(std::move(d));
  }
  for (const auto& [reason, n] : evacuations_) node->detection_evacuations.emplace_back(reason, n);
  for (const auto& [region, edge] : edges_.edges()) node->edges.emplace_back(region, edge.state);
}

}  // namespace sluice
