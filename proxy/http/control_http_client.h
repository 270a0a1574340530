// HTTP/1.1 requests from the control loop (peer regions' /v1/health, etcd's JSON gateway),
// over TCP or TLS: connect, send the request bytes as given, parse the reply with the strict
// response parser (Content-Length, chunked or close-delimited), and either report the whole
// body once or, for a stream such as an etcd watch, hand body bytes over as they arrive.
//
// Without a pool the request bytes must say Connection: close, and the connection is closed
// after the reply. With a ControlHttpPool (a caller that talks to the same server many times a
// second, such as the etcd client) they must not: a connection whose reply allowed another
// waits in the pool, idle, for the next request to the same address, and is closed when the
// server closes it, after the pool's idle timeout, or with the pool. A request sent on a
// reused connection that fails before any byte of a reply arrived says so
// (ControlHttpReply::reused, ::received): the server may have closed the idle connection just
// as the request went out, so the caller may send it again. Control thread only.
#ifndef SLUICE_PROXY_HTTP_CONTROL_HTTP_CLIENT_H_
#define SLUICE_PROXY_HTTP_CONTROL_HTTP_CLIENT_H_

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "common/http_headers.h"
#include "common/socket_address.h"
#include "proxy/event/loop_context.h"
#include "proxy/tls/client_tls.h"

namespace sluice {

struct ControlHttpReply {
  bool ok = false;        // a whole reply arrived: status and body are set
  bool reused = false;    // sent on a pooled connection that served a request before
  bool received = false;  // a byte of the reply arrived
  bool timed_out = false;
  int status = 0;
  HeaderMap headers;  // the response head's fields
  std::string body;   // empty for a streamed reply
  std::string error;  // why not, when !ok
};

using ControlHttpCallback = std::function<void(const ControlHttpReply& reply)>;

// What a caller's requests cost on the wire (the fleet simulator and metrics read them).
struct ControlHttpCounters {
  uint64_t requests = 0;
  uint64_t connections = 0;  // opened (a reused one is not counted again)
  uint64_t rx_bytes = 0;     // off the socket (TLS records included)
  uint64_t tx_bytes = 0;
  uint64_t tls_handshakes = 0;  // full ones
  uint64_t tls_resumed = 0;     // that skipped the certificate exchange
};

class ControlHttpRequest;
class ControlHttpPool;

struct ControlHttpOptions {
  // One-shot: the whole exchange. Streamed: until the response head.
  absl::Duration timeout = absl::Seconds(5);
  size_t max_reply = 1024 * 1024;  // head plus body (one-shot), or one head (streamed)
  // Set: the reply is streamed. Runs for each run of body bytes (de-chunked) once the head
  // said 2xx; the body of any other status is collected for the final reply instead. The
  // final callback then reports how the stream ended.
  std::function<void(int status, std::string_view data)> on_body;
  // Set: TLS over the connection, the server's certificate checked against `server_name`.
  ClientTlsContext tls;
  std::string server_name;
  // Set (with `tls`, whose context opted in with TlsSessionSlot::EnableOn): sessions resumed
  // from this slot, which outlives the request.
  TlsSessionSlot* tls_session = nullptr;
  // Set: keep-alive connections from this pool (the request must not say Connection: close).
  // A request still running when the pool goes closes its connection once it finishes.
  ControlHttpPool* pool = nullptr;
  ControlHttpCounters* counters = nullptr;  // set: outlives every request counted in it
};

// Idle keep-alive connections by address (and TLS server name). Closing the pool closes
// them; a request in flight on one of its connections finishes and then closes.
class ControlHttpPool {
 public:
  explicit ControlHttpPool(size_t max_idle_per_address = 4,
                           absl::Duration idle_timeout = absl::Seconds(30))
      : max_idle_(max_idle_per_address), idle_timeout_(idle_timeout) {}
  ControlHttpPool(const ControlHttpPool&) = delete;
  ControlHttpPool& operator=(const ControlHttpPool&) = delete;
  ~ControlHttpPool();

  // Closes the idle connections.
  void CloseAll();
  size_t idle() const { return idle_.size(); }

 private:
  friend class ControlHttpRequest;
  friend ControlHttpRequest* StartControlHttpRequest(LoopContext*, const SocketAddress&,
                                                     std::string, ControlHttpOptions,
                                                     ControlHttpCallback);
  static std::string Key(const SocketAddress& address, const std::string& server_name, bool tls);
  // False when the address has max_idle connections waiting already.
  bool Park(const std::string& key, ControlHttpRequest* connection);
  ControlHttpRequest* Take(const std::string& key);
  // The connection is closing or gone: neither idle nor a member any more.
  void Forget(ControlHttpRequest* connection);

  size_t max_idle_;
  absl::Duration idle_timeout_;
  std::vector<std::pair<std::string, ControlHttpRequest*>> idle_;  // newest last
  std::vector<ControlHttpRequest*> members_;                       // busy or idle
};

// Starts the exchange. `callback` runs exactly once, on the loop, never from inside this call.
// Returns a handle that Cancel() accepts until the callback ran.
ControlHttpRequest* StartControlHttpRequest(LoopContext* context, const SocketAddress& address,
                                            std::string request, ControlHttpOptions options,
                                            ControlHttpCallback callback);
inline ControlHttpRequest* StartControlHttpRequest(LoopContext* context,
                                                   const SocketAddress& address,
                                                   std::string request, absl::Duration timeout,
                                                   size_t max_reply, ControlHttpCallback callback) {
  ControlHttpOptions options;
  options.timeout = timeout;
  options.max_reply = max_reply;
  return StartControlHttpRequest(context, address, std::move(request), std::move(options),
                                 std::move(callback));
}
// Neither callback will run again; the request is abandoned and frees itself.
void CancelControlHttpRequest(ControlHttpRequest* request);

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_CONTROL_HTTP_CLIENT_H_
