#include "proxy/event/timeout_queue.h"

namespace sluice {

void Timeout::Arm(TimeoutQueue* queue) { queue->Add(this); }

TimeoutQueue::TimeoutQueue(uv_loop_t* loop, uint64_t duration_ms)
    : loop_(loop), duration_ms_(duration_ms) {
  uv_timer_init(loop, &timer_);
  timer_.data = this;
  // The queue's timer alone must not keep a loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(&timer_));
}

void TimeoutQueue::Add(Timeout* timeout) {
  timeout->expires_ms_ = uv_now(loop_) + duration_ms_;
  armed_.PushBack(timeout);
  // A running timer fires at or before this deadline (earlier entries expire no later), and
  // OnTimer re-arms for whatever is first then.
  if (!timer_running_) StartTimer(duration_ms_);
}

void TimeoutQueue::StartTimer(uint64_t delay_ms) {
  timer_running_ = true;
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<TimeoutQueue*>(t->data)->OnTimer(); }, delay_ms, 0);
}

void TimeoutQueue::OnTimer() {
  timer_running_ = false;
  uint64_t now = uv_now(loop_);
  while (Timeout* first = armed_.Front()) {
    if (first->expires_ms_ > now) {
      StartTimer(first->expires_ms_ - now);
      return;
    }
    first->node_.Unlink();
    // The target may arm, disarm or destroy other timeouts of this queue; the loop re-reads
    // the front each time.
    first->target_->OnTimeout(first);
  }
}

void TimeoutQueue::CloseAndDelete() {
  armed_.ForEach([](Timeout* t) { t->Disarm(); });
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_),
           [](uv_handle_t* h) { delete static_cast<TimeoutQueue*>(h->data); });
}

}  // namespace sluice
