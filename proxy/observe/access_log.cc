#include "proxy/observe/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/log.h"

namespace sluice {
namespace {

// A batch goes to the sink at this size, or this long after its first line.
constexpr size_t kBatchBytes = 64 * 1024;
constexpr absl::Duration kBatchAge = absl::Milliseconds(200);
// Beyond this much waiting for the disk, batches are dropped (and counted).
constexpr size_t kMaxQueuedBytes = 64 * 1024 * 1024;

// A JSON string: quotes, backslashes and control characters escaped; bytes that are not
// printable ASCII as \u00XX (paths are normalized, but nothing here trusts that).
void AppendJsonString(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the bytes that need no escaping, appended in one go
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
    } else {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void LogField(const char* name, std::string_view value, std::string* out) {
  out->push_back(',');
  out->push_back('"');
  out->append(name);
  out->append("\":");
  AppendJsonString(value, out);
}

void LogField(const char* name, int64_t value, std::string* out) {
  absl::StrAppend(out, ",\"", name, "\":", value);
}

// ".007": a fraction in thousandths.
void AppendThousandths(int n, std::string* out) {
  char digits[4] = {'.', static_cast<char>('0' + n / 100), static_cast<char>('0' + n / 10 % 10),
                    static_cast<char>('0' + n % 10)};
  out->append(digits, 4);
}

int OpenPath(const std::string& path) {
  if (path == "stdout") return ::dup(STDOUT_FILENO);
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

}  // namespace

void AppendAccessLogLine(const AccessLogRecord& r, std::string* out) {
  // The date and time to the second change once a second: formatted then, reused until.
  thread_local int64_t cached_second = -1;
  thread_local std::string cached_text;
  int64_t second = r.unix_micros >= 0 ? r.unix_micros / 1000000 : -1;
  if (second != cached_second) {
    cached_second = second;
    cached_text =
        absl::FormatTime("%Y-%m-%dT%H:%M:%S", absl::FromUnixSeconds(second), absl::UTCTimeZone());
  }
  out->append("{\"time\":\"").append(cached_text);
  AppendThousandths(static_cast<int>((r.unix_micros % 1000000) / 1000), out);
  out->append("Z\"");
  LogField("request_id", r.request_id, out);
  LogField("client", r.client, out);
  LogField("method", r.method, out);
  LogField("host", r.host, out);
  LogField("path", r.path, out);
  LogField("status", r.status, out);
  LogField("bytes_in", static_cast<int64_t>(r.bytes_in), out);
  LogField("bytes_out", static_cast<int64_t>(r.bytes_out), out);
  int64_t us = r.duration_us > 0 ? r.duration_us : 0;
  absl::StrAppend(out, ",\"duration_ms\":", us / 1000);
  AppendThousandths(static_cast<int>(us % 1000), out);
  LogField("route", r.route, out);
  LogField("cluster", r.cluster, out);
  LogField("endpoint", r.endpoint, out);
  LogField("decision", r.decision, out);
  LogField("region", r.region, out);
  LogField("retries", r.retries, out);
  LogField("rejected_by", r.rejected, out);
  out->append("}\n");
}

absl::StatusOr<std::unique_ptr<AccessLogSink>> AccessLogSink::Open(const std::string& path) {
  int fd = OpenPath(path);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("access_log.path: cannot open %s: %s", path, std::strerror(errno)));
  }
  return std::unique_ptr<AccessLogSink>(new AccessLogSink(path, fd));
}

AccessLogSink::AccessLogSink(std::string path, int fd) : path_(std::move(path)), fd_(fd) {
  thread_ = std::thread([this] { Run(); });
}

AccessLogSink::~AccessLogSink() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

void AccessLogSink::Submit(std::string batch) {
  if (batch.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queued_bytes_ + batch.size() > kMaxQueuedBytes) {
      uint64_t lines = 0;
      for (char c : batch) lines += c == '\n';
      dropped_lines_.fetch_add(lines);
      return;
    }
    queued_bytes_ += batch.size();
    queue_.push_back(std::move(batch));
  }
  wake_.notify_one();
}

void AccessLogSink::Run() {
  SetLogThreadName("access-log");
  uint64_t reported_drops = 0;
  for (;;) {
    std::deque<std::string> batches;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_for(lock, std::chrono::seconds(1),
                     [this] { return stop_ || !queue_.empty() || reopen_.load(); });
      batches.swap(queue_);
      queued_bytes_ = 0;
      stopping = stop_;
    }
    if (reopen_.exchange(false)) {
      int fd = OpenPath(path_);
      if (fd < 0) {
        LOG_ERROR("access log: cannot reopen %s: %s; still writing to the old file", path_,
                  std::strerror(errno));
      } else {
        ::close(fd_);
        fd_ = fd;
        LOG_INFO("access log reopened: %s", path_);
      }
    }
    for (const std::string& batch : batches) Write(batch);
    if (uint64_t dropped = dropped_lines_.load(); dropped != reported_drops) {
      LOG_WARN("access log: %d lines dropped so far (the disk is behind)", dropped);
      reported_drops = dropped;
    }
    if (stopping) return;
  }
}

void AccessLogSink::Write(const std::string& batch) {
  std::string_view rest = batch;
  while (!rest.empty()) {
    ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      LOG_ERROR("access log %s: %s", path_, std::strerror(errno));
      return;
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
}

void AccessLogBuffer::Configure(std::shared_ptr<AccessLogSink> sink, double sample) {
  if (sink != sink_) Flush();
  sink_ = std::move(sink);
  if (sample >= 1) {
    sample_threshold_ = std::numeric_limits<uint64_t>::max();
  } else {
    sample_threshold_ =
        static_cast<uint64_t>(sample * static_cast<double>(std::numeric_limits<uint64_t>::max()));
  }
}

bool AccessLogBuffer::Sampled(int status) {
  if (!sink_) return false;
  if (status >= 500 || status == 0) return true;
  return sample_threshold_ == std::numeric_limits<uint64_t>::max() ||
         context_->Random() < sample_threshold_;
}

void AccessLogBuffer::Append(const AccessLogRecord& record) {
  if (!sink_) return;
  if (batch_.empty()) timeout_.Arm(context_->Timeouts(kBatchAge));
  AppendAccessLogLine(record, &batch_);
  if (batch_.size() >= kBatchBytes) Flush();
}

void AccessLogBuffer::Flush() {
  timeout_.Disarm();
  if (batch_.empty() || !sink_) {
    batch_.clear();
    return;
  }
  std::string batch;
  batch.swap(batch_);
  sink_->Submit(std::move(batch));
}

}  // namespace sluice
