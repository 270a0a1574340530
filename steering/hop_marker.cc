#include "steering/hop_marker.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <mutex>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "steering/steering_table.h"

namespace sluice {
namespace {

constexpr size_t kMacHexLength = 64;
constexpr size_t kNonceHexLength = 16;
constexpr size_t kMaxRequestId = 128;

// What a marker's fields may hold, a bit per kind of character (the portable check, and the
// tail of a field shorter than one SSE2 block).
constexpr uint8_t kLowerHexChar = 1;
constexpr uint8_t kRequestIdChar = 2;  // visible ASCII other than ';' and ','
constexpr std::array<uint8_t, 256> kMarkerCharKinds = [] {
  std::array<uint8_t, 256> kinds{};
  for (int c = 0; c < 256; ++c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) kinds[c] |= kLowerHexChar;
    if (c > 0x20 && c < 0x7f && c != ';' && c != ',') kinds[c] |= kRequestIdChar;
  }
  return kinds;
}();

bool AllOfKindScalar(const char* p, size_t n, uint8_t kind) {
  uint8_t all = kind;
  for (size_t i = 0; i < n; ++i) all &= kMarkerCharKinds[static_cast<unsigned char>(p[i])];
  return all != 0;
}

#ifdef __SSE2__
// 0xffff when all 16 bytes at p are of `kind`.
inline int BlockOfKind(const char* p, uint8_t kind) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  __m128i ok;
  if (kind == kLowerHexChar) {
    // x - '0' <= 9 or x - 'a' <= 5, unsigned: min(d, 9) == d.
    const __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
    const __m128i l = _mm_sub_epi8(x, _mm_set1_epi8('a'));
    ok = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d),
                      _mm_cmpeq_epi8(_mm_min_epu8(l, _mm_set1_epi8(5)), l));
  } else {
    // 0x20 < x < 0x7f, signed (bytes from 0x80 are negative), and neither ';' nor ','.
    const __m128i visible = _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8(0x20)),
                                          _mm_cmplt_epi8(x, _mm_set1_epi8(0x7f)));
    const __m128i separator =
        _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(';')), _mm_cmpeq_epi8(x, _mm_set1_epi8(',')));
    ok = _mm_andnot_si128(separator, visible);
  }
  return _mm_movemask_epi8(ok);
}
#endif

// Every byte of `field` is of `kind`: 16 at a time with SSE2 (the last block overlapping the
// one before), byte by byte without it or below 16 bytes.
bool AllOfKind(std::string_view field, uint8_t kind) {
#ifdef __SSE2__
  const size_t n = field.size();
  if (n >= 16) {
    const char* p = field.data();
    for (size_t i = 0; i + 16 <= n; i += 16) {
      if (BlockOfKind(p + i, kind) != 0xffff) return false;
    }
    return n % 16 == 0 || BlockOfKind(p + n - 16, kind) == 0xffff;
  }
#endif
  return AllOfKindScalar(field.data(), field.size(), kind);
}

// The text up to the first `c` at or after `from`, and `from` moved past it. False without one.
bool TakeUntil(std::string_view text, size_t* from, char c, std::string_view* field) {
  const size_t end = text.find(c, *from);
  if (end == std::string_view::npos) return false;
  *field = text.substr(*from, end - *from);
  *from = end + 1;
  return true;
}

// `literal` (a string constant) at `at` in `text`: a compare of a size known when compiling.
template <size_t N>
bool HasAt(std::string_view text, size_t at, const char (&literal)[N]) {
  return text.size() >= at + (N - 1) && std::memcmp(text.data() + at, literal, N - 1) == 0;
}

// memcpy for the marker's pieces, most of them a few bytes ("\n", a region, the timestamp):
// copies of fixed sizes the compiler inlines (two that may overlap), not a call each.
inline void CopyShort(unsigned char* to, const char* from, size_t n) {
  if (n >= 16) {
    std::memcpy(to, from, n);
  } else if (n >= 8) {
    uint64_t a, b;
    std::memcpy(&a, from, 8);
    std::memcpy(&b, from + n - 8, 8);
    std::memcpy(to, &a, 8);
    std::memcpy(to + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, from, 4);
    std::memcpy(&b, from + n - 4, 4);
    std::memcpy(to, &a, 4);
    std::memcpy(to + n - 4, &b, 4);
  } else if (n > 0) {
    to[0] = static_cast<unsigned char>(from[0]);
    to[n / 2] = static_cast<unsigned char>(from[n / 2]);
    to[n - 1] = static_cast<unsigned char>(from[n - 1]);
  }
}

