#include "bench/allocation_counter.h"

#include <openssl/crypto.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {

std::atomic<uint64_t> g_allocations{0};

void* CountedCryptoMalloc(size_t size, const char* /*file*/, int /*line*/) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size);
}

void* CountedCryptoRealloc(void* p, size_t size, const char* /*file*/, int /*line*/) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::realloc(p, size);
}

void CryptoFree(void* p, const char* /*file*/, int /*line*/) { std::free(p); }

// OpenSSL accepts other allocator functions only before its first allocation: a static
// initializer runs before main() and before any benchmark touches OpenSSL.
const bool g_openssl_counted =
    CRYPTO_set_mem_functions(CountedCryptoMalloc, CountedCryptoRealloc, CryptoFree) == 1;

}  // namespace

// The replaced operators pair malloc and free. Every non-aligned form is replaced, not only the
// plain one: under AddressSanitizer the runtime supplies each form itself, so a nothrow new left
// to it (std::stable_sort's temporary buffer) would be freed by the delete below, a mismatch.
// The aligned forms stay the runtime's, new and delete alike.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {

void* CountedAllocate(size_t size) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}

}  // namespace

void* operator new(size_t size) {
  if (void* p = CountedAllocate(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) {
  if (void* p = CountedAllocate(size)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t size, const std::nothrow_t&) noexcept { return CountedAllocate(size); }
void* operator new[](size_t size, const std::nothrow_t&) noexcept { return CountedAllocate(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace sluice {

uint64_t AllocationCount() { return g_allocations.load(std::memory_order_relaxed); }

bool AllocationCountIncludesOpenSsl() { return g_openssl_counted; }

}  // namespace sluice
