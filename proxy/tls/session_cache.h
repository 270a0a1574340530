// TLS session resumption toward one server: the newest resumable session that server gave this
// worker, offered by the next connection so it skips the certificate exchange.
//
// A client context opts in once with TlsSessionSlot::EnableOn (the loader does, for every
// upstream context); each SSL made for a connection is then Attach()ed to the slot of the
// server it goes to, and the context's new-session callback deposits the server's tickets
// there. The slot must outlive the SSLs attached to it (an upstream endpoint holds its slot,
// and its connections hold the endpoint). Loop thread only.
#ifndef SLUICE_PROXY_TLS_SESSION_CACHE_H_
#define SLUICE_PROXY_TLS_SESSION_CACHE_H_

#include <openssl/ssl.h>

namespace sluice {

class TlsSessionSlot {
 public:
  TlsSessionSlot() = default;
  TlsSessionSlot(const TlsSessionSlot&) = delete;
  TlsSessionSlot& operator=(const TlsSessionSlot&) = delete;
  ~TlsSessionSlot() { Clear(); }

  // Makes sessions of SSLs attached to a slot go to that slot (client contexts only).
  static void EnableOn(SSL_CTX* context);

  // Offers the held session (if any) to `ssl`, and makes new sessions of `ssl` land here.
  void Attach(SSL* ssl);
  // Forgets the held session: it belongs to the context and name it was made for.
  void Clear();
  SSL_SESSION* session() const { return session_; }

 private:
  SSL_SESSION* session_ = nullptr;  // owned
};

}  // namespace sluice

#endif  // SLUICE_PROXY_TLS_SESSION_CACHE_H_