void Hex(const unsigned char* bytes, size_t n, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
}

// Whether `hex` (64 bytes) is the lowercase hex of `mac`, in constant time: every byte is
// compared whatever the first difference (as CRYPTO_memcmp). With SSE2, 16 digits a step.
bool MacHexEquals(const unsigned char mac[32], const char* hex) {
#ifdef __SSE2__
  const __m128i low_nibble = _mm_set1_epi8(0x0f);
  __m128i differ = _mm_setzero_si128();
  for (int half = 0; half < 2; ++half) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(mac + 16 * half));
    const __m128i high = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibble);
    const __m128i low = _mm_and_si128(bytes, low_nibble);
    for (int part = 0; part < 2; ++part) {
      // Each byte's two digits in order, then '0' + n, or 'a' + n - 10 past 9.
      const __m128i nibbles =
          part == 0 ? _mm_unpacklo_epi8(high, low) : _mm_unpackhi_epi8(high, low);
      const __m128i letter = _mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9));
      const __m128i digits = _mm_add_epi8(_mm_add_epi8(nibbles, _mm_set1_epi8('0')),
                                          _mm_and_si128(letter, _mm_set1_epi8('a' - '0' - 10)));
      const __m128i given =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(hex + 32 * half + 16 * part));
      differ = _mm_or_si128(differ, _mm_xor_si128(digits, given));
    }
  }
  return _mm_movemask_epi8(_mm_cmpeq_epi8(differ, _mm_setzero_si128())) == 0xffff;
#else
  char expected[kMacHexLength];
  Hex(mac, 32, expected);
  return CRYPTO_memcmp(expected, hex, kMacHexLength) == 0;
#endif
}

}  // namespace

// HMAC-SHA256 (RFC 2104) with the key absorbed once: the SHA-256 states after the inner and
// the outer padded key blocks. Each MAC starts from copies of them on the stack: no allocation
// (EVP_MAC_CTX_dup allocated for every MAC and cost three times as much), and the signer stays
// immutable, so every worker shares it. OpenSSL 3 deprecates the low-level SHA256_* calls in
// favour of EVP, whose context copies allocate; their state is a plain struct that copies by
// assignment, and they run the same block function (SHA extensions included).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

struct HmacState {
  SHA256_CTX inner;  // after SHA-256 of (key block ^ 0x36...)
  SHA256_CTX outer;  // after SHA-256 of (key block ^ 0x5c...)
};

HopSigner::HopSigner(std::vector<std::string> keys) : keys_(std::move(keys)) {
  for (const std::string& key : keys_) {
    // The key block: a key longer than SHA-256's block is replaced by its digest; zero-padded.
    unsigned char block[SHA256_CBLOCK] = {};
    if (key.size() > sizeof(block)) {
      SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), block);
    } else {
      std::memcpy(block, key.data(), key.size());
    }
    auto state = std::make_unique<HmacState>();
    unsigned char pad[SHA256_CBLOCK];
    for (size_t i = 0; i < sizeof(pad); ++i) pad[i] = block[i] ^ 0x36;
    SHA256_Init(&state->inner);
    SHA256_Update(&state->inner, pad, sizeof(pad));
    for (size_t i = 0; i < sizeof(pad); ++i) pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&state->outer);
    SHA256_Update(&state->outer, pad, sizeof(pad));
    OPENSSL_cleanse(block, sizeof(block));
    OPENSSL_cleanse(pad, sizeof(pad));
    states_.push_back(std::move(state));
  }
}

HopSigner::~HopSigner() {
  for (const std::unique_ptr<HmacState>& state : states_)
    OPENSSL_cleanse(state.get(), sizeof(*state));
}

void HopSigner::MacPieces(size_t key, const std::string_view* pieces, size_t count,
                          unsigned char out[32]) const {
  SHA256_CTX ctx = states_[key]->inner;
  // The pieces are short (a marker's message is about 200 bytes in 22 of them): gathered on
  // the stack, they cost one SHA256_Update rather than one each, which is most of the time.
  unsigned char gathered[512] = {};  // zeroed: GCC -O3 cannot see that only written bytes are read
  size_t used = 0;
  for (size_t i = 0; i < count; ++i) {
    const std::string_view piece = pieces[i];
    if (used + piece.size() > sizeof(gathered)) {
      SHA256_Update(&ctx, gathered, used);
      used = 0;
    }
    if (piece.size() > sizeof(gathered)) {
      SHA256_Update(&ctx, piece.data(), piece.size());
    } else {
      CopyShort(gathered + used, piece.data(), piece.size());
      used += piece.size();
    }
  }
  SHA256_Update(&ctx, gathered, used);
  unsigned char inner_digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(inner_digest, &ctx);
  ctx = states_[key]->outer;
  SHA256_Update(&ctx, inner_digest, sizeof(inner_digest));
  SHA256_Final(out, &ctx);
  OPENSSL_cleanse(&ctx, sizeof(ctx));
}

