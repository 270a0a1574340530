// IP address ranges in CIDR notation ("10.0.0.0/8", "::1/128", "192.0.2.7") and a small set of
// them with a membership test. IPv4-mapped IPv6 addresses match IPv4 ranges.
#ifndef SLUICE_PROXY_NET_CIDR_H_
#define SLUICE_PROXY_NET_CIDR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/socket_address.h"

namespace sluice {

class CidrRange {
 public:
  static absl::StatusOr<CidrRange> Parse(std::string_view text);
  bool Contains(const SocketAddress& address) const;
  std::string ToString() const;

 private:
  int family_ = AF_INET;
  uint8_t bytes_[16] = {};
  int prefix_ = 0;
};

class CidrSet {
 public:
  void Add(const CidrRange& range) { ranges_.push_back(range); }
  // Inline for the empty set every request asks about when none is configured.
  bool Contains(const SocketAddress& address) const {
    return !ranges_.empty() && AnyContains(address);
  }
  bool empty() const { return ranges_.empty(); }

 private:
  bool AnyContains(const SocketAddress& address) const;

  std::vector<CidrRange> ranges_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_NET_CIDR_H_
