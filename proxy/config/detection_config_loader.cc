#include "proxy/config/detection_config_loader.h"

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace sluice {
namespace {

absl::Status ReadRatio(const Field& f, double* out, double min, double max) {
  return f.ReadDouble(out, min, max);
}

absl::Status ReadSteps(const Field& f, std::vector<uint32_t>* out) {
  if (!f.present()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<Field> items, f.Sequence());
  if (items.empty() || items.size() > 20) return f.Error("must list 1..20 steps");
  std::vector<uint32_t> steps;
  for (const Field& item : items) {
    ASSIGN_OR_RETURN(std::string text, item.Scalar());
    uint32_t bp = 0;
    if (!ParseBasisPoints(text, &bp) || bp == 0) {
      return item.Error(absl::StrFormat(
          "expected a fraction above 0 such as 25%%, 0.5%% or 2500bp (at most 100%%), got \"%s\"",
          text));
    }
    if (!steps.empty() && bp <= steps.back()) return item.Error("steps must rise");
    steps.push_back(bp);
  }
  if (steps.back() != 10000) return items.back().Error("the last step must be 100%");
  *out = std::move(steps);
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseDetection(const Field& f, const std::string& base_dir, const Config& config,
                            DetectionConfig* out) {
  if (!config.controller.state_file.empty()) {
    out->history_file = config.controller.state_file + ".history.db";
  }
  if (!f.present()) return absl::OkStatus();
  RETURN_IF_ERROR(
      f.ExpectMap({"mode", "history_file", "dip_ratio", "dip_for", "other_dip_ratio",
                   "min_expected_sps", "surge_ratio", "window", "smooth", "shift", "cooldown",
                   "evacuate", "baseline", "prometheus", "edge_dead_after"}));
  if (!config.steering.enabled) {
    return f.Error("needs a steering: section (the detector judges its regions)");
  }
  if (Field mode = f.Child("mode"); mode.present()) {
    ASSIGN_OR_RETURN(std::string text, mode.Scalar());
    if (!ParseDetectionMode(text, &out->mode)) {
      return mode.Error(absl::StrFormat("expected off, alert or auto, got \"%s\"", text));
    }
  }
  if (Field history = f.Child("history_file"); history.present()) {
    RETURN_IF_ERROR(history.Read(&out->history_file));
    if (out->history_file.empty()) return history.Error("must name a file");
    out->history_file = ResolveConfigPath(out->history_file, base_dir);
  }
  DetectorOptions& o = out->options;
  RETURN_IF_ERROR(ReadRatio(f.Child("dip_ratio"), &o.dip_ratio, 0.01, 0.99));
  RETURN_IF_ERROR(ReadRatio(f.Child("other_dip_ratio"), &o.other_dip_ratio, 0.01, 1));
  if (o.other_dip_ratio < o.dip_ratio) {
    return f.Child("other_dip_ratio").Error("must be at least dip_ratio");
  }
  RETURN_IF_ERROR(f.Child("min_expected_sps").ReadDouble(&o.min_expected_sps, 0.001, 1e9));
  RETURN_IF_ERROR(ReadRatio(f.Child("surge_ratio"), &o.surge_ratio, 1.01, 1000));
  RETURN_IF_ERROR(f.Child("dip_for").ReadDuration(&o.dip_for, absl::Seconds(1)));
  RETURN_IF_ERROR(
      f.Child("edge_dead_after").ReadDuration(&out->edge_dead_after, absl::ZeroDuration()));
  RETURN_IF_ERROR(f.Child("window").ReadDuration(&o.window, absl::Seconds(1)));
  RETURN_IF_ERROR(f.Child("smooth").ReadDuration(&o.smooth, absl::Minutes(1)));
  RETURN_IF_ERROR(f.Child("shift").ReadDuration(&o.shift, absl::ZeroDuration()));
  RETURN_IF_ERROR(f.Child("cooldown").ReadDuration(&o.cooldown, absl::ZeroDuration()));
  if (o.window > absl::Minutes(1)) return f.Child("window").Error("must be at most 1m");
  if (o.dip_for > absl::Minutes(10)) return f.Child("dip_for").Error("must be at most 10m");
  if (o.smooth > absl::Hours(1)) return f.Child("smooth").Error("must be at most 1h");
  if (o.shift > absl::Hours(3)) return f.Child("shift").Error("must be at most 3h");
  if (Field baseline = f.Child("baseline"); baseline.present()) {
    ASSIGN_OR_RETURN(std::string text, baseline.Scalar());
    if (text != "local" && text != "prometheus") {
      return baseline.Error(absl::StrFormat("expected local or prometheus, got \"%s\"", text));
    }
    out->prometheus = text == "prometheus";
  }
  Field prometheus = f.Child("prometheus");
  if (out->prometheus && !prometheus.present()) {
    return prometheus.Error("required with baseline: prometheus ({url: http://HOST:9090})");
  }
  if (prometheus.present()) {
    RETURN_IF_ERROR(prometheus.ExpectMap({"url", "rate", "timeout"}));
    Field url = prometheus.Child("url");
    if (!url.present()) return url.Error("required: http://HOST:PORT of the Prometheus server");
    ASSIGN_OR_RETURN(std::string text, url.Scalar());
    absl::StatusOr<HttpOrigin> origin = ParseHttpOrigin(text);
    if (!origin.ok()) return url.Error(std::string(origin.status().message()));
    if (origin->tls)
      return url.Error("https is not supported here yet: use http on a private address");
    out->prometheus_url = *origin;
    RETURN_IF_ERROR(
        prometheus.Child("rate").ReadDuration(&out->prometheus_rate, absl::Seconds(10)));
    RETURN_IF_ERROR(prometheus.Child("timeout").ReadDuration(&out->prometheus_timeout,
                                                             absl::Milliseconds(100)));
  }
  if (Field e = f.Child("evacuate"); e.present()) {
    RETURN_IF_ERROR(e.ExpectMap({"saviors", "steps", "hold"}));
    if (Field s = e.Child("saviors"); s.present()) {
      ASSIGN_OR_RETURN(auto entries, s.Entries());
      for (const auto& [name, weight] : entries) {
        bool known = false;
        for (const RegionSpec& r : config.steering.spec.regions) known = known || r.name == name;
        if (!known) return weight.Error(absl::StrFormat("no region named \"%s\"", name));
        uint32_t value = 0;
        RETURN_IF_ERROR(weight.ReadInt(&value, 0, kMaxSaviorWeight));
        out->saviors[name] = value;
      }
    }
    RETURN_IF_ERROR(ReadSteps(e.Child("steps"), &out->steps_bp));
    RETURN_IF_ERROR(e.Child("hold").ReadDuration(&out->hold, absl::ZeroDuration()));
  }
  return absl::OkStatus();
}

}  // namespace sluice
