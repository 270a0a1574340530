// The history and audit handlers of the admin API (proxy/admin/admin_api.h): GET and POST
// /v1/history (the detector's signal history as CSV), GET /v1/history/chart, and GET /v1/audit
// with its query and its answer. Part of the AdminApi; split from admin_api.cc, which keeps the
// routes, the screening and the other handlers.
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "common/units.h"
#include "proxy/admin/admin_api.h"
#include "proxy/admin/admin_api_internal.h"
#include "steering/signal_chart.h"

namespace sluice {

using admin_internal::Error;
using admin_internal::Json;
using admin_internal::json;
using admin_internal::Text;

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
