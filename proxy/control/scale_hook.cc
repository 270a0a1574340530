#include "proxy/control/scale_hook.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "proxy/net/name_lookup.h"

extern char** environ;

namespace sluice {
namespace {

// After the program exited, how long its output may stay open (a child it left behind holds
// the pipe) before the report goes without the rest.
constexpr uint64_t kOutputDrainMs = 1000;
// A webhook's answer is read up to this much (its tail is kept); more is an error.
constexpr size_t kMaxWebhookReply = 1024 * 1024;
constexpr const char* kHookVariables[] = {"SLUICE_PLAN=", "SLUICE_REGION=", "SLUICE_SAVIORS="};

// "60s" for whole seconds (as configured), else absl's form ("1.5s", "300ms").
std::string HookDurationText(absl::Duration d) {
  if (d % absl::Seconds(1) == absl::ZeroDuration()) {
    return absl::StrFormat("%ds", absl::ToInt64Seconds(d));
  }
  return absl::FormatDuration(d);
}

// Keeps the last `max` bytes of `text`; true when some were dropped.
bool KeepTail(std::string* text, size_t max) {
  if (text->size() <= max) return false;
  text->erase(0, text->size() - max);
  return true;
}

// Replaces every byte that is not part of a well-formed UTF-8 sequence (RFC 3629) with '?':
// what a hook prints ends up in logs and JSON answers.
void MakeValidUtf8(std::string* text) {
  std::string& s = *text;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80                 ? 1
                 : c >= 0xC2 && c <= 0xDF ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    bool valid = len > 0 && i + len <= s.size();
    for (size_t k = 1; valid && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      unsigned char lo = 0x80, hi = 0xBF;
      if (k == 1 && c == 0xE0) lo = 0xA0;  // overlong
      if (k == 1 && c == 0xED) hi = 0x9F;  // surrogates
      if (k == 1 && c == 0xF0) lo = 0x90;  // overlong
      if (k == 1 && c == 0xF4) hi = 0x8F;  // above U+10FFFF
      valid = b >= lo && b <= hi;
    }
    if (!valid) {
      s[i] = '?';
      len = 1;
    }
    i += len;
  }
}

}  // namespace

// One run of the hook program: its process (in a group of its own), the pipe its stdout and
// stderr share, and one timer (the drain after exit, or the grace between SIGTERM and SIGKILL).
// Frees itself once the three handles are closed, which may be after its runner is gone.
class HookProcess {
 public:
  struct Exit {
    int64_t status = 0;
    int signal = 0;
    bool terminated = false;  // Terminate() was called
    std::string output;
    bool truncated = false;
  };
  using Done = std::function<void(Exit)>;

  // Starts `argv` with `input` on its stdin. Null, with `*error` set, when it cannot start.
  // `done` runs once, from a loop callback, after the program exited.
  static HookProcess* Start(uv_loop_t* loop, const std::vector<std::string>& argv,
                            const std::vector<std::string>& env, std::string_view input, Done done,
                            std::string* error) {
    auto* self = new HookProcess(std::move(done));
    self->Open(loop);
    if (!self->Spawn(loop, argv, env, input, error)) {
      self->done_ = nullptr;
      self->CloseHandles();
      return nullptr;
    }
    return self;
  }

  // SIGTERM to the process group now, SIGKILL after `grace`; the report waits for the exit.
  void Terminate(absl::Duration grace) {
    if (finished_ || terminating_) return;
    terminating_ = true;
    exit_.terminated = true;
    KillGroup(SIGTERM);
    uv_timer_start(&timer_, &HookProcess::OnTimerCallback,
                   static_cast<uint64_t>(std::max<int64_t>(1, absl::ToInt64Milliseconds(grace))),
                   0);
  }
  // `done` will not run.
  void Detach() { done_ = nullptr; }

 private:
  explicit HookProcess(Done done) : done_(std::move(done)) {}
  ~HookProcess() = default;

  void Open(uv_loop_t* loop) {
    uv_timer_init(loop, &timer_);
    uv_pipe_init(loop, &output_, 0);
    timer_.data = output_.data = process_.data = this;
    open_handles_ = 2;
  }

