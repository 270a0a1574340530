#include "steering/signal_history.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "steering/steering_table.h"

namespace sluice {
namespace {

int64_t Floor(int64_t t, int64_t span) {
  int64_t q = t / span;
  if (t % span != 0 && t < 0) --q;
  return q * span;
}

SignalPoint Scaled(const SignalPoint& p, double k) {
  return {p.entry_sps * k, p.serving_sps * k, p.requests_per_second * k};
}

void Accumulate(SignalPoint* sum, const SignalPoint& p, double sign) {
  sum->entry_sps += sign * p.entry_sps;
  sum->serving_sps += sign * p.serving_sps;
  sum->requests_per_second += sign * p.requests_per_second;
}

// The most rows one import may hold: 15 days of minutes and a day of 10 s slots for 40
// regions, with room to spare.
constexpr size_t kMaxCsvRows = 2'000'000;
constexpr char kCsvHeader[] = "time,span,region,entry_sps,serving_sps,requests_per_second";

}  // namespace

void SignalHistory::AddFine(Series* s, int64_t start, const SignalPoint& p) {
  Minute& minute = s->coarse[Floor(start, kCoarseSpan)];
  if (!minute.from_slots) minute = Minute{{}, 0, true};  // a 60 s row: its slots replace it
  if (auto it = s->fine.find(start); it != s->fine.end()) {
    Accumulate(&minute.sum, it->second, -1);
    --minute.count;
    it->second = p;
  } else {
    s->fine.emplace(start, p);
  }
  if (minute.count <= 0) {
    // Only this slot: start the sum again (no rounding left over from subtractions).
    minute = Minute{{}, 0, true};
  }
  Accumulate(&minute.sum, p, 1);
  ++minute.count;
}

std::optional<SignalRecord> SignalHistory::Observe(const std::string& region, absl::Time now,
                                                   const SignalPoint& point) {
  Series& s = series_[region];
  const int64_t slot = Floor(absl::ToUnixSeconds(now), kFineSpan);
  std::optional<SignalRecord> closed;
  if (s.open.slot != slot) {
    if (s.open.count > 0 && s.open.slot < slot) {
      SignalPoint mean = Scaled(s.open.sum, 1.0 / s.open.count);
      AddFine(&s, s.open.slot, mean);
      closed = SignalRecord{region, s.open.slot, kFineSpan, mean};
    }
    s.open = Open{slot, {}, 0};
  }
  Accumulate(&s.open.sum, point, 1);
  ++s.open.count;
  return closed;
}

void SignalHistory::Add(const SignalRecord& record) {
  Series& s = series_[record.region];
  if (record.span == kFineSpan) {
    AddFine(&s, Floor(record.start, kFineSpan), record.point);
  } else {
    Minute& minute = s.coarse[Floor(record.start, kCoarseSpan)];
    if (!minute.from_slots) minute = Minute{record.point, 1, false};
  }
}

void SignalHistory::Trim(absl::Time now) {
  const int64_t t = absl::ToUnixSeconds(now);
  const int64_t fine_from = t - absl::ToInt64Seconds(kFineRetention);
  const int64_t coarse_from = t - absl::ToInt64Seconds(kCoarseRetention);
  for (auto& [region, s] : series_) {
    s.fine.erase(s.fine.begin(), s.fine.lower_bound(fine_from));
    s.coarse.erase(s.coarse.begin(), s.coarse.lower_bound(coarse_from));
  }
}

std::optional<SignalPoint> SignalHistory::Mean(const std::string& region, absl::Time from,
                                               absl::Time to) const {
  auto found = series_.find(region);
  if (found == series_.end()) return std::nullopt;
  const Series& s = found->second;
  const int64_t first = Floor(absl::ToUnixSeconds(from), kCoarseSpan);
  const int64_t end = absl::ToUnixSeconds(to);
  if (end <= first) return std::nullopt;
  const int64_t minutes = (end - first + kCoarseSpan - 1) / kCoarseSpan;
  SignalPoint sum;
  int64_t present = 0;
  for (auto it = s.coarse.lower_bound(first); it != s.coarse.end() && it->first < end; ++it) {
    if (it->second.count <= 0) continue;
    Accumulate(&sum, Scaled(it->second.sum, 1.0 / it->second.count), 1);
    ++present;
  }
  if (present == 0 || present * 2 < minutes) return std::nullopt;
  return Scaled(sum, 1.0 / static_cast<double>(present));
}

std::vector<SignalRecord> SignalHistory::Records(absl::Time from, absl::Time to) const {
  // Times before 1970 hold nothing (and InfinitePast must not overflow the rounding).
  const int64_t a = std::max<int64_t>(absl::ToUnixSeconds(from), 0);
  const int64_t b = absl::ToUnixSeconds(to);
  std::vector<SignalRecord> out;
  for (const auto& [region, s] : series_) {
    // A minute that has 10 s slots is exported as those slots (an import rebuilds it from
    // them); the others as minutes.
    for (auto it = s.coarse.lower_bound(Floor(a, kCoarseSpan)); it != s.coarse.end(); ++it) {
      if (it->first >= b) break;
      if (it->first < a || it->second.count <= 0) continue;
      auto fine = s.fine.lower_bound(it->first);
      if (fine != s.fine.end() && fine->first < it->first + kCoarseSpan) continue;
      out.push_back(
          {region, it->first, kCoarseSpan, Scaled(it->second.sum, 1.0 / it->second.count)});
    }
    for (auto it = s.fine.lower_bound(a); it != s.fine.end() && it->first < b; ++it) {
      out.push_back({region, it->first, kFineSpan, it->second});
    }
  }
  return out;
}

std::vector<SignalRecord> SignalHistory::Fine(const std::string& region, absl::Time from,
                                              absl::Time to) const {
  std::vector<SignalRecord> out;
  auto found = series_.find(region);
  if (found == series_.end()) return out;
  const int64_t b = absl::ToUnixSeconds(to);
  for (auto it = found->second.fine.lower_bound(absl::ToUnixSeconds(from));
       it != found->second.fine.end() && it->first < b; ++it) {
    out.push_back({region, it->first, kFineSpan, it->second});
  }
  return out;
}

std::vector<std::string> SignalHistory::regions() const {
  std::vector<std::string> out;
  for (const auto& [region, s] : series_) out.push_back(region);
  return out;
}

size_t SignalHistory::size() const {
  size_t n = 0;
  for (const auto& [region, s] : series_) n += s.fine.size() + s.coarse.size();
  return n;
}

std::string EncodeHistoryCsv(const std::vector<SignalRecord>& records) {
  std::string out = absl::StrCat("# sluice-history/1\n", kCsvHeader, "\n");
  for (const SignalRecord& r : records) {
    absl::StrAppendFormat(&out, "%d,%d,%s,%.6g,%.6g,%.6g\n", r.start, r.span, r.region,
                          r.point.entry_sps, r.point.serving_sps, r.point.requests_per_second);
  }
  return out;
}

absl::StatusOr<std::vector<SignalRecord>> DecodeHistoryCsv(std::string_view text, absl::Time now) {
  std::vector<SignalRecord> out;
  bool header = false;
  int line_number = 0;
  const int64_t latest = absl::ToUnixSeconds(now) + kFineSpan;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_number;
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    auto error = [&](const std::string& what) {
      return absl::InvalidArgumentError(absl::StrFormat("history line %d: %s", line_number, what));
    };
    if (!header) {
      if (line != kCsvHeader)
        return error(absl::StrCat("expected the header \"", kCsvHeader, "\""));
      header = true;
      continue;
    }
    std::vector<absl::string_view> f = absl::StrSplit(line, ',');
    if (f.size() != 6) return error(absl::StrFormat("expected 6 fields, got %d", f.size()));
    SignalRecord r;
    if (!absl::SimpleAtoi(f[0], &r.start) || r.start < 0) {
      return error(absl::StrCat("time: not a Unix time in seconds: \"", f[0], "\""));
    }
    if (!absl::SimpleAtoi(f[1], &r.span) || (r.span != kFineSpan && r.span != kCoarseSpan)) {
      return error(absl::StrCat("span: must be 10 or 60, got \"", f[1], "\""));
    }
    if (r.start % r.span != 0) {
      return error(absl::StrFormat("time %d is not a multiple of the span %d", r.start, r.span));
    }
    if (r.start > latest - r.span) {
      return error(absl::StrFormat("time %d is in the future (now is %d)", r.start,
                                   absl::ToUnixSeconds(now)));
    }
    if (!ValidRegionName(std::string_view(f[2].data(), f[2].size())))
      return error(absl::StrCat("region: bad name \"", f[2], "\""));
    r.region = std::string(f[2]);
    double* values[3] = {&r.point.entry_sps, &r.point.serving_sps, &r.point.requests_per_second};
    static constexpr const char* kNames[3] = {"entry_sps", "serving_sps", "requests_per_second"};
    for (int i = 0; i < 3; ++i) {
      if (!absl::SimpleAtod(f[3 + i], values[i]) || !std::isfinite(*values[i]) || *values[i] < 0 ||
          *values[i] > 1e9) {
        return error(absl::StrCat(kNames[i], ": must be a number 0..1e9, got \"", f[3 + i], "\""));
      }
    }
    if (out.size() >= kMaxCsvRows) return error(absl::StrFormat("more than %d rows", kMaxCsvRows));
    out.push_back(std::move(r));
  }
  if (!header) return absl::InvalidArgumentError("history: empty (no header line)");
  if (out.empty()) return absl::InvalidArgumentError("history: no rows after the header");
  return out;
}

}  // namespace sluice
