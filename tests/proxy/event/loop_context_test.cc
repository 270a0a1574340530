#include "proxy/event/loop_context.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

struct Task : DeferredTask {
  std::vector<std::string>* log;
  std::string name;
  Task* then = nullptr;
  LoopContext* context = nullptr;
  Task(std::vector<std::string>* l, std::string n) : log(l), name(std::move(n)) {}
  void RunDeferred() override {
    log->push_back(name);
    if (then) context->Schedule(then);
  }
};

struct Tracked : Deletable {
  bool* gone;
  explicit Tracked(bool* g) : gone(g) {}
  ~Tracked() override { *gone = true; }
};

// A handshake that costs `cost` of the budget when it goes on.
struct Handshake : HandshakeWaiter {
  std::vector<std::string>* log;
  std::string name;
  LoopContext* context;
  absl::Duration cost;
  Handshake(std::vector<std::string>* l, std::string n, LoopContext* c, absl::Duration d)
      : log(l), name(std::move(n)), context(c), cost(d) {}
  void ResumeHandshake() override {
    log->push_back(name);
    context->ChargeHandshake(absl::ToInt64Nanoseconds(cost));
  }
};

TEST(LoopContextTest, HandshakesWaitForTheBudgetInArrivalOrder) {
  TestLoop loop;
  LoopContext* context = loop.context();
  EXPECT_FALSE(context->handshake_budget_enabled());
  context->SetHandshakeBudget(absl::Milliseconds(1));
  ASSERT_TRUE(context->handshake_budget_enabled());
  std::vector<std::string> log;
  std::vector<std::unique_ptr<Handshake>> waiting;
  for (const char* name : {"a", "b", "c", "d", "e", "f"}) {
    waiting.push_back(std::make_unique<Handshake>(&log, name, context, absl::Microseconds(600)));
  }
  // A storm's worth of handshakes spend this iteration's budget and more.
  context->ChargeHandshake(absl::ToInt64Nanoseconds(absl::Milliseconds(5)));
  EXPECT_FALSE(context->HandshakeBudgetLeft());
  for (auto& h : waiting) context->WaitForHandshakeBudget(h.get());
  context->WaitForHandshakeBudget(waiting[0].get());  // queued once
  EXPECT_EQ(context->handshakes_waited(), 6u);
  waiting[4].reset();  // a connection closed while it waited: out of the queue
  // Each iteration starts with a fresh budget: two at 0.6 ms each fit in 1 ms (the second
  // starts with room left), in the order they came; the loop does not sleep between them.
  uv_run(loop.loop(), UV_RUN_ONCE);
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b"}));
  uv_run(loop.loop(), UV_RUN_ONCE);
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "c", "d"}));
  uv_run(loop.loop(), UV_RUN_ONCE);
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "c", "d", "f"}));
  EXPECT_FALSE(waiting[5]->waiting_for_budget());
  EXPECT_TRUE(context->HandshakeBudgetLeft());
  // One that waits later is woken as promptly.
  context->ChargeHandshake(absl::ToInt64Nanoseconds(absl::Milliseconds(5)));
  context->WaitForHandshakeBudget(waiting[0].get());
  uv_run(loop.loop(), UV_RUN_ONCE);
  EXPECT_EQ(log.back(), "a");
}

