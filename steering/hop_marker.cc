#include "steering/hop_marker.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "absl/strings/str_format.h"
#include "steering/steering_table.h"

namespace sluice {
namespace {

constexpr size_t kMacHexLength = 64;
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

void HopSigner::Mac(size_t key, std::string_view from, std::string_view to, std::string_view ts,
                    std::string_view id, const HopRequestLine& line, unsigned char out[32]) const {
  const std::string_view pieces[] = {
      "sluice-hop-v1\n", from, "\n", to, "\n", ts, "\n", id, "\n", line.method, "\n", line.path};
  const bool query = !line.query.empty();
  if (EVP_MAC_CTX* ctx = states_[key] ? EVP_MAC_CTX_dup(states_[key]->ctx) : nullptr) {
    auto update = [&](std::string_view piece) {
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(piece.data()), piece.size());
    };
    for (std::string_view piece : pieces) update(piece);
    if (query) {
      update("?");
      update(line.query);
    }
    size_t length = 0;
    EVP_MAC_final(ctx, out, &length, 32);
    EVP_MAC_CTX_free(ctx);
    return;
  }
  std::string message;
  for (std::string_view piece : pieces) message.append(piece);
  if (query) message.append("?").append(line.query);
  unsigned int length = 0;
  HMAC(EVP_sha256(), keys_[key].data(), static_cast<int>(keys_[key].size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), out, &length);
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
    case HopVerdict::kCount:
      break;
  }
  return "unknown";
}

bool ParseHopMarker(std::string_view value, HopMarker* out) {
  std::string_view rest = value;
  std::string_view from, ts, id, mac;
  if (!ConsumePrefix(&rest, "v1;from=") || !TakeField(&rest, false, &from) ||
      !ConsumePrefix(&rest, "ts=") || !TakeField(&rest, false, &ts) ||
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
  if (id.empty() || id.size() > kMaxRequestId) return false;
  for (char c : id) {
    if (!ValidIdChar(c)) return false;
  }
  if (mac.size() != kMacHexLength) return false;
  for (char c : mac) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  out->from = from;
  out->timestamp = timestamp;
  out->timestamp_text = ts;
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
                            std::string_view request_id, const HopRequestLine& line) const {
  std::string ts = absl::StrFormat("%d", now_seconds);
  std::string_view id = HopRequestId(request_id);
  unsigned char mac[32];
  Mac(0, from, to, ts, id, line, mac);
  std::string value = absl::StrFormat("v1;from=%s;ts=%s;id=%s;mac=", from, ts, id);
  size_t at = value.size();
  value.resize(at + kMacHexLength);
  Hex(mac, sizeof(mac), value.data() + at);
  return value;
}

HopVerdict HopSigner::Verify(std::string_view value, std::string_view to, int64_t now_seconds,
                             int64_t max_skew_seconds, const HopRequestLine& line,
                             HopMarker* out) const {
  HopMarker marker;
  if (!ParseHopMarker(value, &marker)) return HopVerdict::kMalformed;
  int64_t skew = now_seconds - marker.timestamp;
  if (skew > max_skew_seconds || -skew > max_skew_seconds) return HopVerdict::kStale;
  for (size_t key = 0; key < keys_.size(); ++key) {
    unsigned char mac[32];
    Mac(key, marker.from, to, marker.timestamp_text, marker.request_id, line, mac);
    char hex[kMacHexLength];
    Hex(mac, sizeof(mac), hex);
    if (CRYPTO_memcmp(hex, marker.mac_hex.data(), kMacHexLength) == 0) {
      *out = marker;
      return HopVerdict::kValid;
    }
  }
  return HopVerdict::kBadMac;
}

}  // namespace sluice
