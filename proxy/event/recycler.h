// Memory blocks of one size kept per thread for reuse. Objects that a worker makes and destroys
// over and over (the HTTP/1 codec of a connection that wakes up for a request and is parked
// again when idle, the forwarder of each request) take their memory from here through a class
// operator new, so once a worker has warmed up they cost no call to malloc.
//
// Each thread keeps at most kKeep free blocks (so the memory held beyond what is in use is
// bounded: kKeep x kSize per thread); further ones go back to malloc. A block freed on another
// thread than the one that took it simply joins that thread's list. Under AddressSanitizer
// every block goes straight to malloc and free, so use-after-free stays detectable.
#ifndef SLUICE_PROXY_EVENT_RECYCLER_H_
#define SLUICE_PROXY_EVENT_RECYCLER_H_

#include <cstddef>
#include <cstdlib>
#include <new>

namespace sluice {

#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_RECYCLER_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLUICE_RECYCLER_OFF 1
#endif
#endif

template <size_t kSize, size_t kKeep>
class BlockRecycler {
 public:
  static void* Take() {
#ifndef SLUICE_RECYCLER_OFF
    if (state_ != kDead) {
      FreeList& list = List();
      if (list.head) {
        Block* block = list.head;
        list.head = block->next;
        --list.count;
        return block;
      }
    }
#endif
    void* p = std::malloc(kBlockSize);
    if (!p) throw std::bad_alloc();
    return p;
  }

  static void Give(void* p) {
    if (!p) return;
#ifndef SLUICE_RECYCLER_OFF
    if (state_ != kDead) {
      FreeList& list = List();
      if (list.count < kKeep) {
        Block* block = static_cast<Block*>(p);
        block->next = list.head;
        list.head = block;
        ++list.count;
        return;
      }
    }
#endif
    std::free(p);
  }

  // Free blocks kept by this thread (for tests).
  static size_t kept() { return state_ == kAlive ? List().count : 0; }

 private:
  struct Block {
    Block* next;
  };
  static constexpr size_t kBlockSize = kSize < sizeof(Block) ? sizeof(Block) : kSize;

  struct FreeList {
    Block* head = nullptr;
    size_t count = 0;
    FreeList() { state_ = kAlive; }
    ~FreeList() {
      state_ = kDead;  // blocks given back after this (thread exit) go to free()
      while (head) {
        Block* next = head->next;
        std::free(head);
        head = next;
      }
    }
  };

  static FreeList& List() {
    thread_local FreeList list;
    return list;
  }

  // This thread's list: not made yet, in use, or destroyed (the thread is exiting). Trivially
  // destructible, so it can still be read after the list itself is gone.
  enum State : unsigned char { kNew, kAlive, kDead };
  static inline thread_local State state_ = kNew;
};

// Class operator new/delete for T (declare in T: `static void* operator new(size_t size)` and
// `static void operator delete(void* p, size_t size)`, defined with these): blocks of exactly
// sizeof(T) come from the recycler; anything else (a derived class) from malloc.
template <typename T, size_t kKeep>
struct RecycledAllocation {
  using Recycler = BlockRecycler<sizeof(T), kKeep>;
  static void* New(size_t size) {
    if (size != sizeof(T)) return ::operator new(size);
    return Recycler::Take();
  }
  static void Delete(void* p, size_t size) {
    if (size != sizeof(T)) {
      ::operator delete(p);
      return;
    }
    Recycler::Give(p);
  }
};

}  // namespace sluice

#endif  // SLUICE_PROXY_EVENT_RECYCLER_H_
