#include "proxy/control/prometheus_baseline.h"

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "proxy/net/name_lookup.h"
#include "steering/steering_table.h"

namespace sluice {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxAnswer = 16 * 1024 * 1024;
constexpr int64_t kStep = 60;
constexpr const char* kSeries[3] = {"sluice_entry_stream_starts_total",
                                    "sluice_stream_starts_total", "sluice_entry_requests_total"};

// Reports a failure on the loop, never from inside the call that found it.
struct Later final : DeferredTask {
  std::weak_ptr<bool> alive;
  std::function<void()> run;
  void RunDeferred() override {
    std::unique_ptr<Later> self(this);
    std::shared_ptr<bool> live = alive.lock();
    if (live && *live) run();
  }
};

}  // namespace

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

absl::StatusOr<PrometheusMatrix> ParsePrometheusMatrix(std::string_view body, absl::Time now) {
  json doc = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  auto bad = [](const std::string& what) {
    return absl::InvalidArgumentError("prometheus answer: " + what);
  };
  if (doc.is_discarded() || !doc.is_object()) return bad("not a JSON object");
  auto status = doc.find("status");
  if (status == doc.end() || !status->is_string()) return bad("no status");
  if (status->get<std::string>() != "success") {
    auto error = doc.find("error");
    return bad(absl::StrFormat(
        "%s: %s", status->get<std::string>(),
        error != doc.end() && error->is_string() ? error->get<std::string>().substr(0, 300) : ""));
  }
  auto data = doc.find("data");
  if (data == doc.end() || !data->is_object()) return bad("no data");
  auto type = data->find("resultType");
  if (type == data->end() || !type->is_string() || type->get<std::string>() != "matrix") {
    return bad("data.resultType: expected matrix");
  }
  auto result = data->find("result");
  if (result == data->end() || !result->is_array()) return bad("data.result: expected a list");
  const double latest = static_cast<double>(absl::ToUnixSeconds(now) + kStep);
  PrometheusMatrix out;
  for (const json& series : *result) {
    if (!series.is_object()) return bad("data.result[]: expected objects");
    auto metric = series.find("metric");
    auto values = series.find("values");
    if (metric == series.end() || !metric->is_object() || values == series.end() ||
        !values->is_array()) {
      return bad("data.result[]: expected metric and values");
    }
    auto region = metric->find("region");
    if (region == metric->end() || !region->is_string() ||
        !ValidRegionName(region->get<std::string>())) {
      return bad("data.result[].metric.region: expected a region name");
    }
    std::vector<std::pair<int64_t, double>>& samples = out[region->get<std::string>()];
    for (const json& sample : *values) {
      if (!sample.is_array() || sample.size() != 2 || !sample[0].is_number() ||
          !sample[1].is_string()) {
        return bad("values: expected [time, \"value\"] pairs");
      }
      double t = sample[0].get<double>();
      if (!std::isfinite(t) || t < 0) return bad("values: a bad time");
      if (t > latest) {
        return bad(absl::StrFormat("a sample at %.0f is in the future (now is %d)", t,
                                   absl::ToUnixSeconds(now)));
      }
      const std::string& text = sample[1].get_ref<const std::string&>();
      char* end = nullptr;
      double v = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size()) {
        return bad(absl::StrFormat("values: \"%s\" is not a number", text.substr(0, 40)));
      }
      if (std::isnan(v)) continue;  // a rate over no samples: a gap
      if (!std::isfinite(v) || v < 0 || v > 1e12) {
        return bad(absl::StrFormat("values: %s is not a rate", text.substr(0, 40)));
      }
      samples.emplace_back(static_cast<int64_t>(t), v);
    }
  }
  return out;
}

PrometheusBaseline::PrometheusBaseline(LoopContext* context, const DetectionConfig& config)
    : context_(context), config_(config) {}

PrometheusBaseline::~PrometheusBaseline() {
  *alive_ = false;
  if (request_) CancelControlHttpRequest(request_);
}

