// The sick-region detector (DESIGN.md, "Failing a region over", step 1): is one region sick,
// so that its members should be evacuated? Fed once a second with each region's fleet-wide
// signal (stream starts per second by entry region and by serving region, requests per second
// entering it) and compared with the same time a day and a week before from the history.
//
// Expected value of a signal at time t (for entry SPS, serving SPS and the request rate alike):
//   b(L) = min over shifts s in {-shift, .., +shift} (5 min apart) of
//          mean of the minute series over [t - L + s - smooth, t - L + s + smooth)
//   for L = 1 day and 7 days. Taking the lowest over the shifts tolerates a day whose curve
//   runs up to `shift` late (a region going from nothing to full at its morning).
//   Both known and within a factor 0.75 of each other: expected = their mean. Both known but
//   apart: one of them was itself abnormal; keep the one whose hour before (t - L - 60 min ..
//   t - L - 10 min) was nearer today's hour before, or the lower one when today's is unknown.
//   One known: that one. None: no verdict.
//
// The judged ratio is the lower of entry SPS / expected and serving SPS / expected (a region
// whose origins fail while its failover keeps its members served still dips in the second);
// SPS now is the mean over the last `window`. Per region:
//   evacuated   an evacuation is in force or running (fraction > 0, or an active plan): not
//               judged again until it is back at 0 and the cool-down has passed;
//   no_verdict  no node of the region reports, no history, or expected below min_expected_sps;
//   dipping     the ratio stayed below dip_ratio for dip_for;
//   vetoed      dipping while its request rate is above surge_ratio x expected: a surge (a
//               DDoS) would follow the traffic to a savior; or dipping without a request-rate
//               baseline (a surge cannot be ruled out);
//   sick        the only region dipping, no other judged region below other_dip_ratio, and
//               at least one other region judged (else nothing says the others are fine);
//   ok          otherwise.
// Global: sick (one region), multi_region_dip (two or more regions low together: an alert,
// never an evacuation), vetoed, ok, or no_verdict when no region could be judged.
//
// A sick region is to be evacuated (Action) unless the mode is not auto, another region is
// evacuated or evacuating (one at a time), or a cool-down after the last evacuation or
// restore of any region is running. The caller carries the action out and says how it went.
//
// Pure logic: no I/O, time is an argument, the history is read, never written. Not
// thread-safe.
#ifndef SLUICE_STEERING_DETECTOR_H_
#define SLUICE_STEERING_DETECTOR_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "steering/signal_history.h"

namespace sluice {

enum class DetectionMode : uint8_t { kOff, kAlert, kAuto };
const char* DetectionModeName(DetectionMode mode);
bool ParseDetectionMode(std::string_view text, DetectionMode* mode);

struct DetectorOptions {
  double dip_ratio = 0.6;
  absl::Duration dip_for = absl::Seconds(8);
  double other_dip_ratio = 0.8;
  double min_expected_sps = 5;
  double surge_ratio = 2;
  absl::Duration window = absl::Seconds(3);
  absl::Duration smooth = absl::Minutes(5);
  absl::Duration shift = absl::Minutes(30);
  absl::Duration cooldown = absl::Minutes(10);
  // A failed evacuation (the controller refused it) is tried again after this long.
  absl::Duration retry_after = absl::Seconds(30);
};

enum class RegionVerdict : uint8_t { kNoVerdict, kOk, kDipping, kVetoed, kSick, kEvacuated };
const char* RegionVerdictName(RegionVerdict verdict);
enum class GlobalVerdict : uint8_t { kNoVerdict, kOk, kSick, kMultiRegionDip, kVetoed };
const char* GlobalVerdictName(GlobalVerdict verdict);

// One region, as observed this second.
struct RegionSignal {
  std::string region;
  bool reported = false;  // every live node of the region reports a signal
  SignalPoint now;        // fleet-wide sums, this second
  // An evacuation is in force or running (fraction > 0, or an active plan): not judged.
  bool evacuated = false;
  std::string evacuated_detail;  // "evacuated 25%", "plan 3 running"
  size_t nodes = 0;  // how many report: a change restarts the region's window and dip timer
};

// What the detector thinks of one region.
struct RegionJudgement {
  RegionVerdict verdict = RegionVerdict::kNoVerdict;
  std::string note;  // no_verdict and evacuated: why (DescribeJudgement says the rest)
  absl::Time since = absl::InfinitePast();  // the verdict's
  SignalPoint now;                          // mean over the window
  SignalPoint expected;                     // 0 where unknown
  bool has_expected = false;
  SignalPoint baseline_1d, baseline_7d;  // the two baselines; has_*: known
  bool has_1d = false, has_7d = false;
  double ratio = 0;          // the judged (lower) one; 0 when there is none
  std::string signal;        // which one: "entry" or "serving"
  double request_ratio = 0;  // requests/s now / expected
  // No request-rate baseline: a surge cannot be ruled out, so a dip is vetoed too.
  bool no_request_baseline = false;
  absl::Time below_since = absl::InfiniteFuture();  // below dip_ratio since
};

// Why a region has its verdict, in words, with today's figures.
std::string DescribeJudgement(const RegionJudgement& j, const DetectorOptions& options,
                              absl::Time now);

struct GlobalJudgement {
  GlobalVerdict verdict = GlobalVerdict::kNoVerdict;
  std::string region;  // sick or vetoed: which
  std::string reason;  // as of when the verdict was reached
  absl::Time since = absl::InfinitePast();
};

// The expected value of a region's signal at one time, by the rule above, from the history
// alone (the detector keeps it for the minute; the console draws it as a line).
struct ExpectedSignal {
  bool has = false;  // one baseline at least is known: `value` holds the expected value
  bool has_1d = false, has_7d = false;
  SignalPoint value;   // the expected value
  SignalPoint b1, b7;  // the baselines a day and a week before
};
ExpectedSignal ComputeExpected(const SignalHistory& history, const std::string& region,
                               absl::Time now, const DetectorOptions& options);

// A verdict changed (for the log and the audit trail). `region` empty: the global verdict.
struct DetectorEvent {
  absl::Time time;
  std::string region;
  std::string from, to;
  std::string reason;
};

// Evacuate this region now.
struct DetectorAction {
  std::string region;
  std::string reason;  // "us-east-1 serving SPS at 0.12x expected for 8s"
  std::string signal;  // "entry" or "serving": the metric's label
};

class Detector {
 public:
  Detector(DetectorOptions options, const SignalHistory* history)
      : options_(options), history_(history) {}

