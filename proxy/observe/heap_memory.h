// What the process's heap holds, as glibc's malloc counts it: the bytes in live allocations
// and the bytes it got from the system for them. Their difference is free memory malloc keeps
// for later (after a burst of concurrent requests, say), much of which stays resident; so the
// live bytes are what connections and caches actually hold, whatever the allocator's history.
// "Live" as malloc sees it: chunk headers, and the few freed chunks each thread keeps in its
// own small cache (tcache: at most 7 per size, up to about 1 KiB), count as in use.
#ifndef SLUICE_PROXY_OBSERVE_HEAP_MEMORY_H_
#define SLUICE_PROXY_OBSERVE_HEAP_MEMORY_H_

#include <cstdint>
#include <optional>

namespace sluice {

struct HeapMemory {
  uint64_t allocated = 0;  // in live allocations, mmapped ones included
  uint64_t heap = 0;       // taken from the system: the arenas and the mmapped allocations
};

// The counts for every thread's arena. Each arena is locked while it is counted (glibc walks
// its free lists), so this is for a scrape, not for a request path. nullopt where the counts are
// not glibc's malloc's (another C library, or a sanitizer's allocator in its place).
std::optional<HeapMemory> ReadHeapMemory();

}  // namespace sluice

#endif  // SLUICE_PROXY_OBSERVE_HEAP_MEMORY_H_
