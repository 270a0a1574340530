#include "proxy/upstream/window_sizer.h"

#include <algorithm>

namespace sluice {

uint32_t ConnectionWindowFor(uint32_t stream_window) {
  const uint64_t two = uint64_t{stream_window} * 2;
  return static_cast<uint32_t>(std::clamp<uint64_t>(two, kMinConnectionWindow, kMaxHttp2Window));
}

WindowBudget& WindowBudget::Upstream() {
  static WindowBudget budget(256u << 20);
  return budget;
}

uint64_t WindowBudget::ReserveUpTo(uint64_t want) {
  uint64_t held = reserved_.load(std::memory_order_relaxed);
  for (;;) {
    const uint64_t cap = limit_.load(std::memory_order_relaxed);
    const uint64_t got = held >= cap ? 0 : std::min(want, cap - held);
    if (got == 0) return 0;
    if (reserved_.compare_exchange_weak(held, held + got, std::memory_order_relaxed)) return got;
  }
}

WindowSizer::WindowSizer(uint32_t initial_stream, uint32_t max_stream)
    : stream_window_(std::min(initial_stream, kMaxHttp2Window)),
      connection_window_(ConnectionWindowFor(stream_window_)),
      max_stream_(std::min(max_stream, kMaxHttp2Window)) {}

namespace {
constexpr int64_t kFirstProbeGapNs = 50'000'000;     // 50 ms
constexpr int64_t kLastProbeGapNs = 10'000'000'000;  // 10 s
}  // namespace

bool WindowSizer::OnData(uint64_t bytes, int64_t now_ns) {
  if (probing_) {
    probe_bytes_ += bytes;
    return false;
  }
  return auto_sizing() && now_ns >= next_probe_ns_;
}

void WindowSizer::ProbeSent(int64_t now_ns) {
  probing_ = true;
  probe_sent_ns_ = now_ns;
  probe_bytes_ = 0;
}

void WindowSizer::OnRoundTrip(int64_t rtt_ns) {
  if (rtt_ns <= 0) return;
  last_rtt_ns_ = rtt_ns;
  if (min_rtt_ns_ == 0 || rtt_ns < min_rtt_ns_) min_rtt_ns_ = rtt_ns;
}

WindowSizer::Growth WindowSizer::OnProbeAck(int64_t now_ns, WindowBudget* budget) {
  Growth growth;
  if (!probing_) return growth;
  probing_ = false;
  OnRoundTrip(now_ns - probe_sent_ns_);
  // Held back by the window: the round trip carried two thirds of it or more. If not, the
  // next probe waits (longer each time the window proves large enough).
  // A sample half as large again as the last one is a sender still opening its congestion
  // window (slow start doubles it every round trip): the window may soon hold it back, so
  // the pause stays at its shortest until the samples level off.
  const bool rising = probe_bytes_ * 2 >= last_probe_bytes_ * 3 && last_probe_bytes_ > 0;
  last_probe_bytes_ = probe_bytes_;
  if (!auto_sizing() || probe_bytes_ * 3 < uint64_t{stream_window_} * 2) {
    probe_gap_ns_ = rising ? kFirstProbeGapNs
                           : std::clamp(probe_gap_ns_ * 2, kFirstProbeGapNs, kLastProbeGapNs);
    next_probe_ns_ = now_ns + probe_gap_ns_;
    return growth;
  }
  probe_gap_ns_ = 0;
  next_probe_ns_ = 0;
  const uint64_t wanted = std::max(probe_bytes_, uint64_t{stream_window_}) * 4;
  uint32_t stream = static_cast<uint32_t>(std::min<uint64_t>(wanted, max_stream_));
  uint32_t connection = ConnectionWindowFor(stream);
  if (connection > connection_window_) {
    const uint64_t got = budget->ReserveUpTo(connection - connection_window_);
    growth.reserved = got;
    connection = connection_window_ + static_cast<uint32_t>(got);
  }
  // Without budget a stream may still use more of the connection window it already has.
  stream = std::min(stream, connection);
  if (stream <= stream_window_ && connection <= connection_window_) return growth;
  stream_window_ = std::max(stream, stream_window_);
  connection_window_ = connection;
  growth.grew = true;
  growth.stream_window = stream_window_;
  growth.connection_window = connection_window_;
  return growth;
}

}  // namespace sluice
