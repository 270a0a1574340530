#include "proxy/event/loop_timer.h"

#include <memory>

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

TEST(LoopTimerTest, OnceRepeatedAndStopped) {
  TestLoop loop;
  LoopTimer once, repeat;
  int fired_once = 0, fired_repeat = 0;
  EXPECT_FALSE(once.active());
  once.Start(loop.loop(), 1, 0, [&] { ++fired_once; });
  repeat.Start(loop.loop(), 0, 1, [&] {
    if (++fired_repeat == 3) repeat.Stop();
  });
  EXPECT_TRUE(once.active());
  ASSERT_TRUE(loop.RunUntil([&] { return fired_once == 1 && fired_repeat == 3; }));
  EXPECT_FALSE(once.active());
  EXPECT_FALSE(repeat.active());
  loop.RunUntil([] { return false; }, 20);
  EXPECT_EQ(fired_once, 1);
  EXPECT_EQ(fired_repeat, 3);
}

TEST(LoopTimerTest, ACallbackMayRestartOrCloseItsTimer) {
  TestLoop loop;
  LoopTimer timer;
  std::vector<int> log;
  timer.Start(loop.loop(), 0, 0, [&] {
    log.push_back(1);
    timer.Start(loop.loop(), 1, 0, [&] {
      log.push_back(2);
      timer.Close();
    });
  });
  ASSERT_TRUE(loop.RunUntil([&] { return log.size() == 2; }));
  EXPECT_EQ(log, (std::vector<int>{1, 2}));
  EXPECT_FALSE(timer.active());
  // Closed timers open again on Start.
  timer.Start(loop.loop(), 0, 0, [&] { log.push_back(3); });
  ASSERT_TRUE(loop.RunUntil([&] { return log.size() == 3; }));
}

TEST(LoopTimerTest, TheOwnerMayGoBeforeTheLoopDoes) {
  TestLoop loop;
  int fired = 0;
  auto timer = std::make_unique<LoopTimer>();
  timer->Start(loop.loop(), 1, 1, [&] { ++fired; });
  timer.reset();  // closed; its handle is freed by the loop (LeakSanitizer checks)
  loop.RunUntil([] { return false; }, 20);
  EXPECT_EQ(fired, 0);
}

}  // namespace
}  // namespace sluice
