// Fuzzes the TSIG key file parser (proxy/dns/dns_message.h: ParseTsigKey), which reads
// BIND's `key "name" { ... };` and kdig's `hmac-sha256:name:secret`.
// Invariants: no crash, no sanitizer report; every refusal starts with "key file: " and says
// why; a key that parses has a canonical name, hmac-sha256 and a secret of at least 16 bytes,
// and reads back the same from the other format.
#include <cstdlib>
#include <string>

#include "absl/strings/escaping.h"
#include "proxy/dns/dns_message.h"

namespace {

std::string Decoded(const std::string& secret) {
  std::string raw;
  if (!absl::Base64Unescape(secret, &raw)) std::abort();
  return raw;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sluice::TsigKey> key = sluice::ParseTsigKey(text);
  if (!key.ok()) {
    if (!std::string(key.status().message()).starts_with("key file: ")) std::abort();
    return 0;
  }
  absl::StatusOr<std::string> name = sluice::CanonicalDnsName(key->name);
  if (!name.ok() || *name != key->name) std::abort();
  if (key->algorithm != "hmac-sha256") std::abort();
  std::string raw = Decoded(key->secret);
  if (raw.size() < 16) std::abort();
  // The same key in the other format.
  std::string other = text.starts_with("key")
                          ? "hmac-sha256:" + key->name + ":" + absl::Base64Escape(raw)
                          : "key \"" + key->name + "\" { algorithm hmac-sha256; secret \"" +
                                absl::Base64Escape(raw) + "\"; };";
  absl::StatusOr<sluice::TsigKey> again = sluice::ParseTsigKey(other);
  if (!again.ok() || again->name != key->name || Decoded(again->secret) != raw) std::abort();
  return 0;
}
