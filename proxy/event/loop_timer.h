// A libuv timer for an object that lives on a loop and may go before the loop does (the
// control loop's steering controller, health monitor and fleet): opened on first Start,
// unreferenced (it never keeps the loop running by itself), and on Close (or destruction)
// handed to uv_close, which frees it once libuv is done with it, so the owner can go at once.
// One thread: the loop's.
#ifndef SLUICE_PROXY_EVENT_LOOP_TIMER_H_
#define SLUICE_PROXY_EVENT_LOOP_TIMER_H_

#include <uv.h>

#include <cstdint>
#include <functional>

namespace sluice {

class LoopTimer {
 public:
  LoopTimer() = default;
  LoopTimer(const LoopTimer&) = delete;
  LoopTimer& operator=(const LoopTimer&) = delete;
  ~LoopTimer() { Close(); }

  // Runs `callback` after `delay_ms`, then every `repeat_ms` (0: once). Replaces an earlier
  // Start that has not fired.
  void Start(uv_loop_t* loop, uint64_t delay_ms, uint64_t repeat_ms,
             std::function<void()> callback);
  void Stop();
  // Stops and lets the handle go; a later Start opens a new one.
  void Close();
  // Started and not stopped or closed since (a one-shot timer stays active until it fired).
  bool active() const;

 private:
  struct Handle {
    uv_timer_t timer;
    std::function<void()> callback;
  };
  Handle* handle_ = nullptr;  // freed by its close callback
};

}  // namespace sluice

#endif  // SLUICE_PROXY_EVENT_LOOP_TIMER_H_
