#include "proxy/observe/heap_memory.h"

#include <cstring>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

// 4 MiB in blocks small enough to come from an arena (malloc mmaps blocks of 128 KiB and more
// on their own) and in one big block, each filled so that it is really there.
constexpr size_t kBlock = 1024;
constexpr size_t kBlocks = 4096;
constexpr size_t kBig = 4 << 20;

TEST(HeapMemoryTest, AllocatedFollowsLiveAllocations) {
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
  std::memset(big.get(), 1, kBig);
  const std::optional<HeapMemory> held = ReadHeapMemory();
  ASSERT_TRUE(held);
  // Other threads of the test binary may allocate too, but not take back what is ours.
  EXPECT_GE(held->allocated, start->allocated + kBlocks * kBlock + kBig);
  EXPECT_GE(held->heap, held->allocated);

  blocks.clear();
  big.reset();
  const std::optional<HeapMemory> freed = ReadHeapMemory();
  ASSERT_TRUE(freed);
  EXPECT_LE(freed->allocated + kBlocks * kBlock + kBig, held->allocated + (1 << 20));
  EXPECT_GE(freed->heap, freed->allocated);
}

}  // namespace
}  // namespace sluice
