#include "proxy/event/loop_context.h"

#include <sys/random.h>

#include <cstring>
#include <ctime>

namespace sluice {

LoopContext::LoopContext(uv_loop_t* loop) : loop_(loop), read_buffer_(new char[kReadBufferSize]) {
  loop_->data = this;
  // Deferred work runs in two places so it never waits behind a blocking poll: prepare (just
  // before polling: work scheduled by timers and close callbacks) and check (right after the
  // I/O callbacks).
  uv_prepare_init(loop_, &prepare_);
  prepare_.data = this;
  // The clock's cached reading is dropped after the tasks before a poll (the poll may wait) and
  // before the tasks after the I/O callbacks.
  uv_prepare_start(&prepare_, [](uv_prepare_t* h) {
    auto* self = static_cast<LoopContext*>(h->data);
    self->Drain(true);
    self->ResumeWaitingHandshakes();
    self->clock_.Invalidate();
  });
  uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
  uv_check_init(loop_, &check_);
  check_.data = this;
  uv_check_start(&check_, [](uv_check_t* h) {
    auto* self = static_cast<LoopContext*>(h->data);
    self->clock_.Invalidate();
    self->Drain(true);
  });
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
  uv_idle_init(loop_, &idle_);
  uv_unref(reinterpret_cast<uv_handle_t*>(&idle_));

  if (getrandom(rng_, sizeof(rng_), 0) != static_cast<ssize_t>(sizeof(rng_))) {
    uint64_t seed = static_cast<uint64_t>(time(nullptr)) ^ reinterpret_cast<uintptr_t>(this);
    for (uint64_t& word : rng_)
      word = seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  }
  if ((rng_[0] | rng_[1] | rng_[2] | rng_[3]) == 0) rng_[0] = 1;
}

LoopContext::~LoopContext() {
  // Tasks still scheduled belong to objects that are gone or never ran; drop the links.
  while (tasks_.PopFront() != nullptr) {
  }
  while (handshake_waiters_.PopFront() != nullptr) {
  }
  while (late_.PopFront() != nullptr) {
  }
  deletions_.clear();
}

void LoopContext::Schedule(DeferredTask* task) {
  if (!task->scheduled()) tasks_.PushBack(task);
}

void LoopContext::ScheduleLate(DeferredTask* task) {
  if (!task->scheduled()) late_.PushBack(task);
}

void LoopContext::DeleteLater(std::unique_ptr<Deletable> object) {
  deletions_.push_back(std::move(object));
}

void LoopContext::Drain(bool late) {
  // Tasks may schedule more tasks (a resumed parser writes, which schedules a flush); run
  // until quiet, but bounded so a task that keeps rescheduling cannot starve the poll.
  for (int round = 0; round < 64; ++round) {
    if (tasks_.empty() && deletions_.empty() && (!late || late_.empty())) return;
    IntrusiveList<DeferredTask, &DeferredTask::node_> batch;
    while (DeferredTask* t = tasks_.PopFront()) batch.PushBack(t);
    if (late && tasks_.empty()) {
      while (DeferredTask* t = late_.PopFront()) batch.PushBack(t);
    }
    while (DeferredTask* t = batch.PopFront()) t->RunDeferred();
    // Destructors may hand over more objects: those wait in the other vector. Both keep their
    // capacity, so a deletion per request costs no allocation.
    dying_.swap(deletions_);
    dying_.clear();
  }
}

void LoopContext::RunDeferredNow() { Drain(true); }

void LoopContext::RunAfterCallback() { Drain(false); }

TimeoutQueue* LoopContext::FindTimeouts(absl::Duration duration) {
  uint64_t ms = static_cast<uint64_t>(absl::ToInt64Milliseconds(duration));
  if (ms == 0) ms = 1;
  TimeoutQueue*& queue = timeouts_[ms];
  if (!queue) queue = new TimeoutQueue(loop_, ms);  // deleted by its own close callback
  recent_queues_[next_recent_] = RecentQueue{duration, queue};
  next_recent_ = static_cast<uint8_t>((next_recent_ + 1) % recent_queues_.size());
  return queue;
}

char* LoopContext::tls_buffer() {
  if (!tls_buffer_) tls_buffer_.reset(new char[kTlsBufferSize]);
  return tls_buffer_.get();
}

namespace {

// Enough for the connections active within one loop iteration; a buffer that grew for a
// large body is not worth keeping.
constexpr size_t kMaxPooledBuffers = 256;
constexpr size_t kMaxPooledCapacity = 64 * 1024;
constexpr size_t kNewBufferCapacity = 4096;

}  // namespace

std::string LoopContext::TakeBuffer() {
  if (buffers_.empty()) {
    std::string buffer;
    buffer.reserve(kNewBufferCapacity);
    return buffer;
  }
  std::string buffer = std::move(buffers_.back());
  buffers_.pop_back();
  return buffer;
}

void LoopContext::GiveBuffer(std::string&& buffer) {
  if (buffers_.size() >= kMaxPooledBuffers || buffer.capacity() > kMaxPooledCapacity) {
    std::string().swap(buffer);
    return;
  }
  buffer.clear();
  buffers_.push_back(std::move(buffer));
}

std::unique_ptr<std::string> LoopContext::TakeBoxedBuffer() {
  if (boxed_buffers_.empty()) {
    auto buffer = std::make_unique<std::string>();
    buffer->reserve(kNewBufferCapacity);
    return buffer;
  }
  std::unique_ptr<std::string> buffer = std::move(boxed_buffers_.back());
  boxed_buffers_.pop_back();
  return buffer;
}

void LoopContext::GiveBoxedBuffer(std::unique_ptr<std::string> buffer) {
  if (!buffer || boxed_buffers_.size() >= kMaxPooledBuffers ||
      buffer->capacity() > kMaxPooledCapacity) {
    return;  // freed
  }
  buffer->clear();
  boxed_buffers_.push_back(std::move(buffer));
}

uint64_t LoopContext::Random() {
  auto rotl = [](uint64_t x, int k) { return (x << k) | (x >> (64 - k)); };
  uint64_t result = rotl(rng_[1] * 5, 7) * 9;
  uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = rotl(rng_[3], 45);
  return result;
}

void LoopContext::WaitForHandshakeBudget(HandshakeWaiter* waiter) {
  if (waiter->waiting_for_budget() || closed_) return;
  handshake_waiters_.PushBack(waiter);
  ++handshakes_waited_;
  // An idle handle keeps the next poll from sleeping: the waiters go on at once.
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) {
    uv_idle_start(&idle_, [](uv_idle_t*) {});
  }
}

void LoopContext::ResumeWaitingHandshakes() {
  handshake_spent_ns_ = 0;
  if (handshake_waiters_.empty()) return;
  while (HandshakeBudgetLeft()) {
    HandshakeWaiter* waiter = handshake_waiters_.PopFront();
    if (!waiter) break;
    waiter->ResumeHandshake();
    Drain(true);  // its output (the server's flight) goes out now, as after an I/O callback
  }
  if (handshake_waiters_.empty()) uv_idle_stop(&idle_);
}

void LoopContext::Close() {
  if (closed_) return;
  closed_ = true;
  while (handshake_waiters_.PopFront() != nullptr) {
  }
  uv_idle_stop(&idle_);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
  Drain(true);
  recent_queues_ = {};
  for (auto& [ms, queue] : timeouts_) queue->CloseAndDelete();
  timeouts_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
}

}  // namespace sluice
