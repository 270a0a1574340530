// Time as filters, limiters and caches see it, injected so their tests run in microseconds
// without sleeping (STYLE.md rule 6).
#ifndef SLUICE_COMMON_CLOCK_H_
#define SLUICE_COMMON_CLOCK_H_

#include <cstdint>

namespace sluice {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic nanoseconds, for durations (latency, refill, windows).
  virtual int64_t MonotonicNanos() const = 0;
  // Seconds since the Unix epoch, for wall-clock facts (token expiry).
  virtual int64_t UnixSeconds() const = 0;
};

// The real clocks (CLOCK_MONOTONIC and CLOCK_REALTIME, both read through the vDSO).
Clock& SystemClock();

// A clock that moves only when told. Tests only.
class FakeClock : public Clock {
 public:
  int64_t MonotonicNanos() const override { return nanos_; }
  int64_t UnixSeconds() const override { return unix_seconds_; }
  void AdvanceNanos(int64_t n) { nanos_ += n; }
  void AdvanceMillis(int64_t ms) { nanos_ += ms * 1000000; }
  void AdvanceSeconds(int64_t s) {
    nanos_ += s * 1000000000;
    unix_seconds_ += s;
  }
  void SetUnixSeconds(int64_t s) { unix_seconds_ = s; }

 private:
  int64_t nanos_ = 1000000000;
  int64_t unix_seconds_ = 1800000000;  // 2027-01-15
};

}  // namespace sluice

#endif  // SLUICE_COMMON_CLOCK_H_
