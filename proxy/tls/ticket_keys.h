// Session ticket keys that outlive one process and cross machines, so that a client resumes
// its TLS session on another node of its region, or on a savior region's edge after an
// evacuation moved it there:
//
//   - from files, as nginx's ssl_session_ticket_key: 80 bytes each (16 of name, 32 of HMAC
//     key, 32 of AES key; `openssl rand 80 > ticket.key`), the first file encrypts, the others
//     only decrypt; rotated by replacing the files and reloading (SIGHUP);
//   - from the fleet (proxy/control/ticket_key_control.h): the leader makes the keys, rotates
//     them on schedule and stores them in etcd sealed (AES-256-GCM) under a key that only the
//     nodes have, in a file. Every node installs what it opens.
//
// The schedule is pure: each key encrypts from its `not_before` on, and the next key is made
// as soon as one starts encrypting, so it reaches every node a whole rotation period before any
// node encrypts with it (a ticket one node issues, every node can open). A key that stopped
// encrypting still decrypts for one more period, then goes.
#ifndef SLUICE_PROXY_TLS_TICKET_KEYS_H_
#define SLUICE_PROXY_TLS_TICKET_KEYS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sluice {

struct TicketKey {
  std::array<unsigned char, 16> name{};
  std::array<unsigned char, 32> hmac{};
  std::array<unsigned char, 32> aes{};
  absl::Time not_before = absl::InfinitePast();  // encrypts from then on; decrypts at once

  bool operator==(const TicketKey& other) const = default;
};

// A key with random bytes; Internal when the random generator fails.
absl::StatusOr<TicketKey> RandomTicketKey(absl::Time not_before);

// One nginx-style key file's bytes (`path` names it in the error): exactly 80 bytes.
absl::StatusOr<TicketKey> ParseTicketKeyFile(std::string_view bytes, const std::string& path);

// --- The schedule (pure) ---------------------------------------------------------------------

// The key that encrypts at `now`: the newest whose not_before has come; null when none has.
// `keys` newest first, as AdvanceTicketKeys leaves them.
const TicketKey* EncryptingTicketKey(const std::vector<TicketKey>& keys, absl::Time now);

// Brings `keys` to what they should be at `now`: one key encrypting (made now when there is
// none), the next made as soon as one starts encrypting (it encrypts `rotation` from then), and
// each older key kept one `rotation` after its successor started encrypting. `fresh` makes a key
// that encrypts from the given time. Sorted newest first. False when nothing changed.
bool AdvanceTicketKeys(std::vector<TicketKey>* keys, absl::Time now, absl::Duration rotation,
                       const std::function<absl::StatusOr<TicketKey>(absl::Time)>& fresh);

// --- Sealed in the store ---------------------------------------------------------------------

using TicketSealKey = std::array<unsigned char, 32>;

// The sealing key from its file's text: 64 hex digits (`openssl rand -hex 32`).
absl::StatusOr<TicketSealKey> ParseTicketSealKey(std::string_view hex);

// The keys as a document for the store (sluice-ticket-keys/1): AES-256-GCM under `seal` with a
// random nonce, bound to `where` (the etcd key: a document copied under another key does not
// open). Never holds a key in clear.
absl::StatusOr<std::string> SealTicketKeys(const std::vector<TicketKey>& keys,
                                           const TicketSealKey& seal, std::string_view where);

// The keys from a document SealTicketKeys wrote under `where`: InvalidArgument when it is not
// one, does not open under `seal` (another key, tampered with, moved) or holds bad keys.
absl::StatusOr<std::vector<TicketKey>> OpenTicketKeys(std::string_view document,
                                                      const TicketSealKey& seal,
                                                      std::string_view where);

// The first 8 hex digits of a key's name, for logs and status (never the key).
std::string TicketKeyId(const TicketKey& key);

}  // namespace sluice

#endif  // SLUICE_PROXY_TLS_TICKET_KEYS_H_
