#include "proxy/event/timeout_queue.h"

#include <vector>

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

struct Recorder : TimeoutTarget {
  std::vector<Timeout*> fired;
  void OnTimeout(Timeout* which) override { fired.push_back(which); }
};

TEST(TimeoutQueueTest, FiresInOrderAndOnlyOnce) {
  TestLoop loop;
  Recorder recorder;
  Timeout a(&recorder), b(&recorder), c(&recorder);
  TimeoutQueue* queue = loop.context()->Timeouts(absl::Milliseconds(20));
  a.Arm(queue);
  b.Arm(queue);
  c.Arm(queue);
  b.Disarm();
  EXPECT_TRUE(loop.RunUntil([&] { return recorder.fired.size() == 2; }));
  EXPECT_EQ(recorder.fired, (std::vector<Timeout*>{&a, &c}));
  EXPECT_FALSE(a.armed());
  loop.RunUntil([] { return false; }, 60);
  EXPECT_EQ(recorder.fired.size(), 2u);
}

TEST(TimeoutQueueTest, RearmingPostpones) {
  TestLoop loop;
  Recorder recorder;
  Timeout t(&recorder);
  TimeoutQueue* queue = loop.context()->Timeouts(absl::Milliseconds(50));
  t.Arm(queue);
  uint64_t start = uv_now(loop.loop());
  for (int i = 0; i < 4; ++i) {
    loop.RunUntil([] { return false; }, 20);
    uv_update_time(loop.loop());
    t.Arm(queue);  // like a read on an idle connection
  }
  EXPECT_TRUE(recorder.fired.empty());
  EXPECT_TRUE(loop.RunUntil([&] { return !recorder.fired.empty(); }));
  EXPECT_GE(uv_now(loop.loop()) - start, 100u);
}

TEST(TimeoutQueueTest, SameDurationSharesAQueue) {
  TestLoop loop;
  EXPECT_EQ(loop.context()->Timeouts(absl::Seconds(1)),
            loop.context()->Timeouts(absl::Milliseconds(1000)));
  EXPECT_NE(loop.context()->Timeouts(absl::Seconds(1)), loop.context()->Timeouts(absl::Seconds(2)));
}

TEST(TimeoutQueueTest, ADurationFindsItsQueueBeforeAndAfterLeavingTheRecentOnes) {
  // The last four durations are remembered; older ones are found again in the map, and
  // durations within the same millisecond share one queue either way.
  TestLoop loop;
  LoopContext* context = loop.context();
  TimeoutQueue* first = context->Timeouts(absl::Milliseconds(10));
  std::vector<TimeoutQueue*> others;
  for (int ms = 11; ms <= 16; ++ms) others.push_back(context->Timeouts(absl::Milliseconds(ms)));
  EXPECT_EQ(context->Timeouts(absl::Milliseconds(10)), first);  // no longer a recent one
  EXPECT_EQ(context->Timeouts(absl::Microseconds(10400)), first);
  EXPECT_EQ(context->Timeouts(absl::Milliseconds(10)), first);  // recent again
  for (int ms = 11; ms <= 16; ++ms) {
    EXPECT_EQ(context->Timeouts(absl::Milliseconds(ms)), others[static_cast<size_t>(ms - 11)]);
    EXPECT_NE(context->Timeouts(absl::Milliseconds(ms)), first);
  }
  EXPECT_EQ(context->Timeouts(absl::ZeroDuration()), context->Timeouts(absl::Milliseconds(1)));
}

TEST(TimeoutQueueTest, DestroyedTimeoutNeverFires) {
  TestLoop loop;
  Recorder recorder;
  {
    Timeout t(&recorder);
    t.Arm(loop.context()->Timeouts(absl::Milliseconds(5)));
  }
  loop.RunUntil([] { return false; }, 30);
  EXPECT_TRUE(recorder.fired.empty());
}

}  // namespace
}  // namespace sluice
