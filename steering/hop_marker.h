// The tunnel hop marker: the `sluice-hop` request header a sluice adds when it tunnels a
// request to a peer region's sluice, and which that peer verifies before it serves the request
// locally (never tunneling it again) and believes the client address the sender forwarded. It
// carries the sending region, a timestamp, a random nonce and the request id, authenticated
// with HMAC-SHA256 under the shared tunnel key:
//
//   sluice-hop: v2;from=us-east-1;ts=1763790000;nonce=<16 hex>;id=3f2a...;mac=<64 lowercase hex>
//   mac = HMAC-SHA256(key, "sluice-hop-v2\n" from "\n" to "\n" ts "\n" nonce "\n" id "\n"
//                          method "\n" path ["?" query] "\n" authority "\n" forwarded-for "\n"
//                          body)
//
// `to` (the receiving region), the request line, the Host, every X-Forwarded-For value (joined
// by ", ") and the body's framing ("-": none, "chunked", or the Content-Length) are inside the
// MAC but not in the header: a marker is good for one request to one region only, as sent,
// within the skew window; the receiver remembers nonces (HopReplayCache) so it is good once.
// A marker that fails (a client forging one, a stale or replayed one, another key) is
// stripped, counted and ignored: the request is steered like any other. Several keys may
// verify (rotation); the first one signs.
#ifndef SLUICE_STEERING_HOP_MARKER_H_
#define SLUICE_STEERING_HOP_MARKER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

inline constexpr std::string_view kHopHeader = "sluice-hop";
// The widest skew window a configuration may allow (tunnel.max_skew).
inline constexpr int64_t kMaxHopSkewSeconds = 300;

enum class HopVerdict : uint8_t {
  kValid,
  kMalformed,    // not the syntax above
  kStale,        // timestamp outside the skew window
  kBadMac,       // another key, altered, or meant for another region or request
  kUnknownFrom,  // the sending region is not a peer region (checked by the caller)
  kReplayed,     // its nonce was seen before (checked by the caller, HopReplayCache)
  kCount,        // not a verdict: the number of values above (new values go before it)
};
inline constexpr int kHopVerdicts = static_cast<int>(HopVerdict::kCount);

const char* HopVerdictName(HopVerdict verdict);

// The fields of a marker, as views into its header value.
struct HopMarker {
  std::string_view from;
  int64_t timestamp = 0;
  std::string_view timestamp_text;  // as written (canonical decimal): what was signed
  uint64_t nonce = 0;
  std::string_view nonce_text;  // 16 lowercase hex digits
  std::string_view request_id;
  std::string_view mac_hex;
};

// What of the request the MAC covers, as the sender writes it and the receiver reads it.
struct HopRequest {
  std::string_view method;
  std::string_view path;
  std::string_view query;          // without the '?'; empty: none
  std::string_view authority;      // Host
  std::string_view forwarded_for;  // every X-Forwarded-For value, joined by ", "
  std::string_view body = "-";     // "-": none; "chunked"; or the Content-Length in decimal
};

// Syntax only. False for anything that is not exactly the format above.
bool ParseHopMarker(std::string_view value, HopMarker* out);

// A request id as the marker carries it: 1..128 visible ASCII characters other than ';' and
// ','. Anything else travels as "-".
std::string_view HopRequestId(std::string_view request_id);

struct HmacState;  // a key's HMAC-SHA256 states after its padded blocks, copied for each MAC

// Signs and verifies markers. Immutable after construction, so one signer serves every worker.
// A MAC allocates nothing (Verify: about 0.3 us with the first key, bench/steering_bench.cc).
class HopSigner {
 public:
  // `keys`: the first signs, every one verifies. Each must be at least 32 bytes (checked by
  // the configuration).
  explicit HopSigner(std::vector<std::string> keys);
  ~HopSigner();
  HopSigner(const HopSigner&) = delete;
  HopSigner& operator=(const HopSigner&) = delete;

  // `nonce`: random, never reused by this sender within the skew window.
  std::string Sign(std::string_view from, std::string_view to, int64_t now_seconds, uint64_t nonce,
                   std::string_view request_id, const HopRequest& request) const;

  // Checks `value` for a request arriving at region `to`. On kValid, `out` holds the fields.
  // Whether the nonce is fresh is the caller's (HopReplayCache), after this says kValid.
  HopVerdict Verify(std::string_view value, std::string_view to, int64_t now_seconds,
                    int64_t max_skew_seconds, const HopRequest& request, HopMarker* out) const;

  // HMAC-SHA256 (hex) of `message` under the signing key: for other messages between a
  // region's sluices (peers' health replies). Empty without keys.
  std::string MacHex(std::string_view message) const;
  // True if `mac_hex` is MacHex(message) under any of the keys (constant time per key).
  bool VerifyMacHex(std::string_view message, std::string_view mac_hex) const;

  bool empty() const { return keys_.empty(); }

 private:
  void Mac(size_t key, const HopMarker& marker, std::string_view to, const HopRequest& request,
           unsigned char out[32]) const;
  void MacPieces(size_t key, const std::string_view* pieces, size_t count,
                 unsigned char out[32]) const;

  std::vector<std::string> keys_;
  std::vector<std::unique_ptr<HmacState>> states_;  // by key
};

// What a sluice signs (HopSigner::MacHex, in the `sluice-health-mac` reply field) when it
// answers a peer's poll of /v1/health: the poll's marker fixed `to` (the poller), `nonce` and
// the request; the reply binds them to its body, so a reply is good for that one poll only.
inline constexpr std::string_view kHealthMacHeader = "sluice-health-mac";
std::string HealthReplyMessage(std::string_view from, std::string_view to, uint64_t nonce,
                               std::string_view body);

// The nonces of verified markers a node has seen, so each marker is accepted once. Shared by
// the node's workers (sharded locks); each nonce is kept until its marker's timestamp plus the
// skew window, after which the marker no longer verifies anyway. Bounded: when full, the
// oldest nonce goes (counted: a node that tunnels in more than capacity / skew requests a
// second would need a larger cache).
class HopReplayCache {
 public:
  explicit HopReplayCache(size_t capacity = size_t{1} << 21);
  ~HopReplayCache();
  HopReplayCache(const HopReplayCache&) = delete;
  HopReplayCache& operator=(const HopReplayCache&) = delete;

  // True the first time `nonce` is offered; false while it is remembered (a replay).
  // `timestamp`: the marker's; `now_seconds` forgets what has expired.
  bool FirstUse(uint64_t nonce, int64_t timestamp, int64_t now_seconds, int64_t max_skew_seconds);
  // Nonces let go while their markers could still verify, to make room.
  uint64_t live_evictions() const { return live_evictions_.load(std::memory_order_relaxed); }

 private:
  static constexpr size_t kShards = 16;
  struct Shard;
  size_t shard_capacity_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<uint64_t> live_evictions_{0};
};

}  // namespace sluice

#endif  // SLUICE_STEERING_HOP_MARKER_H_
