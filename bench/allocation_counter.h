// Heap allocations made by this binary so far: a counting operator new replaces the global
// one, and OpenSSL's allocator (CRYPTO_malloc and CRYPTO_realloc, which C++'s operator new does
// not see) is routed through the same counter before OpenSSL allocates anything
// (allocation_counter.cc). Benchmarks report allocations per operation from it; the unit tests
// link it too, to prove a path allocates nothing.
#ifndef SLUICE_BENCH_ALLOCATION_COUNTER_H_
#define SLUICE_BENCH_ALLOCATION_COUNTER_H_

#include <cstdint>

namespace sluice {

uint64_t AllocationCount();

// False when OpenSSL had allocated before the counter could hook it: its allocations are then
// not in AllocationCount().
bool AllocationCountIncludesOpenSsl();

}  // namespace sluice

#endif  // SLUICE_BENCH_ALLOCATION_COUNTER_H_