  void set_mode(DetectionMode mode) { mode_ = mode; }
  DetectionMode mode() const { return mode_; }
  const DetectorOptions& options() const { return options_; }
  void set_options(const DetectorOptions& options);
  // The history changed other than by adding the present (an import): expected values are
  // computed again (they are otherwise kept for the minute).
  void HistoryChanged();
  // Where the baselines come from from now on (the caller keeps it alive).
  void set_history(const SignalHistory* history) {
    history_ = history;
    HistoryChanged();
  }

  // One observation of every region (normally once a second). Updates the judgements and
  // returns what to do: an evacuation, in auto mode.
  std::optional<DetectorAction> Observe(absl::Time now, const std::vector<RegionSignal>& regions);
  // An evacuation or restore happened at `when` (from the steering state: plans' start and
  // end times, so that a restart or another node's plan still starts the cool-down).
  void NoteChange(absl::Time when) { last_change_ = std::max(last_change_, when); }
  // The caller tried the action: on failure, the region is tried again after retry_after.
  void ActionDone(const std::string& region, bool ok, absl::Time now);

  const std::map<std::string, RegionJudgement>& regions() const { return judged_; }
  const GlobalJudgement& global() const { return global_; }
  // In auto mode, why a sick region is not evacuated now ("" when nothing holds it).
  const std::string& held() const { return held_; }
  uint64_t evacuations() const { return evacuations_; }
  std::vector<DetectorEvent> TakeEvents();

 private:
  struct Expected : ExpectedSignal {
    int64_t minute = -1;  // the minute it was computed for
  };
  struct Track {
    std::deque<std::pair<absl::Time, SignalPoint>> recent;  // the window, oldest first
    Expected expected;
    bool evacuated = false;
    absl::Time acted = absl::InfinitePast();  // last action for this region
    bool action_failed = false;
    size_t nodes = 0;
  };
  const Expected& ExpectedAt(const std::string& region, Track* track, absl::Time now);
  void Judge(const RegionSignal& signal, Track* track, absl::Time now, RegionJudgement* j);
  void SetVerdict(const std::string& region, RegionJudgement* j, RegionVerdict verdict,
                  absl::Time now);

  DetectorOptions options_;
  const SignalHistory* history_;
  DetectionMode mode_ = DetectionMode::kOff;
  std::map<std::string, Track> tracks_;
  std::map<std::string, RegionJudgement> judged_;
  GlobalJudgement global_;
  absl::Time last_change_ = absl::InfinitePast();  // of any region's evacuation
  std::string held_;
  uint64_t evacuations_ = 0;
  std::vector<DetectorEvent> events_;
};

}  // namespace sluice

#endif  // SLUICE_STEERING_DETECTOR_H_
