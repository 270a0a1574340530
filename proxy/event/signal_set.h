// Signal handlers on a loop (uv_signal): each runs on the loop's thread, never inside the
// signal. Close() (or destruction) stops and closes every handle; the handles free themselves
// in their close callbacks. Loop thread only.
#ifndef SLUICE_PROXY_EVENT_SIGNAL_SET_H_
#define SLUICE_PROXY_EVENT_SIGNAL_SET_H_

#include <uv.h>

#include <functional>
#include <vector>

namespace sluice {

class SignalSet {
 public:
  explicit SignalSet(uv_loop_t* loop) : loop_(loop) {}
  SignalSet(const SignalSet&) = delete;
  SignalSet& operator=(const SignalSet&) = delete;
  ~SignalSet() { Close(); }

  // Runs `handler` on the loop every time `signum` arrives.
  void On(int signum, std::function<void()> handler);
  void Close();

  // The process's control signals (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2) wait, blocked,
  // from the first line of main until the handlers are in: a SIGTERM sent while the process
  // starts is then a graceful stop, never death by the default action. Hold before any thread
  // starts (threads inherit the mask, and then never take them); release on the thread that
  // installed the handlers. Children of uv_spawn start with an empty mask.
  static void HoldControlSignals();
  static void ReleaseControlSignals();

 private:
  struct Handle;
  uv_loop_t* loop_;
  std::vector<Handle*> handles_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_EVENT_SIGNAL_SET_H_
