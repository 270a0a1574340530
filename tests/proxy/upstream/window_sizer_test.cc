#include "proxy/upstream/window_sizer.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr int64_t kMs = 1000000;
constexpr uint32_t kKiB = 1024;
constexpr uint32_t kMiB = 1024 * 1024;

// One probe: the PING goes out when DATA arrives, `bytes` arrive during the round trip.
WindowSizer::Growth Probe(WindowSizer* sizer, WindowBudget* budget, uint64_t bytes, int64_t sent_ns,
                          int64_t rtt_ns) {
  EXPECT_TRUE(sizer->OnData(1, sent_ns));
  sizer->ProbeSent(sent_ns);
  EXPECT_FALSE(sizer->OnData(bytes, sent_ns));  // one probe at a time
  return sizer->OnProbeAck(sent_ns + rtt_ns, budget);
}

TEST(WindowSizer, AFixedWindowNeverProbes) {
  WindowSizer sizer(256 * kKiB, 256 * kKiB);
  EXPECT_FALSE(sizer.auto_sizing());
  EXPECT_FALSE(sizer.OnData(1 << 20, 0));
  EXPECT_EQ(sizer.stream_window(), 256 * kKiB);
  EXPECT_EQ(sizer.connection_window(), 4 * kMiB);
}

TEST(WindowSizer, AWindowLimitedPathGrowsFourfoldUpToTheMaximum) {
  WindowBudget budget(1u << 30);
  WindowSizer sizer(256 * kKiB, 16 * kMiB);
  int64_t now = 0;
  // Each round trip carries the whole window: the sender waits for the window.
  for (int i = 0; i < 12 && sizer.auto_sizing(); ++i) {
    const uint32_t before = sizer.stream_window();
    WindowSizer::Growth g = Probe(&sizer, &budget, before, now, 80 * kMs);
    ASSERT_TRUE(g.grew);
    EXPECT_EQ(g.stream_window, std::min(4 * before, 16 * kMiB));
    EXPECT_EQ(g.connection_window, ConnectionWindowFor(g.stream_window));
    now += 100 * kMs;
  }
  EXPECT_EQ(sizer.stream_window(), 16 * kMiB);
  EXPECT_EQ(sizer.connection_window(), 32 * kMiB);
  EXPECT_FALSE(sizer.auto_sizing());
  EXPECT_FALSE(sizer.OnData(1 << 20, now));  // at the maximum: no more probes
  // What was reserved is the growth beyond the first connection window.
  EXPECT_EQ(budget.reserved(), uint64_t{32 * kMiB} - 4 * kMiB);
  EXPECT_EQ(sizer.last_rtt_ns(), 80 * kMs);
}

TEST(WindowSizer, APathThatIsNotWindowLimitedKeepsTheWindow) {
  WindowBudget budget(1u << 30);
  WindowSizer sizer(256 * kKiB, 16 * kMiB);
  // Less than two thirds of the window in a round trip: the window is not what limits.
  WindowSizer::Growth g = Probe(&sizer, &budget, 170 * kKiB, 0, 80 * kMs);
  EXPECT_FALSE(g.grew);
  EXPECT_EQ(sizer.stream_window(), 256 * kKiB);
  EXPECT_EQ(budget.reserved(), 0u);
  // Two thirds is enough.
  g = Probe(&sizer, &budget, 171 * kKiB, 200 * kMs, 80 * kMs);
  EXPECT_TRUE(g.grew);
  EXPECT_EQ(sizer.stream_window(), 1024 * kKiB);
}

TEST(WindowSizer, ManyStreamsFillingTheConnectionGrowToFourTimesTheSample) {
  WindowBudget budget(1u << 30);
  WindowSizer sizer(256 * kKiB, 32 * kMiB);
  // Several streams together brought the first connection window's worth in one round trip.
  WindowSizer::Growth g = Probe(&sizer, &budget, 4 * kMiB, 0, 80 * kMs);
  ASSERT_TRUE(g.grew);
  EXPECT_EQ(g.stream_window, 16 * kMiB);
  EXPECT_EQ(g.connection_window, 32 * kMiB);
  EXPECT_EQ(g.reserved, uint64_t{28 * kMiB});
}

TEST(WindowSizer, TheBudgetBoundsTheGrowthOfEveryConnection) {
  WindowBudget budget(6 * kMiB);
  WindowSizer a(2 * kMiB, 16 * kMiB);  // connection windows of 4 MiB
  WindowSizer b(2 * kMiB, 16 * kMiB);
  // a: 8 MiB streams want a 16 MiB connection window; the budget has 6 MiB of the 12 more.
  WindowSizer::Growth ga = Probe(&a, &budget, 2 * kMiB, 0, 50 * kMs);
  ASSERT_TRUE(ga.grew);
  EXPECT_EQ(ga.reserved, uint64_t{6 * kMiB});
  EXPECT_EQ(a.connection_window(), 10 * kMiB);
  EXPECT_EQ(a.stream_window(), 8 * kMiB);
  EXPECT_EQ(budget.reserved(), uint64_t{6 * kMiB});
  // The budget is spent: b's streams may still use the whole connection window it has ...
  WindowSizer::Growth gb = Probe(&b, &budget, 2 * kMiB, 0, 50 * kMs);
  ASSERT_TRUE(gb.grew);
  EXPECT_EQ(gb.reserved, 0u);
  EXPECT_EQ(b.connection_window(), 4 * kMiB);
  EXPECT_EQ(b.stream_window(), 4 * kMiB);
  // ... and no more.
  gb = Probe(&b, &budget, 4 * kMiB, 100 * kMs, 50 * kMs);
  EXPECT_FALSE(gb.grew);
  EXPECT_EQ(b.stream_window(), 4 * kMiB);
  // A connection that closes gives its growth back; another may grow into it.
  budget.Release(ga.reserved);
  gb = Probe(&b, &budget, 4 * kMiB, 200 * kMs, 50 * kMs);
  ASSERT_TRUE(gb.grew);
  EXPECT_EQ(gb.reserved, uint64_t{6 * kMiB});
  EXPECT_EQ(b.connection_window(), 10 * kMiB);
  EXPECT_EQ(b.stream_window(), 10 * kMiB);
  // A smaller limit later only stops more growth.
  budget.SetLimit(1 * kMiB);
  EXPECT_EQ(budget.ReserveUpTo(1), 0u);
}

