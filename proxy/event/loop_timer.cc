#include "proxy/event/loop_timer.h"

namespace sluice {

void LoopTimer::Start(uv_loop_t* loop, uint64_t delay_ms, uint64_t repeat_ms,
                      std::function<void()> callback) {
  if (!handle_) {
    handle_ = new Handle;
    uv_timer_init(loop, &handle_->timer);
    handle_->timer.data = handle_;
    uv_unref(reinterpret_cast<uv_handle_t*>(&handle_->timer));
  }
  handle_->callback = std::move(callback);
  uv_timer_start(
      &handle_->timer,
      [](uv_timer_t* t) {
        // A copy: the callback may start the timer again with another one.
        std::function<void()> run = static_cast<Handle*>(t->data)->callback;
        run();
      },
      delay_ms, repeat_ms);
}

void LoopTimer::Stop() {
  if (handle_) uv_timer_stop(&handle_->timer);
}

void LoopTimer::Close() {
  if (!handle_) return;
  uv_timer_stop(&handle_->timer);
  handle_->callback = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_->timer),
           [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });
  handle_ = nullptr;
}

bool LoopTimer::active() const {
  return handle_ && uv_is_active(reinterpret_cast<const uv_handle_t*>(&handle_->timer));
}

}  // namespace sluice
