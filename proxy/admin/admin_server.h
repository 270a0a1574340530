// The admin listener: HTTP/1.1 on the control thread's loop (default 127.0.0.1:9901), with the
// same strict codec as the traffic listeners. Each request's body is read whole (at most
// kMaxAdminBody; more is a 413) and handed to the AdminApi, whose answer goes back as is.
// Idle connections close after a while and a slow head gets a 408. With admin.tls the listener
// speaks HTTPS through the traffic listeners' TLS code (proxy/tls/server_tls.h, a TLS session on
// the same TcpStream). Control thread only.
#ifndef SLUICE_PROXY_ADMIN_ADMIN_SERVER_H_
#define SLUICE_PROXY_ADMIN_ADMIN_SERVER_H_

#include <uv.h>

#include <memory>
#include <set>

#include "absl/status/status.h"
#include "common/socket_address.h"
#include "proxy/admin/admin_api.h"
#include "proxy/event/loop_context.h"
#include "proxy/net/socket_acceptor.h"
#include "proxy/tls/server_tls.h"

namespace sluice {

inline constexpr size_t kMaxAdminBody = 1024 * 1024;
// POST /v1/history: 15 days of minutes and a day of 10 s slots for dozens of regions.
inline constexpr size_t kMaxHistoryBody = 64 * 1024 * 1024;

class AdminConnection;

class AdminServer final : private SocketAcceptor::Handler {
 public:
  AdminServer(LoopContext* context, AdminApi* api);
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;
  ~AdminServer() override;

  // Binds and listens, or adopts `inherited` (a listening socket a binary upgrade handed
  // over, bound to `address`). The address actually bound (port 0 picks one) is in address().
  absl::Status Start(const SocketAddress& address, int inherited = -1);
  // The listening descriptor (-1 when not listening): what a binary upgrade hands over.
  int fd() const;
  // Accepts no more connections; those open are answered (a binary upgrade: the new process
  // accepts on the same socket).
  void StopListening();
  // Stops listening and closes every connection.
  void Stop();
  const SocketAddress& address() const { return address_; }
  // HTTPS from now on with `tls` (null: plain HTTP): new connections handshake with it, open
  // ones keep what they started with (a certificate reload).
  void SetTls(std::shared_ptr<const ServerTlsContext> tls) { tls_ = std::move(tls); }
  const std::shared_ptr<const ServerTlsContext>& tls() const { return tls_; }

  AdminApi* api() { return api_; }
  LoopContext* context() { return context_; }
  // From the connections themselves.
  void Opened(AdminConnection* c) { connections_.insert(c); }
  size_t open_connections() const { return connections_.size(); }
  // Closes one connection that waits between requests; false if none does.
  bool CloseAnIdleConnection();
  void Closed(AdminConnection* c) { connections_.erase(c); }

 private:
  void OnAccepted(int fd, const sockaddr* peer) override;  // SocketAcceptor::Handler

  LoopContext* context_;
  AdminApi* api_;
  SocketAcceptor* acceptor_ = nullptr;  // frees itself (CloseAndDelete)
  SocketAddress address_;
  std::shared_ptr<const ServerTlsContext> tls_;
  std::set<AdminConnection*> connections_;  // open ones; each frees itself when closed
};

}  // namespace sluice

#endif  // SLUICE_PROXY_ADMIN_ADMIN_SERVER_H_
