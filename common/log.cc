#include "common/log.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>

namespace sluice {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
thread_local char t_thread_name[16] = "main";

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

}  // namespace

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  return absl::InvalidArgumentError(
      absl::StrFormat("log level must be debug, info, warn or error, got \"%s\"", name));
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void SetLogThreadName(std::string_view name) {
  size_t n = std::min(name.size(), sizeof(t_thread_name) - 1);
  std::memcpy(t_thread_name, name.data(), n);
  t_thread_name[n] = '\0';
}

void LogLine(LogLevel level, std::string_view message) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  std::string line =
      absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      static_cast<int>(ts.tv_nsec / 1000000), t_thread_name, LevelName(level));
  line.append(message);
  line.push_back('\n');
  // One write per line: POSIX keeps writes of this size to a pipe or file atomic enough that
  // lines from different threads do not interleave.
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

}  // namespace sluice
