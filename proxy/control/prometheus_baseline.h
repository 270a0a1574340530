// The detector's baselines from a Prometheus server that scrapes the fleet (detection.baseline:
// prometheus), instead of this node's own history: the minute series of each region around the
// same time a day and a week before, and today's hour before, from range queries of
//   entry SPS     sum by (region) (rate(sluice_entry_stream_starts_total[RATE]))
//   serving SPS   sum by (region) (rate(sluice_stream_starts_total[RATE]))
//   requests/s    sum by (region) (rate(sluice_entry_requests_total[RATE]))
// (the same as `offset 1d` and `offset 7d` of those expressions at the present). A rate at T
// covers the minute that ends at T: it becomes the slot that starts at T - 60 s.
//
// Every answer is checked: anything but a successful matrix, a sample from the future, a value
// that is not a finite number >= 0 or a region that is no region name makes the whole fetch
// fail with a message; gaps stay gaps (the detector then has no verdict for that region).
//
// Control thread only.
#ifndef SLUICE_PROXY_CONTROL_PROMETHEUS_BASELINE_H_
#define SLUICE_PROXY_CONTROL_PROMETHEUS_BASELINE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/config/config.h"
#include "proxy/event/loop_context.h"
#include "proxy/http/control_http_client.h"
#include "steering/signal_history.h"

namespace sluice {

// A /api/v1/query_range answer: each series' `region` label and its samples (Unix seconds,
// value). Strict, as above.
using PrometheusMatrix = std::map<std::string, std::vector<std::pair<int64_t, double>>>;
absl::StatusOr<PrometheusMatrix> ParsePrometheusMatrix(std::string_view body, absl::Time now);

// "a b&c" -> "a%20b%26c": a query string value.
std::string PercentEncode(std::string_view text);

class PrometheusBaseline {
 public:
  using Done = std::function<void(absl::StatusOr<std::vector<SignalRecord>>)>;

  PrometheusBaseline(LoopContext* context, const DetectionConfig& config);
  PrometheusBaseline(const PrometheusBaseline&) = delete;
  PrometheusBaseline& operator=(const PrometheusBaseline&) = delete;
  ~PrometheusBaseline();

  // Fetches every region's minute series over the hour before `now`, and over
  // [now - L - max(around, 1h), now - L + around] for L = 1 day and 7 days. `done` runs once,
  // on the loop, never from inside this call. One fetch at a time.
  void Fetch(absl::Time now, absl::Duration around, Done done);
  bool busy() const { return static_cast<bool>(done_); }
  const std::string& url() const { return config_.prometheus_url.url; }

 private:
  struct Query {
    int component;  // 0 entry SPS, 1 serving SPS, 2 requests/s
    int64_t start, end;
  };
  void Next();
  void Send(const SocketAddress& address);
  void Finish(absl::Status status);

  LoopContext* context_;
  DetectionConfig config_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::vector<Query> queries_;
  size_t next_ = 0;
  absl::Time now_;
  std::map<std::pair<std::string, int64_t>, SignalPoint> points_;
  ControlHttpRequest* request_ = nullptr;
  Done done_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_PROMETHEUS_BASELINE_H_