#pragma GCC diagnostic pop

void HopSigner::Mac(size_t key, const HopMarker& marker, std::string_view to,
                    const HopRequest& request, unsigned char out[32]) const {
  const bool query = !request.query.empty();
  const std::string_view pieces[] = {"sluice-hop-v2\n",
                                     marker.from,
                                     "\n",
                                     to,
                                     "\n",
                                     marker.timestamp_text,
                                     "\n",
                                     marker.nonce_text,
                                     "\n",
                                     marker.request_id,
                                     "\n",
                                     request.method,
                                     "\n",
                                     request.path,
                                     query ? "?" : "",
                                     request.query,
                                     "\n",
                                     request.authority,
                                     "\n",
                                     request.forwarded_for,
                                     "\n",
                                     request.body};
  MacPieces(key, pieces, sizeof(pieces) / sizeof(pieces[0]), out);
}

std::string HopSigner::MacHex(std::string_view message) const {
  if (keys_.empty()) return "";
  unsigned char mac[32];
  MacPieces(0, &message, 1, mac);
  std::string hex(kMacHexLength, '0');
  Hex(mac, sizeof(mac), hex.data());
  return hex;
}

bool HopSigner::VerifyMacHex(std::string_view message, std::string_view mac_hex) const {
  if (mac_hex.size() != kMacHexLength) return false;
  bool match = false;
  for (size_t key = 0; key < keys_.size(); ++key) {
    unsigned char mac[32];
    MacPieces(key, &message, 1, mac);
    match |= MacHexEquals(mac, mac_hex.data());
  }
  return match;
}

const char* HopVerdictName(HopVerdict verdict) {
  switch (verdict) {
    case HopVerdict::kValid:
      return "valid";
    case HopVerdict::kMalformed:
      return "malformed";
    case HopVerdict::kStale:
      return "stale";
    case HopVerdict::kBadMac:
      return "bad_mac";
    case HopVerdict::kUnknownFrom:
      return "unknown_from";
    case HopVerdict::kReplayed:
      return "replayed";
    case HopVerdict::kCount:
      break;
  }
  return "unknown";
}

