// Per-loop services shared by everything that runs on one worker's libuv loop: deferred tasks
// (work that must run after the current callback returns, but before the loop sleeps again),
// deferred deletion, timeout queues, the shared read buffer, a scratch buffer and a random
// source. One per loop; loop thread only. Found from any handle via LoopContext::From(loop).
#ifndef SLUICE_PROXY_EVENT_LOOP_CONTEXT_H_
#define SLUICE_PROXY_EVENT_LOOP_CONTEXT_H_

#include <uv.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/log.h"
#include "proxy/event/intrusive_list.h"
#include "proxy/event/timeout_queue.h"

namespace sluice {

// Work queued with LoopContext::Schedule; runs once, FIFO, on the loop thread. Destroying a
// scheduled task cancels it.
class DeferredTask {
 public:
  virtual void RunDeferred() = 0;
  bool scheduled() const { return node_.linked(); }
  void CancelDeferred() { node_.Unlink(); }

 protected:
  DeferredTask() = default;
  virtual ~DeferredTask() = default;

 private:
  friend class LoopContext;
  ListNode node_;
};

// A server-side TLS handshake waiting for the loop's handshake budget (LoopContext::
// WaitForHandshakeBudget). Destroying a waiter takes it out of the queue.
class HandshakeWaiter {
 public:
  // The budget has room: go on with the handshake.
  virtual void ResumeHandshake() = 0;
  bool waiting_for_budget() const { return handshake_node_.linked(); }

 protected:
  HandshakeWaiter() = default;
  virtual ~HandshakeWaiter() = default;
  void StopWaitingForBudget() { handshake_node_.Unlink(); }

 private:
  friend class LoopContext;
  ListNode handshake_node_;
};

// Time as a loop's callbacks see it: the monotonic clock is read once per batch of callbacks
// (the I/O callbacks after one poll, the tasks before it) instead of at every use, which on the
// request path was a dozen reads per request. A value is never older than the batch it is read
// in, so it is the time the batch's events were dispatched, at least as exact for a latency as a
// read taken later in the batch. Wall-clock seconds are read as they are asked for. Loop thread
// only.
class LoopClock : public Clock {
 public:
  int64_t MonotonicNanos() const override {
    if (!valid_) {
      now_ = SystemClock().MonotonicNanos();
      valid_ = true;
    }
    return now_;
  }
  int64_t UnixSeconds() const override { return SystemClock().UnixSeconds(); }
  // The next read takes a fresh value: called where the loop may have waited.
  void Invalidate() { valid_ = false; }

 private:
  mutable int64_t now_ = 0;
  mutable bool valid_ = false;
};

// Objects handed to LoopContext::DeleteLater.
class Deletable {
 public:
  virtual ~Deletable() = default;
};

class LoopContext {
 public:
  static constexpr size_t kReadBufferSize = 64 * 1024;

  explicit LoopContext(uv_loop_t* loop);
  LoopContext(const LoopContext&) = delete;
  LoopContext& operator=(const LoopContext&) = delete;
  ~LoopContext();

  static LoopContext* From(uv_loop_t* loop) { return static_cast<LoopContext*>(loop->data); }
  uv_loop_t* loop() const { return loop_; }

  // Runs `task` before the loop next waits for I/O: at the end of the current I/O phase, or
  // before polling when scheduled from timers or close callbacks. Scheduling twice is a no-op.
  void Schedule(DeferredTask* task);
  // Like Schedule, but runs only once the loop's I/O callbacks of this iteration are done
  // (not from RunAfterCallback): a multiplexed connection's output is written once per
  // iteration, with every stream's bytes of that iteration in it, instead of once per event.
  void ScheduleLate(DeferredTask* task);
  // Destroys `object` once the current callback chain has unwound (same loop iteration).
  void DeleteLater(std::unique_ptr<Deletable> object);

  // The queue for timeouts of this duration (at least 1 ms); created on first use. The last
  // durations asked for are found without a lookup: a request arms the same three or four.
  TimeoutQueue* Timeouts(absl::Duration duration) {
    for (const RecentQueue& recent : recent_queues_) {
      if (recent.queue && recent.duration == duration) return recent.queue;
    }
    return FindTimeouts(duration);
  }

