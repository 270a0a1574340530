#include "proxy/tls/ticket_keys.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include <nlohmann/json.hpp>
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace sluice {
namespace {

constexpr char kFormat[] = "sluice-ticket-keys/1";
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
// More keys than a schedule ever holds (next, current, the one before and a late one or two):
// a document with more is not one of ours.
constexpr size_t kMaxKeys = 8;

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

template <size_t N>
std::string Encode(const std::array<unsigned char, N>& bytes) {
  return absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

template <size_t N>
bool Decode(const nlohmann::json& doc, const char* field, std::array<unsigned char, N>* out) {
  auto it = doc.find(field);
  if (it == doc.end() || !it->is_string()) return false;
  std::string bytes;
  if (!absl::Base64Unescape(it->get<std::string>(), &bytes) || bytes.size() != N) return false;
  std::memcpy(out->data(), bytes.data(), N);
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::StatusOr<TicketKey> RandomTicketKey(absl::Time not_before) {
  TicketKey key;
  key.not_before = not_before;
  if (RAND_bytes(key.name.data(), key.name.size()) != 1 ||
      RAND_bytes(key.hmac.data(), key.hmac.size()) != 1 ||
      RAND_bytes(key.aes.data(), key.aes.size()) != 1) {
    return absl::InternalError("the random generator failed");
  }
  return key;
}

absl::StatusOr<TicketKey> ParseTicketKeyFile(std::string_view bytes, const std::string& path) {
  if (bytes.size() != 80) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: a session ticket key file holds exactly 80 bytes (openssl rand 80 > %s), not %d", path,
        path, bytes.size()));
  }
  TicketKey key;
  std::memcpy(key.name.data(), bytes.data(), 16);
  std::memcpy(key.hmac.data(), bytes.data() + 16, 32);
  std::memcpy(key.aes.data(), bytes.data() + 48, 32);
  return key;
}

const TicketKey* EncryptingTicketKey(const std::vector<TicketKey>& keys, absl::Time now) {
  for (const TicketKey& key : keys) {
    if (key.not_before <= now) return &key;
  }
  return nullptr;
}

bool AdvanceTicketKeys(std::vector<TicketKey>* keys, absl::Time now, absl::Duration rotation,
                       const std::function<absl::StatusOr<TicketKey>(absl::Time)>& fresh) {
  std::vector<TicketKey> next = *keys;
  auto newest_first = [](const TicketKey& a, const TicketKey& b) {
    return a.not_before > b.not_before;
  };
  std::stable_sort(next.begin(), next.end(), newest_first);
  const TicketKey* current = EncryptingTicketKey(next, now);
  if (!current) {
    absl::StatusOr<TicketKey> made = fresh(now);
    if (!made.ok()) return false;  // the keys there are stay; the next call tries again
    next.push_back(*made);
    std::stable_sort(next.begin(), next.end(), newest_first);
    current = EncryptingTicketKey(next, now);
  }
  absl::Time current_since = current->not_before;
  if (next.front().not_before <= now) {  // nothing waits to encrypt next
    // A rotation from now (the current key started at most a tick ago, or long ago when the
    // leader was away): every node has it well before it encrypts.
    absl::StatusOr<TicketKey> made = fresh(now + rotation);
    if (made.ok()) next.insert(next.begin(), *made);
  }
  // Each key older than the current one stopped encrypting when its successor started; it goes
  // one rotation after that.
  std::vector<TicketKey> kept;
  for (size_t i = 0; i < next.size(); ++i) {
    if (i > 0 && next[i].not_before < current_since && next[i - 1].not_before + rotation <= now) {
      break;
    }
    kept.push_back(next[i]);
  }
  if (kept.size() > kMaxKeys) kept.resize(kMaxKeys);
  if (kept == *keys) return false;
  *keys = std::move(kept);
  return true;
}

absl::StatusOr<TicketSealKey> ParseTicketSealKey(std::string_view hex) {
  TicketSealKey key;
  if (hex.size() != 2 * key.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "must hold 64 hex digits (openssl rand -hex 32), not %d characters", hex.size()));
  }
  for (size_t i = 0; i < key.size(); ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("not hexadecimal");
    key[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return key;
}

absl::StatusOr<std::string> SealTicketKeys(const std::vector<TicketKey>& keys,
                                           const TicketSealKey& seal, std::string_view where) {
  nlohmann::json list = nlohmann::json::array();
  for (const TicketKey& key : keys) {
    list.push_back({{"name", Encode(key.name)},
                    {"hmac", Encode(key.hmac)},
                    {"aes", Encode(key.aes)},
                    {"not_before_ms", absl::ToUnixMillis(key.not_before)}});
  }
  std::string clear = nlohmann::json{{"keys", list}}.dump();
  std::array<unsigned char, kNonceSize> nonce;
  if (RAND_bytes(nonce.data(), nonce.size()) != 1) {
    return absl::InternalError("the random generator failed");
  }
  std::string sealed(clear.size() + kTagSize, '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  CipherContext ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0, more = 0;
  bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, seal.data(), nonce.data()) &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(where.data()),
                        static_cast<int>(where.size())) &&
      EVP_EncryptUpdate(ctx.get(), out, &len, reinterpret_cast<const unsigned char*>(clear.data()),
                        static_cast<int>(clear.size())) &&
      EVP_EncryptFinal_ex(ctx.get(), out + len, &more) &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, out + clear.size());
  OPENSSL_cleanse(clear.data(), clear.size());
  if (!ok) return absl::InternalError("AES-256-GCM failed");
  return nlohmann::json{
      {"format", kFormat}, {"nonce", Encode(nonce)}, {"sealed", absl::Base64Escape(sealed)}}
      .dump();
}

