#include "proxy/observe/heap_memory.h"

#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

// 4 MiB in blocks small enough to come from an arena, and one block above the largest threshold
// from which malloc maps a block on its own (32 MiB on 64-bit glibc), so it is always mapped
// (counted whether its pages are touched or not).
constexpr size_t kBlock = 1024;
constexpr size_t kBlocks = 4096;
constexpr size_t kBig = 64 << 20;
// What other threads of the test binary, and the per-thread cache of freed chunks, may move
// between two readings.
constexpr size_t kSlack = 1 << 20;

TEST(HeapMemoryTest, CountsFollowLiveAllocationsAndFreeMemory) {
  const std::optional<HeapMemory> start = ReadHeapMemory();
  if (!start) GTEST_SKIP() << "no malloc counts here (not glibc's malloc)";
  EXPECT_GT(start->allocated, 0u);
  EXPECT_GE(start->heap, start->allocated);

  std::vector<std::unique_ptr<char[]>> blocks;
  for (size_t i = 0; i < kBlocks; ++i) {
    blocks.emplace_back(new char[kBlock]);
    std::memset(blocks.back().get(), static_cast<int>(i), kBlock);
  }
  std::unique_ptr<char[]> big(new char[kBig]);
  const std::optional<HeapMemory> held = ReadHeapMemory();
  ASSERT_TRUE(held);
  EXPECT_GE(held->allocated, start->allocated + kBlocks * kBlock + kBig);
  EXPECT_GE(held->heap, start->heap + kBig);
  EXPECT_GE(held->heap, held->allocated);

  // Every other block freed: live bytes fall, the arena keeps its memory (the blocks left pin
  // it), so the free memory grows by as much.
  for (size_t i = 0; i < kBlocks; i += 2) blocks[i].reset();
  const std::optional<HeapMemory> half = ReadHeapMemory();
  ASSERT_TRUE(half);
  const size_t freed = kBlocks / 2 * kBlock;
  EXPECT_LE(half->allocated + freed, held->allocated + kSlack);
  EXPECT_GE(half->heap + kSlack, held->heap);
  EXPECT_GE((half->heap - half->allocated) + kSlack, (held->heap - held->allocated) + freed);

  // The mapped block goes back to the system at once: out of both counts.
  big.reset();
  const std::optional<HeapMemory> unmapped = ReadHeapMemory();
  ASSERT_TRUE(unmapped);
  EXPECT_LE(unmapped->allocated + kBig, half->allocated + kSlack);
  EXPECT_LE(unmapped->heap + kBig, half->heap + kSlack);
  EXPECT_GE(unmapped->heap, unmapped->allocated);
}

}  // namespace
}  // namespace sluice
