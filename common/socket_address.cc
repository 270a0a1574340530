#include "common/socket_address.h"
#include "common/strings.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_format.h"

namespace sluice {

SocketAddress::SocketAddress() { std::memset(&storage_, 0, sizeof(storage_)); }

absl::StatusOr<SocketAddress> SocketAddress::Parse(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return absl::InvalidArgumentError(absl::StrFormat("expected [ipv6]:port, got \"%s\"", text));
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("expected address:port such as 127.0.0.1:8080, got \"%s\"", text));
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrFormat("an IPv6 address needs brackets, as in [::1]:8080; got \"%s\"", text));
    }
  }
  uint32_t port = 0;
  if (port_text.empty() || !ParseInteger(port_text, &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrFormat("invalid port in \"%s\"", text));
  }
  SocketAddress addr;
  std::string host_str(host);
  auto* v4 = &addr.storage_.v4;
  auto* v6 = &addr.storage_.v6;
  if (inet_pton(AF_INET, host_str.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    return addr;
  }
  if (inet_pton(AF_INET6, host_str.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    return addr;
  }
  return absl::InvalidArgumentError(
      absl::StrFormat("\"%s\" is not an IP address (host names are not accepted here)", host));
}

SocketAddress SocketAddress::FromSockaddr(const sockaddr* sa) {
  SocketAddress addr;
  if (sa->sa_family == AF_INET) {
    std::memcpy(&addr.storage_, sa, sizeof(sockaddr_in));
  } else if (sa->sa_family == AF_INET6) {
    std::memcpy(&addr.storage_, sa, sizeof(sockaddr_in6));
  }
  return addr;
}

SocketAddress SocketAddress::FromIpv4(const uint8_t bytes[4], uint16_t port) {
  SocketAddress addr;
  auto* v4 = &addr.storage_.v4;
  v4->sin_family = AF_INET;
  std::memcpy(&v4->sin_addr, bytes, 4);
  v4->sin_port = htons(port);
  return addr;
}

SocketAddress SocketAddress::FromIpv6(const uint8_t bytes[16], uint16_t port) {
  SocketAddress addr;
  auto* v6 = &addr.storage_.v6;
  v6->sin6_family = AF_INET6;
  std::memcpy(&v6->sin6_addr, bytes, 16);
  v6->sin6_port = htons(port);
  return addr;
}

socklen_t SocketAddress::sockaddr_len() const {
  return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(storage_.v4.sin_port);
  if (family() == AF_INET6) return ntohs(storage_.v6.sin6_port);
  return 0;
}

size_t SocketAddress::FormatIp(char* buf, size_t size) const {
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &storage_.v4.sin_addr, buf, static_cast<socklen_t>(size));
  } else if (family() == AF_INET6) {
    const auto* v6 = &storage_.v6;
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      inet_ntop(AF_INET, &v6->sin6_addr.s6_addr[12], buf, static_cast<socklen_t>(size));
    } else {
      inet_ntop(AF_INET6, &v6->sin6_addr, buf, static_cast<socklen_t>(size));
    }
  } else {
    buf[0] = '\0';
  }
  return std::strlen(buf);
}

std::string SocketAddress::IpString() const {
  char buf[INET6_ADDRSTRLEN];
  return std::string(buf, FormatIp(buf, sizeof(buf)));
}

std::string SocketAddress::ToString() const {
  if (family() == AF_INET6) return absl::StrFormat("[%s]:%d", IpString(), port());
  return absl::StrFormat("%s:%d", IpString(), port());
}

uint64_t SocketAddress::ClientKey() const {
  auto big_endian = [](const uint8_t* bytes, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = v << 8 | bytes[i];
    return v;
  };
  // IPv4 keys start with the byte ff: an IPv6 /64 that does is multicast, never a client.
  constexpr uint64_t kIpv4 = uint64_t{0xff} << 56;
  if (family() == AF_INET) {
    return kIpv4 | big_endian(reinterpret_cast<const uint8_t*>(&storage_.v4.sin_addr), 4);
  }
  if (family() != AF_INET6) return 0;
  const in6_addr& a = storage_.v6.sin6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&a)) return kIpv4 | big_endian(&a.s6_addr[12], 4);
  return big_endian(&a.s6_addr[0], 8);
}

bool SocketAddress::operator==(const SocketAddress& other) const {
  if (family() != other.family()) return false;
  return std::memcmp(&storage_, &other.storage_, sockaddr_len()) == 0;
}

}  // namespace sluice