  bool Spawn(uv_loop_t* loop, const std::vector<std::string>& argv,
             const std::vector<std::string>& env, std::string_view input, std::string* error) {
    const std::string& program = argv[0];
    auto fail = [&](const char* what, int rc) {
      *error = absl::StrFormat("cannot start %s: %s%s", program, what, uv_strerror(rc));
      return false;
    };
    // The call is written into stdin's pipe before the program starts: no write can meet a
    // program that exited without reading, and the pipe is at its end once the call is read.
    uv_file in[2];
    if (int rc = uv_pipe(in, 0, UV_NONBLOCK_PIPE); rc != 0) return fail("a pipe: ", rc);
    if (static_cast<int>(input.size()) > ::fcntl(in[1], F_GETPIPE_SZ)) {
      ::fcntl(in[1], F_SETPIPE_SZ, static_cast<int>(input.size()));
    }
    ssize_t written = ::write(in[1], input.data(), input.size());
    int write_errno = errno;
    ::close(in[1]);
    if (written != static_cast<ssize_t>(input.size())) {
      ::close(in[0]);
      return fail("stdin: ", written < 0 ? uv_translate_sys_error(write_errno) : UV_ENOBUFS);
    }
    uv_file out[2];
    if (int rc = uv_pipe(out, UV_NONBLOCK_PIPE, 0); rc != 0) {
      ::close(in[0]);
      return fail("a pipe: ", rc);
    }

    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> vars;
    for (const std::string& e : env) vars.push_back(const_cast<char*>(e.c_str()));
    vars.push_back(nullptr);
    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_INHERIT_FD;
    stdio[0].data.fd = in[0];
    stdio[1].flags = stdio[2].flags = UV_INHERIT_FD;
    stdio[1].data.fd = stdio[2].data.fd = out[1];
    uv_process_options_t options{};
    options.file = program.c_str();
    options.args = args.data();
    options.env = vars.data();
    options.stdio_count = 3;
    options.stdio = stdio;
    // setsid(): a group of its own, which a timeout kills as a whole.
    options.flags = UV_PROCESS_DETACHED;
    options.exit_cb = &HookProcess::OnExitCallback;
    int rc = uv_spawn(loop, &process_, &options);
    ++open_handles_;  // initialized even when the spawn failed
    process_open_ = true;
    ::close(in[0]);
    ::close(out[1]);
    if (rc != 0) {
      ::close(out[0]);
      return fail("", rc);
    }
    pgid_ = process_.pid;
    // Without its output the exit still reports.
    if (uv_pipe_open(&output_, out[0]) != 0) {
      ::close(out[0]);
      eof_ = true;
    } else if (uv_read_start(reinterpret_cast<uv_stream_t*>(&output_), &HookProcess::OnAlloc,
                             &HookProcess::OnReadCallback) != 0) {
      eof_ = true;  // the pipe's fd goes with the handle
    }
    return true;
  }

  static void OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
    auto* self = static_cast<HookProcess*>(handle->data);
    *buf = uv_buf_init(self->buffer_, sizeof(self->buffer_));
  }
  static void OnReadCallback(uv_stream_t* stream, ssize_t n, const uv_buf_t* buf) {
    static_cast<HookProcess*>(stream->data)->OnRead(n, buf);
  }
  static void OnExitCallback(uv_process_t* process, int64_t status, int signal) {
    static_cast<HookProcess*>(process->data)->OnExit(status, signal);
  }
  static void OnTimerCallback(uv_timer_t* timer) {
    static_cast<HookProcess*>(timer->data)->OnTimer();
  }
  static void OnClosedCallback(uv_handle_t* handle) {
    auto* self = static_cast<HookProcess*>(handle->data);
    if (--self->open_handles_ == 0) delete self;
  }

  void OnRead(ssize_t n, const uv_buf_t* buf) {
    if (n > 0) {
      exit_.output.append(buf->base, static_cast<size_t>(n));
      // Trimmed in batches, not at every read.
      if (exit_.output.size() > 2 * ScaleHookRunner::kMaxOutput) {
        exit_.truncated |= KeepTail(&exit_.output, ScaleHookRunner::kMaxOutput);
      }
      return;
    }
    if (n == 0) return;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&output_));
    eof_ = true;
    if (exited_) Finish();
  }

  void OnExit(int64_t status, int signal) {
    exited_ = true;
    exit_.status = status;
    exit_.signal = signal;
    if (eof_ || killed_) {
      Finish();
    } else if (!terminating_) {
      uv_timer_start(&timer_, &HookProcess::OnTimerCallback, kOutputDrainMs, 0);
    }
  }

  void OnTimer() {
    if (!terminating_) {
      Finish();  // the drain after the exit is over
      return;
    }
    KillGroup(SIGKILL);
    killed_ = true;
    if (exited_) Finish();
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    // The leader is gone; whatever of its group is left goes too.
    if (terminating_ && !killed_) KillGroup(SIGKILL);
    uv_timer_stop(&timer_);
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&output_));
    exit_.truncated |= KeepTail(&exit_.output, ScaleHookRunner::kMaxOutput);
    MakeValidUtf8(&exit_.output);
    Done done = std::move(done_);
    done_ = nullptr;
    CloseHandles();
    if (done) done(std::move(exit_));
  }

  // The group the program leads (its pid: setsid()); never 0, which would be ours.
  void KillGroup(int signal) {
    if (pgid_ > 0) ::kill(-pgid_, signal);
  }

  void CloseHandles() {
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &HookProcess::OnClosedCallback);
    uv_close(reinterpret_cast<uv_handle_t*>(&output_), &HookProcess::OnClosedCallback);
    if (process_open_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&process_), &HookProcess::OnClosedCallback);
    }
  }

  uv_process_t process_{};
  uv_pipe_t output_{};
  uv_timer_t timer_{};
  int open_handles_ = 0;
  bool process_open_ = false;
  int pgid_ = 0;
  bool exited_ = false;
  bool eof_ = false;
  bool terminating_ = false;
  bool killed_ = false;
  bool finished_ = false;
  Exit exit_;
  Done done_;
  char buffer_[8192];
};

