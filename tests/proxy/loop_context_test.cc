#include "proxy/loop_context.h"

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
