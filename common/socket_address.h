// An IPv4 or IPv6 socket address with parsing from and formatting to "host:port" text.
#ifndef SLUICE_COMMON_SOCKET_ADDRESS_H_
#define SLUICE_COMMON_SOCKET_ADDRESS_H_

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice {

class SocketAddress {
 public:
  SocketAddress();

  // "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:80". Host names are not resolved here.
  static absl::StatusOr<SocketAddress> Parse(std::string_view text);
  static SocketAddress FromSockaddr(const sockaddr* sa);
  static SocketAddress FromIpv4(const uint8_t bytes[4], uint16_t port);
  static SocketAddress FromIpv6(const uint8_t bytes[16], uint16_t port);

  const sockaddr* sockaddr_ptr() const { return &storage_.any; }
  socklen_t sockaddr_len() const;
  int family() const { return storage_.any.sa_family; }
  bool valid() const { return family() == AF_INET || family() == AF_INET6; }
  uint16_t port() const;

  std::string ToString() const;  // "127.0.0.1:8080" or "[::1]:8080"
  std::string IpString() const;  // "127.0.0.1" or "::1" (IPv4-mapped IPv6 shown as IPv4)
  // Writes IpString() into buf (at least 46 bytes); returns its length. No allocation.
  size_t FormatIp(char* buf, size_t size) const;

  // The bytes that name one client for per-client limits: an IPv4 address (IPv4-mapped
  // IPv6 included) or an IPv6 address's /64, the smallest block a site is given. Port left out.
  uint64_t ClientKey() const;

  bool operator==(const SocketAddress& other) const;

 private:
  // IPv4 or IPv6 only: 28 bytes instead of sockaddr_storage's 128 (every connection has one).
  union Storage {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } storage_;
};

}  // namespace sluice

#endif  // SLUICE_COMMON_SOCKET_ADDRESS_H_
