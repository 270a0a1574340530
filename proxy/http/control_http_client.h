// HTTP/1.1 requests from the control loop (peer regions' /v1/health, etcd's JSON gateway),
// over TCP or TLS: connect, send the request bytes as given (they must say Connection: close),
// parse the reply with the strict response parser (Content-Length, chunked or close-delimited), and
// either report the whole body once or, for a stream such as an etcd watch, hand body bytes over as
// they arrive. Frees itself after reporting. Control thread only.
#ifndef SLUICE_PROXY_HTTP_CONTROL_HTTP_CLIENT_H_
#define SLUICE_PROXY_HTTP_CONTROL_HTTP_CLIENT_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "common/http_headers.h"
#include "common/socket_address.h"
#include "proxy/event/loop_context.h"
#include "proxy/tls/client_tls.h"

namespace sluice {

struct ControlHttpReply {
  bool ok = false;  // a whole reply arrived: status and body are set
  int status = 0;
  HeaderMap headers;  // the response head's fields
  std::string body;   // empty for a streamed reply
  std::string error;  // why not, when !ok
};

using ControlHttpCallback = std::function<void(const ControlHttpReply& reply)>;

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
};

// Starts the exchange. `callback` runs exactly once, on the loop, never from inside this call.
// Returns a handle that Cancel() accepts until the callback ran.
class ControlHttpRequest;
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
