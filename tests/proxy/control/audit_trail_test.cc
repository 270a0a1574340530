#include "proxy/control/audit_trail.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1764698400);

ControllerEvent At(int seconds, const std::string& action) {
  return ControllerEvent{kStart + absl::Seconds(seconds), "ops", action, 1, 2, false};
}

AuditQuery AfterSeq(uint64_t seq, size_t limit = 200) {
  AuditQuery q;
  q.after_seq = seq;
  q.limit = limit;
  return q;
}

AuditQuery Since(absl::Time t, size_t limit = 200) {
  AuditQuery q;
  q.since = t;
  q.limit = limit;
  return q;
}

AuditQuery Newest(size_t limit) {
  AuditQuery q;
  q.limit = limit;
  return q;
}

std::vector<uint64_t> Seqs(const AuditPage& page) {
  std::vector<uint64_t> out;
  for (const AuditRecord& r : page.events) out.push_back(r.seq);
  return out;
}

TEST(AuditTrailTest, EmptyAnswersTheNextSeq) {
  AuditTrail trail(4);
  AuditPage page = trail.Query(AuditQuery{});
  EXPECT_TRUE(page.events.empty());
  EXPECT_EQ(page.next, 1u);
  EXPECT_EQ(page.dropped, 0u);
  page = trail.Query(AfterSeq(7));
  EXPECT_TRUE(page.events.empty());
  EXPECT_EQ(page.next, 1u);
}

TEST(AuditTrailTest, SeqsCountUpAndEventsComeOldestFirst) {
  AuditTrail trail(4);
  EXPECT_EQ(trail.Add(At(0, "a")), 1u);
  EXPECT_EQ(trail.Add(At(1, "b")), 2u);
  EXPECT_EQ(trail.Add(At(2, "c")), 3u);
  AuditPage page = trail.Query(AuditQuery{});
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(page.events[0].event.action, "a");
  EXPECT_EQ(page.next, 4u);
  // After a seq: the later ones only; nothing new answers the same next.
  page = trail.Query(AfterSeq(2));
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{3}));
  EXPECT_EQ(page.next, 4u);
  page = trail.Query(AfterSeq(3));
  EXPECT_TRUE(page.events.empty());
  EXPECT_EQ(page.next, 4u);
  EXPECT_EQ(page.dropped, 0u);
}

TEST(AuditTrailTest, TheRingKeepsTheNewestAndCountsWhatFellOut) {
  AuditTrail trail(3);
  for (int i = 0; i < 5; ++i) trail.Add(At(i * 10, "e" + std::to_string(i + 1)));
  EXPECT_EQ(trail.size(), 3u);
  AuditPage page = trail.Query(AuditQuery{});
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(page.dropped, 2u);
  // After seq 1: seq 2 is gone (1 dropped), 3..5 are here.
  page = trail.Query(AfterSeq(1));
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(page.dropped, 1u);
  page = trail.Query(AfterSeq(0));
  EXPECT_EQ(page.dropped, 2u);
  page = trail.Query(AfterSeq(4));
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{5}));
  EXPECT_EQ(page.dropped, 0u);
  // By time: seq 2 (at +10 s) matches "since +5 s" and is gone; seq 1 (+0 s) does not match.
  page = trail.Query(Since(kStart + absl::Seconds(5)));
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{3, 4, 5}));
  EXPECT_EQ(page.dropped, 1u);
  page = trail.Query(Since(kStart + absl::Seconds(30)));
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{4, 5}));
  EXPECT_EQ(page.dropped, 0u);
  page = trail.Query(Since(kStart));
  EXPECT_EQ(page.dropped, 2u);
  page = trail.Query(Since(kStart + absl::Seconds(41)));
  EXPECT_TRUE(page.events.empty());
  EXPECT_EQ(page.next, 6u);
}

TEST(AuditTrailTest, SinceATimeIsAtOrAfterIt) {
  AuditTrail trail(10);
  trail.Add(At(0, "a"));
  trail.Add(At(10, "b"));
  AuditPage page = trail.Query(Since(kStart + absl::Seconds(10)));
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{2}));
  page = trail.Query(Since(kStart + absl::Milliseconds(9999)));
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{2}));
}

TEST(AuditTrailTest, LimitKeepsTheNewestMatching) {
  AuditTrail trail(10);
  for (int i = 0; i < 6; ++i) trail.Add(At(i, "e"));
  AuditPage page = trail.Query(Newest(2));
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{5, 6}));
  EXPECT_EQ(page.next, 7u);
  EXPECT_EQ(page.dropped, 0u);  // left out by the limit, not dropped
  page = trail.Query(AfterSeq(1, 3));
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{4, 5, 6}));
  page = trail.Query(Since(kStart + absl::Seconds(3), 1000));
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{4, 5, 6}));
}

TEST(AuditTrailTest, AFullDefaultRingWrapsManyTimes) {
  AuditTrail trail;
  for (int i = 0; i < 2500; ++i) trail.Add(At(i, "e"));
  EXPECT_EQ(trail.size(), kAuditRingSize);
  AuditPage page = trail.Query(Newest(1000));
  ASSERT_EQ(page.events.size(), 1000u);
  EXPECT_EQ(page.events.front().seq, 1501u);
  EXPECT_EQ(page.events.back().seq, 2500u);
  EXPECT_EQ(page.dropped, 1500u);
  // Each dropped event in its own second: a query by time counts exactly those at or after it.
  page = trail.Query(Since(kStart + absl::Seconds(1000), 1));
  EXPECT_EQ(page.dropped, 500u);
  EXPECT_EQ(Seqs(page), (std::vector<uint64_t>{2500}));
}

}  // namespace
}  // namespace sluice
