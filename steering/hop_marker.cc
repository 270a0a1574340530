#include "steering/hop_marker.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <algorithm>
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

bool ConsumePrefix(std::string_view* text, std::string_view prefix) {
  if (text->substr(0, prefix.size()) != prefix) return false;
  text->remove_prefix(prefix.size());
  return true;
}

// The field up to the next ';' (or the end when `last`).
bool TakeField(std::string_view* text, bool last, std::string_view* field) {
  size_t end = text->find(';');
  if (last) {
    if (end != std::string_view::npos) return false;
    *field = *text;
    text->remove_prefix(text->size());
    return true;
  }
  if (end == std::string_view::npos) return false;
  *field = text->substr(0, end);
  text->remove_prefix(end + 1);
  return true;
}

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool ValidIdChar(char c) { return c > 0x20 && c < 0x7f && c != ';' && c != ','; }

void Hex(const unsigned char* bytes, size_t n, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
}

}  // namespace

// The key is absorbed once; each MAC starts from a copy (EVP_MAC_CTX_dup), which is a quarter
// of the cost of keying HMAC from scratch and leaves the signer shareable between threads.
struct HmacState {
  EVP_MAC_CTX* ctx = nullptr;
  ~HmacState() { EVP_MAC_CTX_free(ctx); }
};

HopSigner::HopSigner(std::vector<std::string> keys) : keys_(std::move(keys)) {
  EVP_MAC* hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  for (const std::string& key : keys_) {
    auto state = std::make_unique<HmacState>();
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    state->ctx = hmac ? EVP_MAC_CTX_new(hmac) : nullptr;
    if (!state->ctx || EVP_MAC_init(state->ctx, reinterpret_cast<const unsigned char*>(key.data()),
                                    key.size(), params) != 1) {
      state.reset();
    }
    states_.push_back(std::move(state));
  }
  EVP_MAC_free(hmac);
}

HopSigner::~HopSigner() = default;

void HopSigner::MacPieces(size_t key, const std::string_view* pieces, size_t count,
                          unsigned char out[32]) const {
  if (EVP_MAC_CTX* ctx = states_[key] ? EVP_MAC_CTX_dup(states_[key]->ctx) : nullptr) {
    for (size_t i = 0; i < count; ++i) {
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(pieces[i].data()),
                     pieces[i].size());
    }
    size_t length = 0;
    EVP_MAC_final(ctx, out, &length, 32);
    EVP_MAC_CTX_free(ctx);
    return;
  }
  std::string message;
  for (size_t i = 0; i < count; ++i) message.append(pieces[i]);
  unsigned int length = 0;
  HMAC(EVP_sha256(), keys_[key].data(), static_cast<int>(keys_[key].size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &length);
}

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
    char hex[kMacHexLength];
    Hex(mac, sizeof(mac), hex);
    match |= CRYPTO_memcmp(hex, mac_hex.data(), kMacHexLength) == 0;
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
  std::string_view rest = value;
  std::string_view from, ts, nonce, id, mac;
  if (!ConsumePrefix(&rest, "v2;from=") || !TakeField(&rest, false, &from) ||
      !ConsumePrefix(&rest, "ts=") || !TakeField(&rest, false, &ts) ||
      !ConsumePrefix(&rest, "nonce=") || !TakeField(&rest, false, &nonce) ||
      !ConsumePrefix(&rest, "id=") || !TakeField(&rest, false, &id) ||
      !ConsumePrefix(&rest, "mac=") || !TakeField(&rest, true, &mac)) {
    return false;
  }
  if (!ValidRegionName(from)) return false;
  if (ts.empty() || ts.size() > 12 || (ts.size() > 1 && ts[0] == '0')) return false;
  int64_t timestamp = 0;
  for (char c : ts) {
    if (c < '0' || c > '9') return false;
    timestamp = timestamp * 10 + (c - '0');
  }
  if (nonce.size() != kNonceHexLength) return false;
  uint64_t nonce_value = 0;
  for (char c : nonce) {
    if (!IsLowerHex(c)) return false;
    nonce_value = nonce_value << 4 | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  if (id.empty() || id.size() > kMaxRequestId) return false;
  for (char c : id) {
    if (!ValidIdChar(c)) return false;
  }
  if (mac.size() != kMacHexLength) return false;
  for (char c : mac) {
    if (!IsLowerHex(c)) return false;
  }
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
  for (char c : request_id) {
    if (!ValidIdChar(c)) return "-";
  }
  return request_id;
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
    char hex[kMacHexLength];
    Hex(mac, sizeof(mac), hex);
    if (CRYPTO_memcmp(hex, marker.mac_hex.data(), kMacHexLength) == 0) {
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
