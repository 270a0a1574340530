// Realistic per-second stream starts for the detector's replay test: each region follows a
// diurnal curve in its own time zone (low before dawn, peak in the evening), a weekly shape
// (weekends higher), a slow growth trend, Poisson noise per second and a slowly wandering
// level (a few percent, minute to minute), plus effects a test injects: a holiday bump, a
// global dip, a surge into one region, a regional fault. A region may have empty nights and
// a steep morning that starts up to `morning_jitter` earlier or later from day to day.
#ifndef SLUICE_TESTS_STEERING_SPS_GENERATOR_H_
#define SLUICE_TESTS_STEERING_SPS_GENERATOR_H_

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "steering/signal_history.h"

namespace sluice::replay {

struct RegionShape {
  std::string name;
  double peak_sps = 1000;
  int utc_offset_hours = 0;
  double night_floor = 0.15;          // share of the peak at the quietest hour
  bool empty_nights = false;          // 0 from 23:00 to the morning, full from the morning
  double morning_jitter_minutes = 0;  // empty_nights: how much the morning moves day to day
  double requests_per_start = 4;
};

// Multiplies a region's (or every region's: region -1) signal over [from, to).
struct Effect {
  int region = -1;
  absl::Time from, to;
  double sps = 1;       // stream starts
  double requests = 1;  // requests
};

class SpsGenerator {
 public:
  SpsGenerator(std::vector<RegionShape> regions, absl::Time start, uint64_t seed)
      : regions_(std::move(regions)), start_(start), random_(seed), level_(regions_.size(), 1.0) {}

  void AddEffect(const Effect& effect) { effects_.push_back(effect); }
  const std::vector<RegionShape>& regions() const { return regions_; }

  // The shape without noise or effects: stream starts per second.
  double Mean(size_t r, absl::Time t) const {
    const RegionShape& shape = regions_[r];
    const double seconds = absl::ToDoubleSeconds(t - start_) + shape.utc_offset_hours * 3600.0;
    const double day = std::floor(seconds / 86400);
    const double hour = (seconds - day * 86400) / 3600;
    double curve;
    if (shape.empty_nights) {
      // The morning starts at 06:00 give or take the day's jitter, full two hours later.
      double jitter = shape.morning_jitter_minutes / 60 * std::sin(day * 2.39996 + r);
      double rise = 6 + jitter;
      if (hour < rise)
        curve = 0;
      else if (hour < rise + 2)
        curve = (hour - rise) / 2;
      else if (hour < 22)
        curve = 1;
      else if (hour < 23)
        curve = 23 - hour;
      else
        curve = 0;
    } else {
      // Quietest at 05:00, busiest at 17:00 (evening streaming).
      double wave = 0.5 - 0.5 * std::cos(2 * M_PI * (hour - 5) / 24);
      curve = shape.night_floor + (1 - shape.night_floor) * std::pow(wave, 1.5);
    }
    const int weekday = static_cast<int>(std::fmod(day, 7));  // day 0 is a Monday
    const double week = weekday >= 5 ? 1.15 : weekday == 4 ? 1.05 : 1.0;
    const double growth = 1 + 0.002 * day;  // 0.2% a day
    return shape.peak_sps * curve * week * growth;
  }

  // One second of every region: fleet-wide sums as the detector gets them.
  std::vector<SignalPoint> Second(absl::Time t) {
    std::vector<SignalPoint> out(regions_.size());
    const bool new_minute = absl::ToUnixSeconds(t) % 60 == 0;
    for (size_t r = 0; r < regions_.size(); ++r) {
      if (new_minute) {
        // A level that wanders a few percent from minute to minute, pulled back to 1.
        level_[r] = 1 + 0.8 * (level_[r] - 1) + 0.015 * normal_(random_);
      }
      double sps = Mean(r, t) * level_[r];
      double requests = sps * regions_[r].requests_per_start;
      for (const Effect& e : effects_) {
        if ((e.region < 0 || e.region == static_cast<int>(r)) && t >= e.from && t < e.to) {
          sps *= e.sps;
          requests *= e.requests;
        }
      }
      sps = Poisson(sps);
      requests = Poisson(requests);
      out[r] = SignalPoint{sps, sps, requests};
    }
    return out;
  }

 private:
  double Poisson(double mean) {
    if (mean <= 0) return 0;
    if (mean < 30) return static_cast<double>(std::poisson_distribution<int>(mean)(random_));
    return std::max(0.0, std::round(mean + std::sqrt(mean) * normal_(random_)));
  }

  std::vector<RegionShape> regions_;
  absl::Time start_;
  std::mt19937_64 random_;
  std::normal_distribution<double> normal_{0, 1};
  std::vector<double> level_;
  std::vector<Effect> effects_;
};

}  // namespace sluice::replay

#endif  // SLUICE_TESTS_STEERING_SPS_GENERATOR_H_
