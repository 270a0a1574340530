// The metrics part of one request's forwarding (see proxy/forward/forwarder.h): the worker's
// counters for the exchange, its upstream attempts and its retries. Each is a relaxed add to
// a cell the snapshot resolved by index: no lookup, no lock, no allocation per request.
#include "absl/time/clock.h"
#include "common/clock.h"
#include "proxy/forward/forwarder.h"

namespace sluice {

void Forwarder::RecordUpstreamHead(int status) {
  ClusterCell* cell = attempt_.cluster() ? attempt_.cluster()->cell : nullptr;
  if (!cell) return;
  cell->latency.Observe(context_->clock().MonotonicNanos() - attempt_started_ns_);
  cell->responses[StatusClassIndex(status)].Add();
}

void Forwarder::RecordUpstreamFailure(UpstreamFailure kind) {
  ClusterCell* cell = attempt_.cluster() ? attempt_.cluster()->cell : nullptr;
  if (cell) cell->failures[static_cast<int>(kind)].Add();
}

void Forwarder::RecordRetry() {
  // Counted at the cluster whose attempt failed, by what failed (kNone: a status code).
  ClusterCell* cell = attempt_.cluster() ? attempt_.cluster()->cell : nullptr;
  if (cell) cell->retries[static_cast<int>(filter_.context.last_failure)].Add();
}

void Forwarder::RecordExchange() {
  if (recorded_ || !request_ || !snapshot_->metrics) return;
  recorded_ = true;
  const WorkerSnapshot& s = *snapshot_;
  const Config& config = *s.config;
  const size_t route = route_ >= 0 ? static_cast<size_t>(route_) : config.routes.size();
  const size_t cluster = route_ >= 0 && attempt_.cluster() ? attempt_.cluster()->index : 0;
  const int status = outcome_.status;
  if (!config.clusters.empty()) {
    s.exchange(route, cluster)
        ->requests[StatusClassIndex(status)][steering_.decision_label()]
        .Add();
  }
  RouteCell* route_cell = s.route_cells[route];
  route_cell->latency.Observe(context_->clock().MonotonicNanos() - filter_.context.started_ns);
  route_cell->bytes_in.Add(bytes_in_);
  route_cell->bytes_out.Add(bytes_out_);
  if (route_ >= 0 && outcome_.answered_by_filter && run_.responder() >= 0) {
    const std::vector<RejectCell*>& rejects = s.reject_cells[route];
    if (static_cast<size_t>(run_.responder()) < rejects.size()) {
      rejects[static_cast<size_t>(run_.responder())]->requests.Add();
    }
  }
  if (s.access_log && s.access_log->Sampled(status)) WriteAccessLog(route);
  const bool tunneled_in = steering_.tunneled_in();
  if (!tunneled_in) {
    s.metrics->requests_entered.Add();
    const int cohort = steering_.cohort();
    if (cohort >= 0 && cohort < WorkerMetrics::kMaxCohortCounters) {
      s.metrics->entered_by_cohort[cohort].Add();
    }
  }
  // A stream start is counted where the request entered, for the region that served it.
  if (!tunneled_in && route_ >= 0 && status != 0) {
    for (const StreamStartRule& rule : config.stream_starts) {
      if (status < rule.status_min || status > rule.status_max) continue;
      if (!rule.method.empty() && rule.method != request_->method_text) continue;
      if (!rule.route.empty() && rule.route != config.routes[route].name) continue;
      if (!rule.path_prefix.empty() && !request_->path.starts_with(rule.path_prefix)) continue;
      int region = 0;
      if (steering_.on()) region = steering_.serving_region();
      if (static_cast<size_t>(region) < s.region_cells.size()) {
        s.region_cells[static_cast<size_t>(region)]->stream_starts.Add();
      }
      break;
    }
  }
}

void Forwarder::WriteAccessLog(size_t route) {
  const WorkerSnapshot& s = *snapshot_;
  const Config& config = *s.config;
  AccessLogRecord r;
  r.unix_micros = absl::ToUnixMicros(absl::Now());
  if (!config.proxy.request_id_header.empty()) {
    r.request_id = request_->headers.Get(config.proxy.request_id_header).value_or("");
  }
  std::string client = filter_.context.client.ToString();
  r.client = client;
  r.method = request_->method_text;
  r.host = request_->host;
  r.path = request_->path;
  r.status = outcome_.status;
  r.bytes_in = bytes_in_;
  r.bytes_out = bytes_out_;
  r.duration_us = (context_->clock().MonotonicNanos() - filter_.context.started_ns) / 1000;
  const bool routed = route_ >= 0;
  if (routed) r.route = config.routes[route].name;
  std::string endpoint;
  if (routed && attempt_.cluster()) {
    r.cluster = attempt_.cluster()->config.name;
    if (attempt_.endpoint() && filter_.context.attempts > 0) {
      endpoint = attempt_.endpoint()->name();
      r.endpoint = endpoint;
    }
  }
  r.decision = DecisionLabel(steering_.decision_label());
  if (steering_.on()) r.region = steering_.table()->region(steering_.serving_region()).name;
  r.retries = filter_.context.attempts > 1 ? filter_.context.attempts - 1 : 0;
  if (routed && outcome_.answered_by_filter && run_.responder() >= 0) {
    r.rejected = s.chains[route].at(static_cast<size_t>(run_.responder())).name();
  }
  s.access_log->Append(r);
}

}  // namespace sluice
