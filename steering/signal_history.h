// The history of each region's business signal (DESIGN.md, "Failing a region over", step 1):
// stream starts per second of the members who entered the region (entry), stream starts
// served by the region (serving), and the requests entering it per second, as fleet-wide sums.
// Two series per region: every 10 s for the last day, every minute for the last 15 days. The
// detector asks for the mean over a span of the minute series (the same time a day and a week
// before); the console draws the 10 s series.
//
// The runtime adds one observation per region per second; the observations of a 10 s slot
// are averaged when the slot closes, and the closed slot is returned so that the caller can
// persist it (proxy/control/history_store.h). Imported history arrives as closed slots of
// 10 s or 60 s.
//
// Pure logic, time is an argument. Not thread-safe.
#ifndef SLUICE_STEERING_SIGNAL_HISTORY_H_
#define SLUICE_STEERING_SIGNAL_HISTORY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sluice {

struct SignalPoint {
  double entry_sps = 0;            // stream starts/s of members who entered the region
  double serving_sps = 0;          // stream starts/s served by the region
  double requests_per_second = 0;  // requests/s entering the region
};

// One closed slot of a series: `span` seconds (10 or 60) starting at `start` (Unix seconds,
// a multiple of the span).
struct SignalRecord {
  std::string region;
  int64_t start = 0;
  int span = 10;
  SignalPoint point;
};

inline constexpr int kFineSpan = 10;
inline constexpr int kCoarseSpan = 60;
inline constexpr absl::Duration kFineRetention = absl::Hours(24);
inline constexpr absl::Duration kCoarseRetention = absl::Hours(24 * 15);

class SignalHistory {
 public:
  // One observation of `region` at `now` (normally once a second). Returns the 10 s slot
  // that this observation closed, if any (the previous slot of that region).
  std::optional<SignalRecord> Observe(const std::string& region, absl::Time now,
                                      const SignalPoint& point);
  // A closed slot from the store or an import. A 10 s slot also counts toward its minute
  // (replacing what the same slot added before; a minute set whole by a 60 s row is rebuilt
  // from its slots); a 60 s slot sets the minute, unless slots already built it (they are
  // the finer truth, and the store writes a minute beside its slots).
  void Add(const SignalRecord& record);
  // Drops what is older than the retention of each series.
  void Trim(absl::Time now);

  // The mean of the minute series of `region` over [from, to): nullopt when fewer than half
  // of those minutes hold data.
  std::optional<SignalPoint> Mean(const std::string& region, absl::Time from, absl::Time to) const;

  // Every slot of both series in [from, to), oldest first by region (for export).
  std::vector<SignalRecord> Records(absl::Time from, absl::Time to) const;
  // The 10 s series of `region` over [from, to) (for the console).
  std::vector<SignalRecord> Fine(const std::string& region, absl::Time from, absl::Time to) const;
  std::vector<std::string> regions() const;
  size_t size() const;  // slots held, both series

 private:
  struct Minute {
    SignalPoint sum;
    int count = 0;
    bool from_slots = false;  // built from 10 s slots (else set whole, from a 60 s row)
  };
  struct Open {
    int64_t slot = -1;  // start of the open 10 s slot
    SignalPoint sum;
    int count = 0;
  };
  struct Series {
    std::map<int64_t, SignalPoint> fine;  // by start
    std::map<int64_t, Minute> coarse;     // by start
    Open open;
  };
  static void AddFine(Series* s, int64_t start, const SignalPoint& p);

  std::map<std::string, Series, std::less<>> series_;
};

// CSV, the format of `sluicectl history import|export`:
//   # sluice-history/1
//   time,span,region,entry_sps,serving_sps,requests_per_second
//   1764000000,60,us-east-1,100.5,100.5,500
// `time` is Unix seconds (a multiple of the span), `span` 10 or 60. Parsing is all or nothing:
// an error names the line and what is wrong. Rows later than `now` (plus one slot) are
// refused: history from the future would make any verdict wrong.
std::string EncodeHistoryCsv(const std::vector<SignalRecord>& records);
absl::StatusOr<std::vector<SignalRecord>> DecodeHistoryCsv(std::string_view text, absl::Time now);

}  // namespace sluice

#endif  // SLUICE_STEERING_SIGNAL_HISTORY_H_
