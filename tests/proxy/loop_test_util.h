// A libuv loop with its LoopContext for tests of loop-bound classes; closes both cleanly.
#ifndef SLUICE_TESTS_PROXY_LOOP_TEST_UTIL_H_
#define SLUICE_TESTS_PROXY_LOOP_TEST_UTIL_H_

#include <uv.h>

#include <chrono>
#include <functional>
#include <memory>

#include "proxy/event/loop_context.h"

namespace sluice {

class TestLoop {
 public:
  TestLoop() {
    uv_loop_init(&loop_);
    context_ = std::make_unique<LoopContext>(&loop_);
    // The loop's own handles are unreferenced (they must not keep a worker alive); this one
    // keeps the test loop running while a test waits for timers.
    uv_async_init(&loop_, &alive_, nullptr);
  }
  ~TestLoop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&alive_), nullptr);
    context_->Close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    context_.reset();
    uv_loop_close(&loop_);
  }
  uv_loop_t* loop() { return &loop_; }
  LoopContext* context() { return context_.get(); }

  // Runs the loop until `done()` or `timeout_ms` passed. Returns done().
  bool RunUntil(const std::function<bool()>& done, int timeout_ms = 5000) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (!done()) uv_sleep(1);
    }
    return done();
  }

 private:
  uv_loop_t loop_;
  uv_async_t alive_;
  std::unique_ptr<LoopContext> context_;
};

}  // namespace sluice

#endif  // SLUICE_TESTS_PROXY_LOOP_TEST_UTIL_H_
