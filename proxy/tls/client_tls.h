// TLS for sluice's own outgoing control connections (etcd now): a client context (TLS 1.2 or
// newer, the peer verified against a CA bundle, an optional client certificate) and a session
// that runs OpenSSL over memory BIOs, so the bytes travel through a libuv stream and the
// handshake never blocks the loop. One session per connection; not thread-safe.
#ifndef SLUICE_PROXY_TLS_CLIENT_TLS_H_
#define SLUICE_PROXY_TLS_CLIENT_TLS_H_

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "proxy/tls/session_cache.h"

namespace sluice {

struct ClientTlsFiles {
  std::string ca_file;    // empty: the system's CA bundle
  std::string cert_file;  // client certificate chain (PEM); empty: none
  std::string key_file;   // its private key (PEM)
};

using ClientTlsContext = std::shared_ptr<SSL_CTX>;

// Loads the files; the error names the file and what is wrong with it.
absl::StatusOr<ClientTlsContext> MakeClientTlsContext(const ClientTlsFiles& files);

// OpenSSL's error queue as text ("error:0A000086:SSL routines::certificate verify failed;
// ..."), emptying it; "unknown error" when it is empty.
std::string OpenSslErrors();

// Loads a PEM certificate chain and its private key into `ctx`; the error names the file.
absl::Status UseCertificate(SSL_CTX* ctx, const std::string& cert_file,
                            const std::string& key_file);

// A client-side SSL for one connection: connect state, SNI (unless `server_name` is an IP
// address) and the name or address the server's certificate must carry. Null when out of
// memory.
SSL* NewClientSsl(SSL_CTX* context, const std::string& server_name);

class ClientTlsSession {
 public:
  // `server_name` is sent as SNI (unless it is an IP address) and is what the server's
  // certificate must name (a DNS name or an IP address). With `resume` (whose context opted in
  // with TlsSessionSlot::EnableOn, and which outlives the session), the slot's session is
  // offered and the server's new ones land there.
  ClientTlsSession(ClientTlsContext context, const std::string& server_name,
                   TlsSessionSlot* resume = nullptr);
  // The handshake resumed a session (no certificate exchange).
  bool resumed() const { return ssl_ && SSL_session_reused(ssl_) == 1; }
  ClientTlsSession(const ClientTlsSession&) = delete;
  ClientTlsSession& operator=(const ClientTlsSession&) = delete;
  ~ClientTlsSession();

  // Each call may produce bytes for the network: take them with TakeOutput() afterwards.
  // Returns false on a fatal error (see error()).
  bool Start();                            // the ClientHello
  bool Write(std::string_view plaintext);  // queued until the handshake is done
  bool Read(std::string_view ciphertext, std::string* plaintext);  // from the network
  std::string TakeOutput();
  bool established() const { return established_; }
  const std::string& error() const { return error_; }

 private:
  bool Advance(std::string* plaintext);
  bool Fail(int ret, const char* what);

  ClientTlsContext context_;
  SSL* ssl_ = nullptr;
  BIO* network_in_ = nullptr;   // owned by ssl_
  BIO* network_out_ = nullptr;  // owned by ssl_
  std::string pending_;         // plaintext written before the handshake finished
  bool established_ = false;
  std::string error_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_TLS_CLIENT_TLS_H_