bool ParseHopMarker(std::string_view value, HopMarker* out) {
  // v2;from=F;ts=T;nonce=<16 hex>;id=I;mac=<64 hex>. The MAC ends the value and the nonce has
  // a fixed length, so only the region's and the timestamp's ends are searched for; the id and
  // the MAC are checked whole, 16 bytes at a time (neither may hold a ';').
  static constexpr char kHead[] = "v2;from=";
  static constexpr char kMacTag[] = ";mac=";
  constexpr size_t kHeadLength = sizeof(kHead) - 1;
  constexpr size_t kMacTagLength = sizeof(kMacTag) - 1;
  if (value.size() < kHeadLength + kMacTagLength + kMacHexLength || !HasAt(value, 0, kHead)) {
    return false;
  }
  const size_t mac_at = value.size() - kMacHexLength;
  if (!HasAt(value, mac_at - kMacTagLength, kMacTag)) return false;
  const std::string_view mac = value.substr(mac_at);
  const std::string_view head = value.substr(0, mac_at - kMacTagLength);  // up to the id's end
  size_t at = kHeadLength;
  std::string_view from, ts;
  if (!TakeUntil(head, &at, ';', &from) || !HasAt(head, at, "ts=")) return false;
  at += 3;
  if (!TakeUntil(head, &at, ';', &ts) || !HasAt(head, at, "nonce=")) return false;
  at += 6;
  if (head.size() < at + kNonceHexLength + 1 || head[at + kNonceHexLength] != ';') return false;
  const std::string_view nonce = head.substr(at, kNonceHexLength);
  at += kNonceHexLength + 1;
  if (!HasAt(head, at, "id=")) return false;
  const std::string_view id = head.substr(at + 3);
  if (!ValidRegionName(from)) return false;
  if (ts.empty() || ts.size() > 12 || (ts.size() > 1 && ts[0] == '0')) return false;
  int64_t timestamp = 0;
  for (char c : ts) {
    if (c < '0' || c > '9') return false;
    timestamp = timestamp * 10 + (c - '0');
  }
  if (!AllOfKind(nonce, kLowerHexChar)) return false;
  uint64_t nonce_value = 0;
  for (char c : nonce) {
    nonce_value = nonce_value << 4 | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  if (id.empty() || id.size() > kMaxRequestId || !AllOfKind(id, kRequestIdChar)) return false;
  if (!AllOfKind(mac, kLowerHexChar)) return false;
  out->from = from;
  out->timestamp = timestamp;
  out->timestamp_text = ts;
  out->nonce = nonce_value;
  out->nonce_text = nonce;
  out->request_id = id;
  out->mac_hex = mac;
  return true;
}

std::string_view HopRequestId(std::string_view request_id) {
  if (request_id.empty() || request_id.size() > kMaxRequestId) return "-";
  return AllOfKind(request_id, kRequestIdChar) ? request_id : "-";
}

std::string HopSigner::Sign(std::string_view from, std::string_view to, int64_t now_seconds,
                            uint64_t nonce, std::string_view request_id,
                            const HopRequest& request) const {
  std::string ts = absl::StrFormat("%d", now_seconds);
  std::string nonce_text = absl::StrFormat("%016x", nonce);
  HopMarker marker;
  marker.from = from;
  marker.timestamp_text = ts;
  marker.nonce_text = nonce_text;
  marker.request_id = HopRequestId(request_id);
  unsigned char mac[32];
  Mac(0, marker, to, request, mac);
  std::string value = absl::StrFormat("v2;from=%s;ts=%s;nonce=%s;id=%s;mac=", from, ts, nonce_text,
                                      marker.request_id);
  size_t at = value.size();
  value.resize(at + kMacHexLength);
  Hex(mac, sizeof(mac), value.data() + at);
  return value;
}

HopVerdict HopSigner::Verify(std::string_view value, std::string_view to, int64_t now_seconds,
                             int64_t max_skew_seconds, const HopRequest& request,
                             HopMarker* out) const {
  HopMarker marker;
  if (!ParseHopMarker(value, &marker)) return HopVerdict::kMalformed;
  int64_t skew = now_seconds - marker.timestamp;
  if (skew > max_skew_seconds || -skew > max_skew_seconds) return HopVerdict::kStale;
  for (size_t key = 0; key < keys_.size(); ++key) {
    unsigned char mac[32];
    Mac(key, marker, to, request, mac);
    if (MacHexEquals(mac, marker.mac_hex.data())) {
      *out = marker;
      return HopVerdict::kValid;
    }
  }
  return HopVerdict::kBadMac;
}

std::string HealthReplyMessage(std::string_view from, std::string_view to, uint64_t nonce,
                               std::string_view body) {
  return absl::StrFormat("sluice-health-v1\n%s\n%s\n%016x\n%s", from, to, nonce, body);
}

struct HopReplayCache::Shard {
  std::mutex mutex;
  std::deque<std::pair<int64_t, uint64_t>> order;  // (forget at, nonce), oldest first
  absl::flat_hash_set<uint64_t> seen;
};

HopReplayCache::HopReplayCache(size_t capacity)
    : shard_capacity_(std::max<size_t>(1, capacity / kShards)), shards_(new Shard[kShards]) {}

HopReplayCache::~HopReplayCache() = default;

bool HopReplayCache::FirstUse(uint64_t nonce, int64_t timestamp, int64_t now_seconds,
                              int64_t max_skew_seconds) {
  Shard& shard = shards_[nonce % kShards];
  std::lock_guard<std::mutex> lock(shard.mutex);
  auto forget_oldest = [&shard] {
    shard.seen.erase(shard.order.front().second);
    shard.order.pop_front();
  };
  // Forget times are not in order (timestamps differ within the skew): an expired entry behind
  // a live one waits its turn, which only costs room.
  while (!shard.order.empty() && shard.order.front().first < now_seconds) forget_oldest();
  if (shard.seen.contains(nonce)) return false;
  if (shard.order.size() >= shard_capacity_) {
    live_evictions_.fetch_add(1, std::memory_order_relaxed);
    forget_oldest();
  }
  shard.seen.insert(nonce);
  shard.order.emplace_back(timestamp + max_skew_seconds, nonce);  // it verifies until then
  return true;
}

}  // namespace sluice