  // A buffer for reads. Shared by every socket on the loop: a read callback must consume or
  // copy what it was given before returning.
  char* read_buffer() { return read_buffer_.get(); }
  // Where TLS streams decrypt one read into (kTlsBufferSize: a full read buffer of ciphertext
  // plus a record OpenSSL may hold back); allocated on first use.
  static constexpr size_t kTlsBufferSize = kReadBufferSize + 20 * 1024;
  char* tls_buffer();
  // A reusable string for building output; valid until the next call that uses it.
  std::string& scratch() { return scratch_; }
  // Output buffers shared by the loop's sockets, so that an idle connection holds none and a
  // busy one allocates none: take one when bytes must wait, give it back once they are out.
  std::string TakeBuffer();
  void GiveBuffer(std::string&& buffer);
  // The same for a holder that keeps only a pointer (a connection's output queue: 8 bytes in
  // every idle connection instead of a std::string's 32).
  std::unique_ptr<std::string> TakeBoxedBuffer();
  void GiveBoxedBuffer(std::unique_ptr<std::string> buffer);
  // The loop's clock (see LoopClock); lives as long as the context.
  const Clock& clock() const { return clock_; }
  // Fast, non-cryptographic random numbers (xoshiro256**), seeded from the OS.
  uint64_t Random();
  // The loop's budget for per-request warnings (an origin failing every request must not
  // write a line per request): 10 a second.
  LogRateLimit& request_warnings() { return request_warnings_; }

  // Handshakes pay by the loop iteration: in a storm of new TLS connections a worker spends at
  // most `budget` of each iteration on server-side handshakes (the first flight, an ECDHE key
  // and a signature, is most of a handshake's CPU); the others wait in arrival order for the
  // next iterations, which poll without sleeping while any wait. So the established
  // connections' events run between every few handshakes instead of behind thousands.
  // Zero: no budget.
  void SetHandshakeBudget(absl::Duration budget) {
    handshake_budget_ns_ = ToInt64Nanoseconds(budget);
  }
  bool handshake_budget_enabled() const { return handshake_budget_ns_ > 0; }
  // Whether this iteration's budget has room (always, without a budget).
  bool HandshakeBudgetLeft() const {
    return handshake_budget_ns_ == 0 || handshake_spent_ns_ < handshake_budget_ns_;
  }
  void ChargeHandshake(int64_t nanos) { handshake_spent_ns_ += nanos; }
  // A server TLS connection pays for its reads from the same budget until this long after its
  // handshake (TcpStream::OnReadable): the rest of its handshake, its first requests and its
  // end are new connections' work too. A storm's clients live shorter than a second, the
  // established connections a savior serves much longer. Zero (the default): only the
  // handshakes and the accepts.
  void SetYoungConnectionAge(absl::Duration age) { young_age_ns_ = ToInt64Nanoseconds(age); }
  int64_t young_age_ns() const { return young_age_ns_; }
  // Queues `waiter` (once) until an iteration's budget has room for it.
  void WaitForHandshakeBudget(HandshakeWaiter* waiter);
  // Handshakes that waited for a later iteration, since the loop started.
  uint64_t handshakes_waited() const { return handshakes_waited_; }

  // Runs pending deferred work now, late tasks included. For tests and for shutdown.
  void RunDeferredNow();
  // What an I/O callback runs before returning: pending work except the late tasks.
  void RunAfterCallback();
  // Closes the loop's own handles. Call before the last uv_run that lets the loop end.
  void Close();

 private:
  struct RecentQueue {
    absl::Duration duration;
    TimeoutQueue* queue = nullptr;
  };

  void Drain(bool late);
  TimeoutQueue* FindTimeouts(absl::Duration duration);
  // Before each poll: a fresh budget, spent first on the handshakes that waited.
  void ResumeWaitingHandshakes();

  uv_loop_t* loop_;
  uv_prepare_t prepare_;
  uv_check_t check_;
  uv_idle_t idle_;  // active while handshakes wait: the poll does not sleep
  LoopClock clock_;
  IntrusiveList<DeferredTask, &DeferredTask::node_> tasks_;
  IntrusiveList<DeferredTask, &DeferredTask::node_> late_;
  std::vector<std::unique_ptr<Deletable>> deletions_;
  std::vector<std::unique_ptr<Deletable>> dying_;  // being destroyed by Drain()
  std::map<uint64_t, TimeoutQueue*> timeouts_;
  std::array<RecentQueue, 4> recent_queues_{};  // replaced in turn
  uint8_t next_recent_ = 0;
  std::unique_ptr<char[]> read_buffer_;
  std::unique_ptr<char[]> tls_buffer_;
  std::string scratch_;
  std::vector<std::string> buffers_;
  std::vector<std::unique_ptr<std::string>> boxed_buffers_;
  uint64_t rng_[4];
  LogRateLimit request_warnings_{10};
  IntrusiveList<HandshakeWaiter, &HandshakeWaiter::handshake_node_> handshake_waiters_;
  int64_t handshake_budget_ns_ = 0;
  int64_t handshake_spent_ns_ = 0;
  int64_t young_age_ns_ = 0;
  uint64_t handshakes_waited_ = 0;
  bool closed_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_EVENT_LOOP_CONTEXT_H_