absl::StatusOr<std::vector<TicketKey>> OpenTicketKeys(std::string_view document,
                                                      const TicketSealKey& seal,
                                                      std::string_view where) {
  nlohmann::json doc = nlohmann::json::parse(document, nullptr, false);
  auto format = doc.is_object() ? doc.find("format") : doc.end();
  if (format == doc.end() || !format->is_string() || format->get<std::string>() != kFormat) {
    return absl::InvalidArgumentError(absl::StrFormat("not a %s document", kFormat));
  }
  std::array<unsigned char, kNonceSize> nonce;
  std::string sealed;
  auto text = doc.find("sealed");
  if (!Decode(doc, "nonce", &nonce) || text == doc.end() || !text->is_string() ||
      !absl::Base64Unescape(text->get<std::string>(), &sealed) || sealed.size() < kTagSize) {
    return absl::InvalidArgumentError("its nonce or sealed keys are missing or not base64");
  }
  size_t size = sealed.size() - kTagSize;
  std::string clear(size, '\0');
  auto* in = reinterpret_cast<unsigned char*>(sealed.data());
  auto* out = reinterpret_cast<unsigned char*>(clear.data());
  CipherContext ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0, more = 0;
  bool ok = ctx &&
            EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, seal.data(), nonce.data()) &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                              reinterpret_cast<const unsigned char*>(where.data()),
                              static_cast<int>(where.size())) &&
            EVP_DecryptUpdate(ctx.get(), out, &len, in, static_cast<int>(size)) &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, in + size) &&
            EVP_DecryptFinal_ex(ctx.get(), out + len, &more) == 1;
  if (!ok) {
    OPENSSL_cleanse(clear.data(), clear.size());
    return absl::InvalidArgumentError(
        "it does not open under this node's seal key (another key, altered, or copied from "
        "another etcd key)");
  }
  nlohmann::json inner = nlohmann::json::parse(clear, nullptr, false);
  OPENSSL_cleanse(clear.data(), clear.size());
  auto list = inner.is_object() ? inner.find("keys") : inner.end();
  if (list == inner.end() || !list->is_array() || list->empty() || list->size() > kMaxKeys) {
    return absl::InvalidArgumentError(
        absl::StrFormat("it opens, but does not hold a list of 1 to %d keys", kMaxKeys));
  }
  std::vector<TicketKey> keys;
  for (const nlohmann::json& item : *list) {
    TicketKey key;
    auto at = item.is_object() ? item.find("not_before_ms") : item.end();
    if (!item.is_object() || !Decode(item, "name", &key.name) || !Decode(item, "hmac", &key.hmac) ||
        !Decode(item, "aes", &key.aes) || at == item.end() || !at->is_number_integer()) {
      return absl::InvalidArgumentError(
          "it opens, but a key lacks its name, HMAC or AES bytes or its not_before_ms");
    }
    key.not_before = absl::FromUnixMillis(at->get<int64_t>());
    keys.push_back(key);
  }
  for (nlohmann::json& item : *list) item.clear();
  return keys;
}

std::string TicketKeyId(const TicketKey& key) {
  return absl::StrFormat("%02x%02x%02x%02x", key.name[0], key.name[1], key.name[2], key.name[3]);
}

}  // namespace sluice
