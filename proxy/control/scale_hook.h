// The scale hook (controller.hooks.scale): before an evacuation ramps traffic onto its savior
// regions, a program or a webhook of the operator's is told what is coming, so that it can add
// capacity there. This runs the hook and reports how it went; deciding when to call it and
// waiting for the capacity afterwards is the plan's.
//
// What the hook receives, as JSON (a program on its stdin, a webhook as the body of a POST with
// Content-Type: application/json):
//
//   {"plan": 3, "region": "us-east-1",
//    "saviors": {"eu-west-1": 60, "us-west-2": 40},
//    "predictions": [{"region": "eu-west-1", "capacity_rps": 5000, "load_rps": 1800,
//                     "predicted_rps": 3900, "predicted_utilization": 0.78}, ...]}
//
// `region` is the region being evacuated, `saviors` its saviors and their weights, and each
// prediction a savior's capacity, its load now and what it is predicted to serve (and the
// share of its capacity that is) once the evacuation is complete; requests per second. A
// program also finds SLUICE_PLAN=3, SLUICE_REGION=us-east-1 and
// SLUICE_SAVIORS=eu-west-1=60,us-west-2=40 in its environment.
//
// A program runs without a shell (argv as configured), in a process group of its own, with the
// proxy's environment plus the variables above; its stdout and stderr are captured together.
// Exit status 0 is success. When the timeout passes, the whole process group gets SIGTERM and,
// kGraceAfterTerm later, SIGKILL; nothing of a timed-out hook outlives its report. A webhook
// succeeds with a 2xx answer.
//
// Control thread only: everything runs on the loop of the LoopContext given. The process must
// ignore SIGPIPE (main() does): the hook's output pipe is read by this process.
#ifndef SLUICE_PROXY_CONTROL_SCALE_HOOK_H_
#define SLUICE_PROXY_CONTROL_SCALE_HOOK_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "proxy/config/config.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/loop_timer.h"
#include "proxy/http/control_http_client.h"

namespace sluice {

class NameLookup;
class HookProcess;

// What the hook is told (see the JSON above).
struct ScaleHookCall {
  uint64_t plan_id = 0;
  std::string region;                       // the region being evacuated
  std::map<std::string, uint32_t> saviors;  // savior -> weight
  struct Savior {
    std::string region;
    double capacity_rps = 0;
    double load_rps = 0;
    double predicted_rps = 0;
    double predicted_utilization = 0;
  };
  std::vector<Savior> predictions;
};

struct ScaleHookResult {
  bool ok = false;
  // The program's stdout and stderr, or the webhook's body: the last kMaxOutput bytes, as
  // valid UTF-8 (a byte that is not becomes '?').
  std::string output;
  bool output_truncated = false;  // earlier bytes were dropped
  // Why not ok: "exited with status 3", "killed by signal 9", "timed out after 60s",
  // "cannot start /usr/local/bin/scale-savior: no such file or directory", "HTTP 500",
  // "POST http://127.0.0.1:8000/scale: connection refused".
  std::string error;
};

// The call as the hook receives it.
std::string ScaleHookJson(const ScaleHookCall& call);
// "eu-west-1=60,us-west-2=40": the saviors in SLUICE_SAVIORS.
std::string ScaleHookSaviorList(const ScaleHookCall& call);

class ScaleHookRunner final : private DeferredTask {
 public:
  static constexpr size_t kMaxOutput = 16 * 1024;
  static constexpr absl::Duration kGraceAfterTerm = absl::Seconds(2);
  using Done = std::function<void(ScaleHookResult)>;

  // `context` outlives the runner.
  ScaleHookRunner(LoopContext* context, ScaleHookConfig config);
  ScaleHookRunner(const ScaleHookRunner&) = delete;
  ScaleHookRunner& operator=(const ScaleHookRunner&) = delete;
  // Cancels a running hook; no `done` runs after this.
  ~ScaleHookRunner() override;

  // Runs the hook once. `done` runs exactly once, on the loop, never from inside this call,
  // unless Cancel() (or the destructor) comes first; it may destroy the runner. One hook at a
  // time: a Run while running() reports an error and leaves the running hook alone.
  void Run(const ScaleHookCall& call, Done done);
  // Stops a running hook: no `done` of an earlier Run runs. A program's process group gets SIGTERM,
  // then SIGKILL after the grace (the process handle lives until then, so a loop run to its end
  // waits at most that long); a webhook's request is abandoned. Nothing when idle.
  void Cancel();
  // Cancel, and the deadline timer's handle goes too (the loop's last run closes it); for the
  // process's stop. A later Run opens a new one.
  void Close();
  // From Run until `done` runs (or Cancel).
  bool running() const { return static_cast<bool>(done_); }
  const ScaleHookConfig& config() const { return config_; }

  // Tests: a shorter grace between SIGTERM and SIGKILL.
  void set_grace_for_testing(absl::Duration grace) { grace_ = grace; }

 private:
  void StartProcess(const ScaleHookCall& call);
  void StartRequest(const ScaleHookCall& call);
  void Send(const SocketAddress& address);
  void OnReply(const ControlHttpReply& reply);
  void OnDeadline();
  // Reports now (from a loop callback).
  void Finish(ScaleHookResult result);
  // Reports from a deferred task: for what is known inside Run().
  void FinishLater(ScaleHookResult result);
  void RunDeferred() override;

  LoopContext* context_;
  ScaleHookConfig config_;
  absl::Duration grace_ = kGraceAfterTerm;
  Done done_;
  std::optional<ScaleHookResult> pending_;                 // for FinishLater
  std::vector<std::pair<Done, ScaleHookResult>> refused_;  // Runs while one ran
  HookProcess* process_ = nullptr;  // frees itself once its handles are closed
  NameLookup* lookup_ = nullptr;
  ControlHttpRequest* request_ = nullptr;
  std::string body_;  // the JSON being POSTed
  LoopTimer deadline_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_SCALE_HOOK_H_