std::string ScaleHookJson(const ScaleHookCall& call) {
  nlohmann::ordered_json doc;
  doc["plan"] = call.plan_id;
  doc["region"] = call.region;
  doc["saviors"] = nlohmann::ordered_json::object();
  for (const auto& [region, weight] : call.saviors) doc["saviors"][region] = weight;
  doc["predictions"] = nlohmann::ordered_json::array();
  for (const ScaleHookCall::Savior& s : call.predictions) {
    doc["predictions"].push_back({{"region", s.region},
                                  {"capacity_rps", s.capacity_rps},
                                  {"load_rps", s.load_rps},
                                  {"predicted_rps", s.predicted_rps},
                                  {"predicted_utilization", s.predicted_utilization}});
  }
  return doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string ScaleHookSaviorList(const ScaleHookCall& call) {
  std::string out;
  for (const auto& [region, weight] : call.saviors) {
    if (!out.empty()) out += ',';
    absl::StrAppendFormat(&out, "%s=%d", region, weight);
  }
  return out;
}

ScaleHookRunner::ScaleHookRunner(LoopContext* context, ScaleHookConfig config)
    : context_(context), config_(std::move(config)) {}

ScaleHookRunner::~ScaleHookRunner() { Cancel(); }

void ScaleHookRunner::Run(const ScaleHookCall& call, Done done) {
  if (running()) {
    ScaleHookResult busy;
    busy.error = "a scale hook is already running";
    refused_.emplace_back(std::move(done), std::move(busy));
    context_->Schedule(this);
    return;
  }
  done_ = std::move(done);
  LOG_INFO("scale hook: plan %d evacuates %s to %s: running %s", call.plan_id, call.region,
           ScaleHookSaviorList(call),
           config_.exec.empty() ? "POST " + config_.url.origin.url : config_.exec[0]);
  const uint64_t ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(config_.timeout));
  deadline_.Start(context_->loop(), ms, 0, [this] { OnDeadline(); });
  if (config_.exec.empty()) {
    StartRequest(call);
  } else {
    StartProcess(call);
  }
}

void ScaleHookRunner::StartProcess(const ScaleHookCall& call) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    bool ours = false;
    for (const char* name : kHookVariables)
      ours = ours || std::strncmp(*e, name, std::strlen(name)) == 0;
    if (!ours) env.emplace_back(*e);
  }
  env.push_back(absl::StrFormat("SLUICE_PLAN=%d", call.plan_id));
  env.push_back("SLUICE_REGION=" + call.region);
  env.push_back("SLUICE_SAVIORS=" + ScaleHookSaviorList(call));
  std::string error;
  process_ = HookProcess::Start(
      context_->loop(), config_.exec, env, ScaleHookJson(call),
      [this](HookProcess::Exit exit) {
        process_ = nullptr;
        ScaleHookResult result;
        result.output = std::move(exit.output);
        result.output_truncated = exit.truncated;
        if (exit.terminated) {
          result.error = "timed out after " + HookDurationText(config_.timeout);
        } else if (exit.signal != 0) {
          result.error = absl::StrFormat("killed by signal %d", exit.signal);
        } else if (exit.status != 0) {
          result.error = absl::StrFormat("exited with status %d", exit.status);
        }
        result.ok = result.error.empty();
        Finish(std::move(result));
      },
      &error);
  if (!process_) {
    ScaleHookResult result;
    result.error = std::move(error);
    FinishLater(std::move(result));
  }
}