TEST(LoopContextTest, TurningTheBudgetOffLetsEveryWaitingHandshakeGoOn) {
  // A reload that sets the budget to 0 while handshakes wait: they all go on at the next
  // iteration, and nothing waits again.
  TestLoop loop;
  LoopContext* context = loop.context();
  context->SetHandshakeBudget(absl::Milliseconds(1));
  context->ChargeHandshake(absl::ToInt64Nanoseconds(absl::Milliseconds(5)));
  std::vector<std::string> log;
  std::vector<std::unique_ptr<Handshake>> waiting;
  for (const char* name : {"a", "b", "c"}) {
    waiting.push_back(std::make_unique<Handshake>(&log, name, context, absl::Milliseconds(2)));
    context->WaitForHandshakeBudget(waiting.back().get());
  }
  context->SetHandshakeBudget(absl::ZeroDuration());
  EXPECT_TRUE(context->HandshakeBudgetLeft());
  uv_run(loop.loop(), UV_RUN_ONCE);
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(LoopContextTest, DeferredTasksRunOnceInOrder) {
  TestLoop loop;
  std::vector<std::string> log;
  Task a(&log, "a"), b(&log, "b"), c(&log, "c");
  a.then = &c;
  a.context = loop.context();
  loop.context()->Schedule(&a);
  loop.context()->Schedule(&b);
  loop.context()->Schedule(&a);  // already scheduled: no second run
  loop.context()->RunDeferredNow();
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(LoopContextTest, DestroyedTaskIsCancelled) {
  TestLoop loop;
  std::vector<std::string> log;
  {
    Task gone(&log, "gone");
    loop.context()->Schedule(&gone);
  }
  loop.context()->RunDeferredNow();
  EXPECT_TRUE(log.empty());
}

TEST(LoopContextTest, TasksRunBeforeTheLoopSleeps) {
  TestLoop loop;
  std::vector<std::string> log;
  Task t(&log, "t");
  loop.context()->Schedule(&t);
  uv_run(loop.loop(), UV_RUN_NOWAIT);  // one iteration: prepare/check drain it
  EXPECT_EQ(log.size(), 1u);
}

TEST(LoopContextTest, DeleteLaterWaitsForTheCallbackToUnwind) {
  TestLoop loop;
  bool gone = false;
  loop.context()->DeleteLater(std::make_unique<Tracked>(&gone));
  EXPECT_FALSE(gone);
  loop.context()->RunDeferredNow();
  EXPECT_TRUE(gone);
}

TEST(LoopContextTest, ClockIsReadOncePerBatchAndFreshAfterAWait) {
  TestLoop loop;
  const Clock& clock = loop.context()->clock();
  int64_t first = clock.MonotonicNanos();
  EXPECT_EQ(clock.MonotonicNanos(), first);  // same batch: the same reading
  struct Probe {
    const Clock* clock;
    int64_t seen[2] = {0, 0};
  } probe{&clock};
  uv_timer_t timer;
  uv_timer_init(loop.loop(), &timer);
  uv_update_time(loop.loop());  // the timer is due 5 ms after `first` at the earliest
  timer.data = &probe;
  uv_timer_start(
      &timer,
      [](uv_timer_t* t) {
        auto* p = static_cast<Probe*>(t->data);
        p->seen[0] = p->clock->MonotonicNanos();
        p->seen[1] = p->clock->MonotonicNanos();
      },
      5, 0);
  // Waits in the loop's poll for the timer.
  ASSERT_TRUE(loop.RunUntil([&] { return probe.seen[0] != 0; }));
  // The callback after the wait read the clock anew, once: libuv's millisecond loop time makes
  // the 5 ms at least 4; the margin allows for a reading taken before the timer's callback.
  EXPECT_GE(probe.seen[0] - first, 2000000);
  EXPECT_EQ(probe.seen[1], probe.seen[0]);
  bool closed = false;
  timer.data = &closed;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer),
           [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
  ASSERT_TRUE(loop.RunUntil([&] { return closed; }));
  EXPECT_GE(clock.MonotonicNanos(), probe.seen[0]);
}

TEST(LoopContextTest, RandomLooksRandom) {
  TestLoop loop;
  uint64_t a = loop.context()->Random();
  uint64_t b = loop.context()->Random();
  EXPECT_NE(a, b);
  int ones = 0;
  for (int i = 0; i < 1000; ++i) ones += __builtin_popcountll(loop.context()->Random());
  EXPECT_NEAR(ones / 1000.0, 32.0, 2.0);
}

}  // namespace
}  // namespace sluice
