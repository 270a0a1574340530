// The access log: one JSON line per request (a sampled share of the successful ones, every
// 5xx and every exchange that got no status), formatted on the worker that served it and
// written off the request path.
//
// Each worker appends lines to its own AccessLogBuffer and hands the batch to the process's
// AccessLogSink when it is large or a moment old (one lock per batch, none per request). The
// sink writes batches on its own thread, so a slow disk never stalls a worker loop; if the
// disk falls far behind, whole batches are dropped and counted rather than held without bound.
// SIGUSR1 reopens the file (log rotation: rename the file, send the signal).
//
// Secrets stay out: no query strings (they carry tokens), no header values but the request id.
#ifndef SLUICE_PROXY_OBSERVE_ACCESS_LOG_H_
#define SLUICE_PROXY_OBSERVE_ACCESS_LOG_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/timeout_queue.h"

namespace sluice {

// What one line says.
struct AccessLogRecord {
  int64_t unix_micros = 0;
  std::string_view request_id;
  std::string_view client;  // address:port
  std::string_view method;
  std::string_view host;
  std::string_view path;  // normalized, without the query
  int status = 0;         // 0: the client got none
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  int64_t duration_us = 0;
  std::string_view route;
  std::string_view cluster;
  std::string_view endpoint;
  std::string_view decision;
  std::string_view region;    // the region that served it; empty without steering
  int retries = 0;            // attempts after the first
  std::string_view rejected;  // the filter that answered itself (shed, rate_limit, auth...)
};

// Appends `r` as one JSON line (with the newline).
void AppendAccessLogLine(const AccessLogRecord& r, std::string* out);

class AccessLogSink {
 public:
  // "stdout" or a file path (opened for appending, created 0640).
  static absl::StatusOr<std::unique_ptr<AccessLogSink>> Open(const std::string& path);
  ~AccessLogSink();  // writes what is queued, then stops the thread
  AccessLogSink(const AccessLogSink&) = delete;
  AccessLogSink& operator=(const AccessLogSink&) = delete;

  // Any thread.
  void Submit(std::string batch);
  void Reopen() { reopen_.store(true); }
  uint64_t dropped_lines() const { return dropped_lines_.load(); }
  const std::string& path() const { return path_; }

 private:
  AccessLogSink(std::string path, int fd);
  void Run();
  void Write(const std::string& batch);

  const std::string path_;
  int fd_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::string> queue_;  // guarded by mutex_
  size_t queued_bytes_ = 0;        // guarded by mutex_
  bool stop_ = false;              // guarded by mutex_
  std::atomic<bool> reopen_{false};
  std::atomic<uint64_t> dropped_lines_{0};
};

// A worker's side of the access log. Loop thread only.
class AccessLogBuffer final : private TimeoutTarget {
 public:
  explicit AccessLogBuffer(LoopContext* context) : context_(context), timeout_(this) {}
  ~AccessLogBuffer() override { Flush(); }

  // Null sink: logging is off.
  void Configure(std::shared_ptr<AccessLogSink> sink, double sample);
  bool enabled() const { return sink_ != nullptr; }
  // Whether this exchange gets a line: every 5xx and status-less one, a sample of the rest.
  bool Sampled(int status);
  void Append(const AccessLogRecord& record);
  void Flush();

 private:
  void OnTimeout(Timeout*) override { Flush(); }

  LoopContext* context_;
  Timeout timeout_;
  std::shared_ptr<AccessLogSink> sink_;
  uint64_t sample_threshold_ = 0;  // of a 64-bit random value; UINT64_MAX: everything
  std::string batch_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_OBSERVE_ACCESS_LOG_H_
