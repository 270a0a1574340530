// One HTTP/1.1 request from the control loop (peer regions' /v1/health now, etcd later):
// connect, send the request bytes as given (they must say Connection: close), read the whole
// reply up to a bound, report status and body once. Frees itself after reporting. Control
// thread only.
#ifndef SLUICE_PROXY_CONTROL_HTTP_CLIENT_H_
#define SLUICE_PROXY_CONTROL_HTTP_CLIENT_H_

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "common/socket_address.h"
#include "proxy/loop_context.h"

namespace sluice {

struct ControlHttpReply {
  bool ok = false;  // a reply arrived: status and body are set
  int status = 0;
  std::string body;
  std::string error;  // why not, when !ok
};

using ControlHttpCallback = std::function<void(const ControlHttpReply& reply)>;

// Starts the exchange. `callback` runs exactly once, on the loop, never from inside this call.
// Returns a handle that Cancel() accepts until the callback ran.
class ControlHttpRequest;
ControlHttpRequest* StartControlHttpRequest(LoopContext* context, const SocketAddress& address,
                                            std::string request, absl::Duration timeout,
                                            size_t max_reply, ControlHttpCallback callback);
// The callback will not run; the request is abandoned and frees itself.
void CancelControlHttpRequest(ControlHttpRequest* request);

}  // namespace sluice

#endif  // SLUICE_PROXY_CONTROL_HTTP_CLIENT_H_
