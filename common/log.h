// Process-wide logging: one line per event on stderr, written with a single write(2) so that
// lines from several worker threads never interleave. Never logs request credentials.
#ifndef SLUICE_COMMON_LOG_H_
#define SLUICE_COMMON_LOG_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"

namespace sluice {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);

// Names the calling thread in its log lines ("main", "w0", ...). Call once per thread.
void SetLogThreadName(std::string_view name);

// Writes "<UTC time> <thread> <level> <message>\n" to stderr.
void LogLine(LogLevel level, std::string_view message);

// Lines of one kind at most `per_second` a second (a burst of that many at once); the others
// are counted, and the next line that goes says how many were held back. Not thread-safe: one
// per thread (a worker's loop).
class LogRateLimit {
 public:
  explicit LogRateLimit(int per_second) : per_second_(per_second) {}
  // True if a line may go at `now_ns` (monotonic); `*held_back` is then how many did not since.
  bool Allow(int64_t now_ns, uint64_t* held_back) {
    if (now_ns - window_start_ns_ >= 1'000'000'000) {
      window_start_ns_ = now_ns;
      in_window_ = 0;
    }
    if (in_window_ >= per_second_) {
      ++held_back_;
      return false;
    }
    ++in_window_;
    *held_back = held_back_;
    held_back_ = 0;
    return true;
  }

 private:
  const int per_second_;
  int in_window_ = 0;
  int64_t window_start_ns_ = INT64_MIN / 2;
  uint64_t held_back_ = 0;
};

}  // namespace sluice

#define SLUICE_LOG(level, ...)                                                    \
  do {                                                                            \
    if (::sluice::LogEnabled(::sluice::LogLevel::level)) {                        \
      ::sluice::LogLine(::sluice::LogLevel::level, absl::StrFormat(__VA_ARGS__)); \
    }                                                                             \
  } while (0)

#define LOG_DEBUG(...) SLUICE_LOG(kDebug, __VA_ARGS__)
#define LOG_INFO(...) SLUICE_LOG(kInfo, __VA_ARGS__)
#define LOG_WARN(...) SLUICE_LOG(kWarning, __VA_ARGS__)
#define LOG_ERROR(...) SLUICE_LOG(kError, __VA_ARGS__)

#endif  // SLUICE_COMMON_LOG_H_
