#include "proxy/observe/heap_memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace sluice {

// The sanitizers that replace malloc (address, thread, memory, hwaddress): glibc's counts would
// describe a heap nobody uses. UndefinedBehaviorSanitizer alone keeps glibc's malloc.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SLUICE_HEAP_COUNTS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer) || __has_feature(hwaddress_sanitizer)
#define SLUICE_HEAP_COUNTS 0
#endif
#endif
#if !defined(SLUICE_HEAP_COUNTS) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#define SLUICE_HEAP_COUNTS 1  // mallinfo2 (2.33): sizes in size_t, not int
#endif

std::optional<HeapMemory> ReadHeapMemory() {
#if SLUICE_HEAP_COUNTS
  const struct mallinfo2 info = mallinfo2();
  HeapMemory memory;
  // uordblks: in use in the arenas; hblkhd: the allocations malloc mmapped on their own.
  memory.allocated = info.uordblks + info.hblkhd;
  // arena: what the arenas took from the system (sbrk and their own mappings).
  memory.heap = info.arena + info.hblkhd;
  return memory;
#else
  return std::nullopt;
#endif
}

}  // namespace sluice
