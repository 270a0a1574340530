#include "proxy/tls/session_cache.h"

namespace sluice {

void TlsSessionSlot::EnableOn(SSL_CTX* context) {
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(context, [](SSL* ssl, SSL_SESSION* session) -> int {
    auto* slot = static_cast<TlsSessionSlot*>(SSL_get_app_data(ssl));
    if (!slot || !SSL_SESSION_is_resumable(session)) return 0;
    if (slot->session_) SSL_SESSION_free(slot->session_);
    slot->session_ = session;
    return 1;  // the slot holds the reference now
  });
}

void TlsSessionSlot::Attach(SSL* ssl) {
  SSL_set_app_data(ssl, this);
  if (session_) SSL_set_session(ssl, session_);
}

void TlsSessionSlot::Clear() {
  if (session_) SSL_SESSION_free(session_);
  session_ = nullptr;
}

}  // namespace sluice
