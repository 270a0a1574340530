#include "proxy/control/history_store.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

class HistoryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/sluice-history-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    dir_ = pattern;
    path_ = dir_ + "/history.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_, path_;
  const absl::Time now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) / 60 * 60);
};

TEST_F(HistoryStoreTest, WhatIsWrittenIsLoadedAfterAReopen) {
  const int64_t t = absl::ToUnixSeconds(now_);
  {
    std::string note;
    auto store = HistoryStore::Open(path_, &note);
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_EQ(note, "");
    ASSERT_TRUE((*store)
                    ->Write({{"us-east-1", t - 600, kFineSpan, {1, 2, 3}},
                             {"us-east-1", t - 600, kCoarseSpan, {1, 2, 3}},
                             {"eu-west-1", t - 86400 * 3, kCoarseSpan, {4, 5, 6}},
                             // Beyond both retentions: not loaded, and trimmed.
                             {"eu-west-1", t - 86400 * 20, kCoarseSpan, {7, 8, 9}},
                             {"eu-west-1", t - 86400 * 2, kFineSpan, {7, 8, 9}}})
                    .ok());
    // The same slot again replaces it.
    ASSERT_TRUE((*store)->Write({{"us-east-1", t - 600, kCoarseSpan, {10, 20, 30}}}).ok());
  }
  std::string note;
  auto store = HistoryStore::Open(path_, &note);
  ASSERT_TRUE(store.ok()) << store.status();
  SignalHistory h;
  auto rows = (*store)->Load(&h, now_);
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(*rows, 3u);
  absl::Time minute = now_ - absl::Minutes(10);
  // The minute row was replaced (10, not 1) but the slot of that minute was loaded too, and
  // slots are the finer truth: the minute is the slot's.
  EXPECT_DOUBLE_EQ(h.Mean("us-east-1", minute, minute + absl::Minutes(1))->entry_sps, 1);
  SignalHistory minutes_only;
  auto all = (*store)->Load(&minutes_only, now_ + absl::Hours(25));  // the slot beyond a day
  ASSERT_TRUE(all.ok());
  EXPECT_DOUBLE_EQ(minutes_only.Mean("us-east-1", minute, minute + absl::Minutes(1))->entry_sps,
                   10);
  absl::Time old = now_ - absl::Hours(72);
  EXPECT_DOUBLE_EQ(h.Mean("eu-west-1", old, old + absl::Minutes(1))->requests_per_second, 6);
  ASSERT_TRUE((*store)->Trim(now_).ok());
  SignalHistory again;
  EXPECT_EQ(*(*store)->Load(&again, now_ + absl::Hours(24 * 365)), 0u);
}

TEST_F(HistoryStoreTest, ADamagedStoreIsMovedAsideNotEmptied) {
  std::ofstream(path_) << "this is not a database, but someone's data\n";
  std::string note;
  auto store = HistoryStore::Open(path_, &note);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_NE(note.find("was damaged"), std::string::npos) << note;
  EXPECT_NE(note.find("moved aside to " + path_ + ".damaged-"), std::string::npos) << note;
  bool kept = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (entry.path().filename().string().starts_with("history.db.damaged-")) {
      std::ifstream in(entry.path());
      std::string line;
      std::getline(in, line);
      kept = line == "this is not a database, but someone's data";
    }
  }
  EXPECT_TRUE(kept);
  SignalHistory h;
  EXPECT_EQ(*(*store)->Load(&h, now_), 0u);
  EXPECT_TRUE(
      (*store)->Write({{"r", absl::ToUnixSeconds(now_) - 60, kCoarseSpan, {1, 1, 1}}}).ok());
}

TEST_F(HistoryStoreTest, ADirectoryThatDoesNotExistIsAnError) {
  std::string note;
  auto store = HistoryStore::Open(dir_ + "/missing/history.db", &note);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("cannot be opened"), std::string::npos);
  EXPECT_EQ(note, "");
}

}  // namespace
}  // namespace sluice