void PrometheusBaseline::Fetch(absl::Time now, absl::Duration around, Done done) {
  done_ = std::move(done);
  now_ = now;
  points_.clear();
  queries_.clear();
  next_ = 0;
  const int64_t t = absl::ToUnixSeconds(now) / kStep * kStep;
  const int64_t a = absl::ToInt64Seconds(around);
  const int64_t hour = 3600;
  // Samples at T are the minute [T - 60, T): one step later than the slots they fill.
  std::vector<std::pair<int64_t, int64_t>> windows = {{t - hour - 5 * kStep, t}};
  for (int64_t lag : {int64_t{86400}, int64_t{7 * 86400}}) {
    windows.emplace_back(t - lag - std::max(a, hour) - kStep, t - lag + a + kStep);
  }
  for (const auto& [start, end] : windows) {
    for (int c = 0; c < 3; ++c) queries_.push_back({c, start, end});
  }
  Next();
}

void PrometheusBaseline::Next() {
  if (next_ == queries_.size()) {
    Finish(absl::OkStatus());
    return;
  }
  const HttpOrigin& origin = config_.prometheus_url;
  if (!origin.named) {
    Send(origin.address);
    return;
  }
  std::weak_ptr<bool> alive = alive_;
  int rc = 0;
  auto on_resolved = [this, alive](absl::StatusOr<std::vector<SocketAddress>> addresses) {
    std::shared_ptr<bool> live = alive.lock();
    if (!live || !*live || !done_) return;
    if (!addresses.ok()) {
      Finish(absl::UnavailableError(absl::StrFormat(
          "cannot resolve %s: %s", config_.prometheus_url.host, addresses.status().message())));
      return;
    }
    Send((*addresses)[0]);
  };
  if (NameLookup::Start(context_->loop(), origin.host, origin.port, std::move(on_resolved), &rc)) {
    return;
  }
  auto* later = new Later;
  later->alive = alive_;
  later->run = [this, rc] {
    Finish(absl::UnavailableError(
        absl::StrFormat("cannot resolve %s: %s", config_.prometheus_url.host, uv_strerror(rc))));
  };
  context_->Schedule(later);
}

void PrometheusBaseline::Send(const SocketAddress& address) {
  const Query& q = queries_[next_];
  const std::string promql =
      absl::StrFormat("sum by (region) (rate(%s[%ds]))", kSeries[q.component],
                      absl::ToInt64Seconds(config_.prometheus_rate));
  const HttpOrigin& origin = config_.prometheus_url;
  std::string host =
      origin.named ? absl::StrFormat("%s:%d", origin.host, origin.port) : origin.address.ToString();
  std::string request = absl::StrFormat(
      "GET /api/v1/query_range?query=%s&start=%d&end=%d&step=%d HTTP/1.1\r\nHost: %s\r\n"
      "Accept: application/json\r\nUser-Agent: sluice-detection\r\nConnection: close\r\n\r\n",
      PercentEncode(promql), q.start, q.end, kStep, host);
  ControlHttpOptions options;
  options.timeout = config_.prometheus_timeout;
  options.max_reply = kMaxAnswer;
  request_ = StartControlHttpRequest(
      context_, address, std::move(request), std::move(options),
      [this](const ControlHttpReply& reply) {
        request_ = nullptr;
        if (!reply.ok) {
          Finish(absl::UnavailableError(
              absl::StrFormat("prometheus %s: %s", config_.prometheus_url.url, reply.error)));
          return;
        }
        if (reply.status != 200) {
          Finish(absl::UnavailableError(absl::StrFormat("prometheus %s answered %d: %s",
                                                        config_.prometheus_url.url, reply.status,
                                                        reply.body.substr(0, 300))));
          return;
        }
        absl::StatusOr<PrometheusMatrix> matrix = ParsePrometheusMatrix(reply.body, now_);
        if (!matrix.ok()) {
          Finish(matrix.status());
          return;
        }
        const int component = queries_[next_].component;
        for (const auto& [region, samples] : *matrix) {
          for (const auto& [t, value] : samples) {
            SignalPoint& p = points_[{region, t / kStep * kStep - kStep}];
            (component == 0   ? p.entry_sps
             : component == 1 ? p.serving_sps
                              : p.requests_per_second) = value;
          }
        }
        ++next_;
        Next();
      });
}

void PrometheusBaseline::Finish(absl::Status status) {
  Done done = std::move(done_);
  done_ = nullptr;
  if (!status.ok()) {
    done(status);
    return;
  }
  std::vector<SignalRecord> records;
  records.reserve(points_.size());
  for (const auto& [key, point] : points_) {
    records.push_back({key.first, key.second, kCoarseSpan, point});
  }
  done(std::move(records));
}

}  // namespace sluice
