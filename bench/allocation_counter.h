// Heap allocations made by this binary so far (a counting operator new replaces the global one
// in allocation_counter.cc). Benchmarks report allocations per operation from it; the unit
// tests link it too, to prove a path allocates nothing.
#ifndef SLUICE_BENCH_ALLOCATION_COUNTER_H_
#define SLUICE_BENCH_ALLOCATION_COUNTER_H_

#include <cstdint>

namespace sluice {

uint64_t AllocationCount();

}  // namespace sluice

#endif  // SLUICE_BENCH_ALLOCATION_COUNTER_H_
