// Timeouts for many objects that share one duration (every connection's idle timeout, every
// request's response timeout), driven by a single uv_timer per duration.
//
// Arming appends at the tail with deadline now + duration, so the list stays sorted by
// deadline and arming, re-arming and disarming are O(1) with no allocation: cheap enough to
// re-arm on every read. Loop thread only.
#ifndef SLUICE_PROXY_EVENT_TIMEOUT_QUEUE_H_
#define SLUICE_PROXY_EVENT_TIMEOUT_QUEUE_H_

#include <uv.h>

#include <cstdint>

#include "proxy/event/intrusive_list.h"

namespace sluice {

class Timeout;
class TimeoutQueue;

// Receives expirations. `which` says which of the target's timeouts fired.
class TimeoutTarget {
 public:
  virtual void OnTimeout(Timeout* which) = 0;

 protected:
  virtual ~TimeoutTarget() = default;
};

// Embedded in the object that owns the timeout; disarms itself when destroyed.
class Timeout {
 public:
  explicit Timeout(TimeoutTarget* target) : target_(target) {}
  Timeout(const Timeout&) = delete;
  Timeout& operator=(const Timeout&) = delete;

  // (Re)arms: fires after the queue's duration from now. Moves to `queue` if it was armed on
  // another one.
  void Arm(TimeoutQueue* queue);
  void Disarm() { node_.Unlink(); }
  bool armed() const { return node_.linked(); }

 private:
  friend class TimeoutQueue;
  ListNode node_;
  TimeoutTarget* target_;
  uint64_t expires_ms_ = 0;
};

class TimeoutQueue {
 public:
  TimeoutQueue(uv_loop_t* loop, uint64_t duration_ms);
  TimeoutQueue(const TimeoutQueue&) = delete;
  TimeoutQueue& operator=(const TimeoutQueue&) = delete;

  uint64_t duration_ms() const { return duration_ms_; }
  // Closes the timer handle; the queue deletes itself in the close callback. Armed timeouts
  // are dropped without firing.
  void CloseAndDelete();

 private:
  friend class Timeout;
  ~TimeoutQueue() = default;
  void Add(Timeout* timeout);
  void OnTimer();
  void StartTimer(uint64_t delay_ms);

  uv_timer_t timer_;
  uv_loop_t* loop_;
  uint64_t duration_ms_;
  bool timer_running_ = false;
  IntrusiveList<Timeout, &Timeout::node_> armed_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_EVENT_TIMEOUT_QUEUE_H_
