// TLS termination for a listener: one OpenSSL context per certificate, picked by SNI (exact
// names, then "*.example.com" wildcards, then the first certificate); ALPN choosing h2 or
// http/1.1; TLS 1.2 and 1.3 only; stateless session tickets whose keys rotate; OCSP stapling
// from a file; optionally client certificates verified against a CA (mutual TLS, the regions'
// tunnels).
//
// Built on the control thread when a configuration is loaded (so a bad file is an error with
// its name) and shared read-only by every worker; OpenSSL contexts are thread-safe for
// creating sessions. A reload or a changed file builds a new context: connections already
// open keep the old one. Ticket keys live per listener name across rebuilds, so resumption
// survives a reload.
#ifndef SLUICE_PROXY_TLS_SERVER_TLS_H_
#define SLUICE_PROXY_TLS_SERVER_TLS_H_

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proxy/tls/ticket_keys.h"

namespace sluice {

// Mozilla's "intermediate" TLS 1.2 ciphers: forward secrecy and AEAD only.
inline constexpr char kDefaultTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// TLS 1.3 suites, AES-128 first: with the server's preference on, OpenSSL's own order would pick
// AES-256 with SHA-384, whose key schedule and transcript cost about 2 % more per handshake for
// no security a 128-bit key lacks here (Mozilla's "intermediate" order).
inline constexpr char kDefaultTls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

struct TlsCertificateConfig {
  std::string cert_file;  // PEM chain, leaf first
  std::string key_file;   // PEM private key
  std::string ocsp_file;  // DER OCSP response to staple; empty: none
};

struct ListenerTlsConfig {
  std::vector<TlsCertificateConfig> certificates;  // the first is the default
  std::string min_version = "1.2";                 // "1.2" or "1.3"
  std::string ciphers = kDefaultTls12Ciphers;      // TLS 1.2 cipher list
  std::string ciphersuites;                        // TLS 1.3 suites; empty: kDefaultTls13Suites
  bool session_tickets = true;
  // Own keys: how often they rotate. Installed keys (files, the fleet's): how long a replaced
  // key still decrypts.
  absl::Duration ticket_key_rotation = absl::Hours(1);
  // nginx's ssl_session_ticket_key: 80-byte files; the first encrypts, the others decrypt.
  std::vector<std::string> ticket_key_files;
  std::string client_ca_file;  // non-empty: clients must present a certificate it signed
};

// A listener's session ticket keys. By default the ring makes its own: the newest encrypts,
// the two before it still decrypt (a ticket then lives up to three rotation periods), and keys
// rotate lazily when a ticket is issued. Keys installed from outside (the listener's
// ticket_key_files, or the fleet's shared keys: proxy/tls/ticket_keys.h) replace them: then the
// newest installed key whose time has come encrypts, every installed key decrypts, and the key
// that encrypted before an install still decrypts for a while. Thread-safe (handshakes on every
// worker use it).
class TicketKeyRing {
 public:
  enum class Source : uint8_t { kOwn, kFiles, kFleet };

  explicit TicketKeyRing(absl::Duration rotation) : rotation_(rotation) {}
  // The ring of the named listener, created on first use; kept for the process's life.
  static std::shared_ptr<TicketKeyRing> ForListener(const std::string& name,
                                                    absl::Duration rotation);

  // The key to encrypt a new ticket with (rotating first if due, when the keys are the ring's
  // own).
  TicketKey Current(absl::Time now);
  // The key named `name`, and whether it is not the one that encrypts now (the ticket should be
  // renewed).
  bool Find(const unsigned char name[16], absl::Time now, TicketKey* key, bool* renew);
  // From now on the ring holds `keys` (newest first, as AdvanceTicketKeys leaves them) and makes
  // none of its own. The key that encrypted until now, if it is not among them, still decrypts
  // for `keep` (as do keys kept so by an earlier install).
  void Install(std::vector<TicketKey> keys, Source source, absl::Time now, absl::Duration keep);
  // Back to keys of its own (a fresh one at the next ticket); the installed key that encrypted
  // until now still decrypts for `keep`.
  void MakeOwn(absl::Time now, absl::Duration keep);
  Source source() const;
  void SetRotation(absl::Duration rotation);
  uint64_t rotations() const;  // of its own keys

 private:
  struct Entry {
    TicketKey key;
    bool installed = false;                     // installed (else its own, or kept)
    absl::Time until = absl::InfiniteFuture();  // kept after an install: decrypts until then
  };
  void RotateLocked(absl::Time now);           // mutex_ held
  const Entry* CurrentLocked(absl::Time now);  // mutex_ held
  // The key that encrypts now and those kept before, for `keep` from `now`.
  std::vector<Entry> KeptLocked(absl::Time now, absl::Duration keep);

  mutable std::mutex mutex_;  // guards the rest
  absl::Duration rotation_;
  Source source_ = Source::kOwn;
  std::vector<Entry> keys_;  // installed first (newest first), then kept ones; or its own
  uint64_t rotations_ = 0;
};

class ServerTlsContext {
 public:
  // `listener` names the ticket key ring; `http2` offers h2 by ALPN.
  static absl::StatusOr<std::shared_ptr<const ServerTlsContext>> Create(
      const ListenerTlsConfig& config, const std::string& listener, bool http2);
  ~ServerTlsContext();
  ServerTlsContext(const ServerTlsContext&) = delete;
  ServerTlsContext& operator=(const ServerTlsContext&) = delete;

  // Makes the listener's ticket ring what this context's configuration says: its
  // ticket_key_files installed, or (none listed, after files) back to keys of its own. Call when
  // the configuration is committed; a context built for a refused reload changes nothing.
  void ApplyTicketKeys() const;
  // A new server-side session (accept state) for one connection; null when out of memory.
  SSL* NewSession() const;
  // The names each certificate answers for, in order (for logs and tests).
  std::vector<std::vector<std::string>> names() const;
  // Every file the context was built from (watched for changes).
  static std::vector<std::string> Files(const ListenerTlsConfig& config);

  // What one certificate's callbacks need. Owned by its OpenSSL context (ex_data), so it
  // lives exactly as long as the context: connections that started under an older
  // configuration keep what they use (defined in the .cc).
  struct Certificate;
  struct SniTable;

 private:
  ServerTlsContext() = default;

  static int OnServerName(SSL* ssl, int* alert, void* arg);

  std::vector<SSL_CTX*> contexts_;          // one reference each; [0] is the default certificate's
  std::shared_ptr<TicketKeyRing> tickets_;  // null: no tickets
  std::vector<TicketKey> file_keys_;
  absl::Duration keep_;
  std::vector<std::vector<std::string>> names_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_TLS_SERVER_TLS_H_
