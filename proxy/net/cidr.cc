#include "proxy/net/cidr.h"
#include "common/strings.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_format.h"

namespace sluice {
namespace {

// Extracts the address bytes; IPv4-mapped IPv6 is reported as IPv4.
int AddressBytes(const SocketAddress& address, uint8_t out[16]) {
  if (address.family() == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address.sockaddr_ptr());
    std::memcpy(out, &v4->sin_addr, 4);
    return AF_INET;
  }
  if (address.family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address.sockaddr_ptr());
    if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
      std::memcpy(out, &v6->sin6_addr.s6_addr[12], 4);
      return AF_INET;
    }
    std::memcpy(out, &v6->sin6_addr, 16);
    return AF_INET6;
  }
  return AF_UNSPEC;
}

}  // namespace

absl::StatusOr<CidrRange> CidrRange::Parse(std::string_view text) {
  CidrRange range;
  size_t slash = text.find('/');
  std::string ip(text.substr(0, slash));
  if (inet_pton(AF_INET, ip.c_str(), range.bytes_) == 1) {
    range.family_ = AF_INET;
  } else if (inet_pton(AF_INET6, ip.c_str(), range.bytes_) == 1) {
    range.family_ = AF_INET6;
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("\"%s\" is not an IP address or CIDR range", text));
  }
  int max_prefix = range.family_ == AF_INET ? 32 : 128;
  range.prefix_ = max_prefix;
  if (slash != std::string_view::npos) {
    if (!ParseInteger(text.substr(slash + 1), &range.prefix_) || range.prefix_ < 0 ||
        range.prefix_ > max_prefix) {
      return absl::InvalidArgumentError(
          absl::StrFormat("invalid prefix length in \"%s\" (0..%d)", text, max_prefix));
    }
  }
  return range;
}

bool CidrRange::Contains(const SocketAddress& address) const {
  uint8_t bytes[16] = {};  // AddressBytes fills what the family uses
  if (AddressBytes(address, bytes) != family_) return false;
  int full = prefix_ / 8;
  if (std::memcmp(bytes, bytes_, static_cast<size_t>(full)) != 0) return false;
  int rest = prefix_ % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (bytes_[full] & mask);
}

std::string CidrRange::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family_, bytes_, buf, sizeof(buf));
  return absl::StrFormat("%s/%d", buf, prefix_);
}

bool CidrSet::AnyContains(const SocketAddress& address) const {
  for (const CidrRange& range : ranges_) {
    if (range.Contains(address)) return true;
  }
  return false;
}

}  // namespace sluice
