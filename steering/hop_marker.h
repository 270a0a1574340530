// The tunnel hop marker: the `sluice-hop` request header a sluice adds when it tunnels a
// request to a peer region's sluice, and which that peer verifies before it serves the request
// locally (never tunneling it again). It carries the sending region, a timestamp and the
// request id, authenticated with HMAC-SHA256 under the shared tunnel key:
//
//   sluice-hop: v1;from=us-east-1;ts=1763790000;id=3f2a...;mac=<64 lowercase hex>
//   mac = HMAC-SHA256(key, "sluice-hop-v1\n" from "\n" to "\n" ts "\n" id "\n" method "\n"
//                          path ["?" query])
//
// `to` (the receiving region) and the request line are inside the MAC but not in the header,
// so a marker is good for one request to one region only, and only within the skew window. A
// marker that fails (a client forging one, a stale one, another key) is stripped, counted and
// ignored: the request is steered like any other. Several keys may verify (rotation); the
// first one signs.
#ifndef SLUICE_STEERING_HOP_MARKER_H_
#define SLUICE_STEERING_HOP_MARKER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

inline constexpr std::string_view kHopHeader = "sluice-hop";

enum class HopVerdict : uint8_t {
  kValid,
  kMalformed,    // not the syntax above
  kStale,        // timestamp outside the skew window
  kBadMac,       // another key, altered, or meant for another region or request
  kUnknownFrom,  // the sending region is not a peer region (checked by the caller)
  kCount,        // not a verdict: the number of values above (new values go before it)
};
inline constexpr int kHopVerdicts = static_cast<int>(HopVerdict::kCount);

const char* HopVerdictName(HopVerdict verdict);

// The fields of a marker, as views into its header value.
struct HopMarker {
  std::string_view from;
  int64_t timestamp = 0;
  std::string_view timestamp_text;  // as written (canonical decimal): what was signed
  std::string_view request_id;
  std::string_view mac_hex;
};

// The request line pieces the MAC covers.
struct HopRequestLine {
  std::string_view method;
  std::string_view path;
  std::string_view query;  // without the '?'; empty: none
};

// Syntax only. False for anything that is not exactly the format above.
bool ParseHopMarker(std::string_view value, HopMarker* out);

// A request id as the marker carries it: 1..128 visible ASCII characters other than ';' and
// ','. Anything else travels as "-".
std::string_view HopRequestId(std::string_view request_id);

struct HmacState;  // a keyed HMAC-SHA256 context, copied for each MAC

// Signs and verifies markers. Immutable after construction, so one signer serves every worker.
class HopSigner {
 public:
  // `keys`: the first signs, every one verifies. Each must be at least 32 bytes (checked by
  // the configuration).
  explicit HopSigner(std::vector<std::string> keys);
  ~HopSigner();
  HopSigner(const HopSigner&) = delete;
  HopSigner& operator=(const HopSigner&) = delete;

  std::string Sign(std::string_view from, std::string_view to, int64_t now_seconds,
                   std::string_view request_id, const HopRequestLine& line) const;

  // Checks `value` for a request arriving at region `to`. On kValid, `out` holds the fields.
  HopVerdict Verify(std::string_view value, std::string_view to, int64_t now_seconds,
                    int64_t max_skew_seconds, const HopRequestLine& line, HopMarker* out) const;

  bool empty() const { return keys_.empty(); }

 private:
  void Mac(size_t key, std::string_view from, std::string_view to, std::string_view ts,
           std::string_view id, const HopRequestLine& line, unsigned char out[32]) const;

  std::vector<std::string> keys_;
  std::vector<std::unique_ptr<HmacState>> states_;  // by key; null: one-shot HMAC instead
};

}  // namespace sluice

#endif  // SLUICE_STEERING_HOP_MARKER_H_
