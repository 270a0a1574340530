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

 private:
  struct Handle;
  uv_loop_t* loop_;
  std::vector<Handle*> handles_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_EVENT_SIGNAL_SET_H_
