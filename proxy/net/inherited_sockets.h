// Listening sockets handed from a running sluice to the binary that replaces it (SIGUSR2, the
// way nginx, HAProxy and Envoy upgrade in place). The old process starts the new binary with
// its listening descriptors left open across execve and names them in the environment:
//
//   SLUICE_INHERITED_SOCKETS=127.0.0.1:8080=3,4;[::1]:8443=5;admin 127.0.0.1:9901=6
//
// (an address, "=", its descriptors; "admin " before the admin listener's address). The new
// process adopts them instead of binding, so not one connection is refused during the swap:
// both processes accept from the same kernel queues until the old one closes its copies.
#ifndef SLUICE_PROXY_NET_INHERITED_SOCKETS_H_
#define SLUICE_PROXY_NET_INHERITED_SOCKETS_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

inline constexpr char kInheritedSocketsVariable[] = "SLUICE_INHERITED_SOCKETS";
// A descriptor the new process writes "ready\n" to once it serves, then closes.
inline constexpr char kUpgradeReadyVariable[] = "SLUICE_UPGRADE_READY_FD";

class InheritedSockets {
 public:
  using Map = std::map<std::string, std::vector<int>>;  // key: address (or "admin ADDRESS")

  InheritedSockets() = default;
  InheritedSockets(InheritedSockets&& other) noexcept : sockets_(std::move(other.sockets_)) {
    other.sockets_.clear();
  }
  InheritedSockets& operator=(InheritedSockets&& other) noexcept;
  InheritedSockets(const InheritedSockets&) = delete;
  InheritedSockets& operator=(const InheritedSockets&) = delete;
  ~InheritedSockets() { CloseRest(); }

  // Parses the variable's text: "KEY=FD[,FD...]" entries separated by ";". Syntax only.
  static absl::StatusOr<Map> Parse(std::string_view text);
  static std::string Encode(const Map& sockets);

  // The sockets the environment names, each checked to be a listening TCP socket bound to
  // the address it is listed under (and marked close-on-exec again). Removes the variable. An
  // error names the entry: a process started with sockets it cannot use refuses to start.
  static absl::StatusOr<InheritedSockets> FromEnvironment();
  // Checks and adopts `sockets` as FromEnvironment does.
  static absl::StatusOr<InheritedSockets> Adopt(const Map& sockets);

  // Takes the descriptors listed under `key` (none: empty); the caller owns them.
  std::vector<int> Take(const std::string& key);
  // Closes what nobody took (addresses the new configuration no longer has).
  void CloseRest();
  bool empty() const { return sockets_.empty(); }

 private:
  Map sockets_;
};

// The key of the admin listener on `address` ("admin 127.0.0.1:9901").
std::string AdminSocketKey(const std::string& address);

}  // namespace sluice

#endif  // SLUICE_PROXY_NET_INHERITED_SOCKETS_H_