TEST(WindowSizer, ProbesThatFindTheWindowLargeEnoughComeLessOften) {
  WindowBudget budget(1u << 30);
  WindowSizer sizer(256 * kKiB, 16 * kMiB);
  int64_t now = 0;
  int64_t gap = 50 * kMs;
  for (int i = 0; i < 12; ++i) {
    EXPECT_FALSE(Probe(&sizer, &budget, 1 * kKiB, now, kMs).grew);
    now += kMs;  // the ACK
    EXPECT_FALSE(sizer.OnData(1, now + gap - 1)) << i;
    now += gap;
    gap = std::min(gap * 2, 10000 * kMs);
  }
  // At most one every 10 s now; a probe that grows the window ends the pause.
  EXPECT_FALSE(sizer.OnData(1, now - gap / 2 - 1));
  EXPECT_TRUE(Probe(&sizer, &budget, 256 * kKiB, now, kMs).grew);
  EXPECT_TRUE(sizer.OnData(1, now + kMs));
}

TEST(WindowSizer, ASenderInSlowStartIsProbedAtTheShortestPause) {
  // A new connection at 200 ms: TCP's window opens from 10 segments, doubling every round
  // trip, long before the 256 KiB stream window holds it back. The probes stay 50 ms apart
  // while the samples rise, so the growth comes when the window first holds the sender back.
  WindowBudget budget(1u << 30);
  WindowSizer sizer(256 * kKiB, 16 * kMiB);
  const int64_t rtt = 200 * kMs;
  int64_t now = 0;
  uint64_t sample = 10 * 1448;
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(Probe(&sizer, &budget, sample, now, rtt).grew) << i;
    now += rtt;
    EXPECT_FALSE(sizer.OnData(1, now + 50 * kMs - 1)) << i;
    now += 50 * kMs;
    sample *= 2;
  }
  // 116 KiB, still doubling: the next at 50 ms again, then the window (256 KiB) holds it.
  EXPECT_FALSE(Probe(&sizer, &budget, sample, now, rtt).grew);
  now += rtt + 50 * kMs;
  EXPECT_TRUE(Probe(&sizer, &budget, 256 * kKiB, now, rtt).grew);
  EXPECT_EQ(sizer.stream_window(), 1 * kMiB);

  // Samples that level off (an application sending what it has) pause twice as long each time.
  WindowSizer flat(256 * kKiB, 16 * kMiB);
  now = 0;
  EXPECT_FALSE(Probe(&flat, &budget, 64 * kKiB, now, rtt).grew);
  now += rtt + 50 * kMs;
  EXPECT_FALSE(Probe(&flat, &budget, 80 * kKiB, now, rtt).grew);  // +25%: not slow start
  now += rtt;
  EXPECT_FALSE(flat.OnData(1, now + 100 * kMs - 1));
  EXPECT_TRUE(flat.OnData(1, now + 100 * kMs));
}

TEST(WindowSizer, RoundTripsKeepTheMinimum) {
  WindowSizer sizer(256 * kKiB, 256 * kKiB);
  sizer.OnRoundTrip(90 * kMs);
  sizer.OnRoundTrip(80 * kMs);
  sizer.OnRoundTrip(120 * kMs);
  sizer.OnRoundTrip(0);  // not a measurement
  EXPECT_EQ(sizer.min_rtt_ns(), 80 * kMs);
  EXPECT_EQ(sizer.last_rtt_ns(), 120 * kMs);
}

TEST(WindowSizer, AnAckWithoutAProbeChangesNothing) {
  WindowBudget budget(1u << 30);
  WindowSizer sizer(256 * kKiB, 16 * kMiB);
  EXPECT_FALSE(sizer.OnProbeAck(5 * kMs, &budget).grew);
  EXPECT_EQ(sizer.last_rtt_ns(), 0);
}

TEST(WindowSizer, WindowsStayWithinHttp2) {
  EXPECT_EQ(ConnectionWindowFor(kMaxHttp2Window), kMaxHttp2Window);
  WindowSizer sizer(1u << 30, 0xffffffffu);
  EXPECT_EQ(sizer.connection_window(), kMaxHttp2Window);
  WindowBudget budget(uint64_t{1} << 40);
  WindowSizer::Growth g = Probe(&sizer, &budget, uint64_t{1} << 31, 0, kMs);
  EXPECT_TRUE(g.grew);
  EXPECT_EQ(sizer.stream_window(), kMaxHttp2Window);
  EXPECT_EQ(sizer.connection_window(), kMaxHttp2Window);
}

}  // namespace
}  // namespace sluice
