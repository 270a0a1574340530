// What the workers listen on, across reloads. Each configured listener is bound once per
// worker (SO_REUSEPORT, proxy/net/listen_socket.h) on the control thread, before privileges
// are dropped; the workers adopt the sockets. A reload binds only addresses that are new, keeps
// those still configured (with their new options) and lets the workers close the rest.
// Control thread only.
#ifndef SLUICE_PROXY_WORKER_LISTENER_SET_H_
#define SLUICE_PROXY_WORKER_LISTENER_SET_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/socket_address.h"
#include "proxy/config/config.h"
#include "proxy/net/inherited_sockets.h"
#include "proxy/worker/listener.h"

namespace sluice {

class ListenerSet {
 public:
  struct Change {
    std::vector<std::vector<ListenerSocket>> added;  // per worker: sockets to adopt
    std::map<std::string, ListenerOptions> kept;     // already open, by address
  };

  // Binds the addresses of `config` that are not open yet, `workers` sockets each. All or
  // nothing: on an error every socket it opened is closed and the set stays as it was. An
  // address `inherited` has sockets for (a binary upgrade) takes those instead of binding:
  // spread over the workers, duplicated when there are fewer than workers.
  absl::StatusOr<Change> Apply(const Config& config, size_t workers,
                               InheritedSockets* inherited = nullptr);
  // The descriptors the workers listen on, by address: what a binary upgrade hands over.
  // Valid until the next Apply.
  InheritedSockets::Map Descriptors() const;
  // Every configured listener's options, by address (a certificate reload changes only them).
  static std::map<std::string, ListenerOptions> Options(const Config& config);

 private:
  struct Open {
    SocketAddress address;
    int backlog = 0;
    std::vector<int> fds;  // owned by the workers' listeners
  };
  std::map<std::string, Open> open_;  // by address
};

}  // namespace sluice

#endif  // SLUICE_PROXY_WORKER_LISTENER_SET_H_
