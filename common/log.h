// Process-wide logging: one line per event on stderr, written with a single write(2) so that
// lines from several worker threads never interleave. Never logs request credentials.
#ifndef SLUICE_COMMON_LOG_H_
#define SLUICE_COMMON_LOG_H_

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
