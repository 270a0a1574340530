// How much an HTTP/2 connection toward a peer lets the peer send ahead: its receive windows,
// sized to the path's bandwidth-delay product. A pure core: no sockets, no clock of its own,
// no nghttp2; the session (proxy/upstream/http2_upstream.cc) feeds it bytes and times.
//
// The window a single stream may have unacknowledged caps its throughput at window / RTT: a
// fixed 256 KiB is ~30 Mbit/s at 70 ms. So the window follows what the path carries, measured
// the way gRPC's BDP estimator does: when DATA arrives and no probe is out, the session sends a
// PING and counts the DATA bytes that arrive until its ACK. Those bytes are what the path
// delivered in one round trip. When they reach two thirds of the stream window, the sender was
// held back by the window: it grows to four times the sample (at least fourfold), up to
// `max_stream`. Four, where gRPC takes two: a step takes two round trips (the probe, then the
// new SETTINGS reaching the peer), while TCP's slow start doubles its window every round trip.
// It never shrinks (a peer may already have sent into it). Probes are paced: after one that
// found the window large enough the next waits 50 ms, then twice as long each time up to 10 s
// (a peer counts PINGs: a connection that never stops probing would be shed as a flood), and
// none once the window is at its maximum. While the samples still rise by half or more per
// probe (the sender's slow start: it doubles every round trip) the pause stays at 50 ms: a
// window that a path opening up found large enough says nothing about the path once open.
//
// The connection window follows the stream window (two streams' worth, at least 4 MiB), and
// the growth beyond the first connection window is drawn from a node-wide budget
// (WindowBudget): every byte a peer may send ahead is a byte this node may have to hold, so
// the sum is bounded however many peers, workers and connections there are.
#ifndef SLUICE_PROXY_UPSTREAM_WINDOW_SIZER_H_
#define SLUICE_PROXY_UPSTREAM_WINDOW_SIZER_H_

#include <atomic>
#include <cstdint>

namespace sluice {

// The connection window for a stream window: room for two streams at full speed, at least
// kMinConnectionWindow, at most HTTP/2's largest window.
inline constexpr uint32_t kMinConnectionWindow = 4u << 20;
inline constexpr uint32_t kMaxHttp2Window = (1u << 31) - 1;
uint32_t ConnectionWindowFor(uint32_t stream_window);

// Bytes every connection of this process may be granted beyond its first connection window.
// Thread-safe (every worker draws from one budget).
class WindowBudget {
 public:
  explicit WindowBudget(uint64_t limit) : limit_(limit) {}
  // The budget of upstream HTTP/2 connections (limits.upstream_window_memory).
  static WindowBudget& Upstream();

  void SetLimit(uint64_t limit) { limit_.store(limit, std::memory_order_relaxed); }
  uint64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  uint64_t reserved() const { return reserved_.load(std::memory_order_relaxed); }
  // Reserves up to `want` bytes; returns what it got (0 when the budget is spent).
  uint64_t ReserveUpTo(uint64_t want);
  void Release(uint64_t bytes) { reserved_.fetch_sub(bytes, std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> limit_;
  std::atomic<uint64_t> reserved_{0};
};

class WindowSizer {
 public:
  // `max_stream` <= `initial_stream`: the windows stay as they start (no probing).
  WindowSizer(uint32_t initial_stream, uint32_t max_stream);

  uint32_t stream_window() const { return stream_window_; }
  uint32_t connection_window() const { return connection_window_; }
  bool auto_sizing() const { return stream_window_ < max_stream_; }

  // DATA bytes arrived at `now_ns`. True when a probe PING should go out now (the caller
  // sends it and calls ProbeSent).
  bool OnData(uint64_t bytes, int64_t now_ns);
  void ProbeSent(int64_t now_ns);
  bool probing() const { return probing_; }

  // A change of windows the session should apply: new stream and connection windows, and the
  // bytes it reserved from the budget for it (the session releases what it reserved when it
  // closes). `grew` false: nothing to apply.
  struct Growth {
    bool grew = false;
    uint32_t stream_window = 0;
    uint32_t connection_window = 0;
    uint64_t reserved = 0;
  };
  // The probe's ACK came back at `now_ns`. Grows the windows when the last round trip's bytes
  // filled most of the stream window, within what `budget` grants.
  Growth OnProbeAck(int64_t now_ns, WindowBudget* budget);

  // Round trips measured by probes (and keep-alive PINGs, through OnRoundTrip); 0: none yet.
  int64_t last_rtt_ns() const { return last_rtt_ns_; }
  int64_t min_rtt_ns() const { return min_rtt_ns_; }
  void OnRoundTrip(int64_t rtt_ns);

 private:
  uint32_t stream_window_;
  uint32_t connection_window_;
  uint32_t max_stream_;
  bool probing_ = false;
  int64_t probe_sent_ns_ = 0;
  uint64_t probe_bytes_ = 0;
  uint64_t last_probe_bytes_ = 0;  // the sample before, to tell a sender still speeding up
  int64_t last_rtt_ns_ = 0;
  int64_t min_rtt_ns_ = 0;
  int64_t next_probe_ns_ = 0;  // no probe before this
  int64_t probe_gap_ns_ = 0;   // after a probe that did not grow the window
};

}  // namespace sluice

#endif  // SLUICE_PROXY_UPSTREAM_WINDOW_SIZER_H_