void ScaleHookRunner::StartRequest(const ScaleHookCall& call) {
  body_ = ScaleHookJson(call);
  const HttpOrigin& origin = config_.url.origin;
  if (!origin.named) {
    Send(origin.address);
    return;
  }
  int rc = 0;
  lookup_ = NameLookup::Start(
      context_->loop(), origin.host, origin.port,
      [this](absl::StatusOr<std::vector<SocketAddress>> addresses) {
        lookup_ = nullptr;
        if (!addresses.ok()) {
          ScaleHookResult result;
          result.error = absl::StrFormat("cannot resolve %s: %s", config_.url.origin.host,
                                         addresses.status().message());
          Finish(std::move(result));
          return;
        }
        Send((*addresses)[0]);
      },
      &rc);
  if (!lookup_) {
    ScaleHookResult result;
    result.error = absl::StrFormat("cannot resolve %s: %s", origin.host, uv_strerror(rc));
    FinishLater(std::move(result));
  }
}

void ScaleHookRunner::Send(const SocketAddress& address) {
  const HttpOrigin& origin = config_.url.origin;
  std::string host =
      origin.named ? absl::StrFormat("%s:%d", origin.host, origin.port) : origin.address.ToString();
  std::string request = absl::StrFormat(
      "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sluice-scale-hook\r\n"
      "Content-Type: application/json\r\nContent-Length: %d\r\n",
      config_.url.target, host, body_.size());
  for (const auto& [name, value] : config_.headers) {
    absl::StrAppendFormat(&request, "%s: %s\r\n", name, value);
  }
  request += "Connection: close\r\n\r\n";
  request += body_;
  ControlHttpOptions options;
  // The deadline reports first; this only frees the connection should it not.
  options.timeout = config_.timeout + absl::Seconds(1);
  options.max_reply = kMaxWebhookReply;
  if (origin.tls) {
    options.tls = config_.tls.context;
    options.server_name = config_.tls.server_name.empty() ? origin.host : config_.tls.server_name;
  }
  request_ = StartControlHttpRequest(context_, address, std::move(request), std::move(options),
                                     [this](const ControlHttpReply& reply) {
                                       request_ = nullptr;
                                       OnReply(reply);
                                     });
}

void ScaleHookRunner::OnReply(const ControlHttpReply& reply) {
  ScaleHookResult result;
  if (!reply.ok) {
    result.error = absl::StrFormat("POST %s: %s", config_.url.origin.url, reply.error);
    Finish(std::move(result));
    return;
  }
  result.output = reply.body;
  result.output_truncated = KeepTail(&result.output, kMaxOutput);
  MakeValidUtf8(&result.output);
  result.ok = reply.status >= 200 && reply.status <= 299;
  if (!result.ok) result.error = absl::StrFormat("HTTP %d", reply.status);
  Finish(std::move(result));
}

void ScaleHookRunner::OnDeadline() {
  if (!running() || pending_) return;
  if (process_) {
    // Reported once the program is gone (HookProcess says it was terminated).
    process_->Terminate(grace_);
    return;
  }
  if (lookup_) lookup_->Cancel();
  lookup_ = nullptr;
  if (request_) CancelControlHttpRequest(request_);
  request_ = nullptr;
  ScaleHookResult result;
  result.error = "timed out after " + HookDurationText(config_.timeout);
  Finish(std::move(result));
}

void ScaleHookRunner::Close() {
  Cancel();
  deadline_.Close();
}

void ScaleHookRunner::Cancel() {
  deadline_.Stop();
  if (process_) {
    process_->Detach();
    process_->Terminate(grace_);
    process_ = nullptr;
  }
  if (lookup_) lookup_->Cancel();
  lookup_ = nullptr;
  if (request_) CancelControlHttpRequest(request_);
  request_ = nullptr;
  pending_.reset();
  refused_.clear();
  CancelDeferred();
  body_.clear();
  done_ = nullptr;
}

void ScaleHookRunner::Finish(ScaleHookResult result) {
  deadline_.Stop();
  body_.clear();
  if (result.ok) {
    LOG_INFO("scale hook: done");
  } else {
    LOG_WARN("scale hook: %s", result.error);
  }
  Done done = std::move(done_);
  done_ = nullptr;
  // The last use of `this`: `done` may destroy the runner.
  if (done) done(std::move(result));
}

void ScaleHookRunner::FinishLater(ScaleHookResult result) {
  pending_ = std::move(result);
  context_->Schedule(this);
}

void ScaleHookRunner::RunDeferred() {
  std::vector<std::pair<Done, ScaleHookResult>> refused = std::move(refused_);
  refused_.clear();
  if (pending_) {
    ScaleHookResult result = std::move(*pending_);
    pending_.reset();
    Finish(std::move(result));
  }
  for (auto& [done, result] : refused) done(std::move(result));
}

}  // namespace sluice
