// One asynchronous name lookup: uv_getaddrinfo, which runs in libuv's thread pool and never
// blocks the loop. Used by the control loop for endpoints given by host name and for etcd
// endpoints. Loop thread only.
#ifndef SLUICE_PROXY_NET_NAME_LOOKUP_H_
#define SLUICE_PROXY_NET_NAME_LOOKUP_H_

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/socket_address.h"

namespace sluice {

class NameLookup {
 public:
  // The IPv4 and IPv6 addresses of the name, without repeats, in the system's order; or an
  // error whose message says why ("no address", or libuv's text for the failure).
  using Done = std::function<void(absl::StatusOr<std::vector<SocketAddress>>)>;

  // Starts looking `host` up (`port` goes into the addresses). `done` runs on the loop, never
  // from inside this call. Null, with `*error` set to a libuv error, when it cannot start.
  static NameLookup* Start(uv_loop_t* loop, const std::string& host, uint16_t port, Done done,
                           int* error);
  // `done` will not run; the lookup frees itself when the thread pool is done with it.
  void Cancel();

 private:
  explicit NameLookup(Done done) : done_(std::move(done)) {}
  static void OnResolved(uv_getaddrinfo_t* request, int status, addrinfo* result);

  uv_getaddrinfo_t request_;
  Done done_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_NET_NAME_LOOKUP_H_
