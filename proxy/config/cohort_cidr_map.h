// A cohort CIDR file (`steering.cohorts: [{cidr_file: PATH}]`): client networks mapped to
// cohorts, matched against the real client address (after the PROXY protocol, the client a
// trusted proxy or a peer region forwarded for). The longest prefix that holds the address wins.
//
// The file, one range a line:
//
//   # South America, and Brazil on its own       ('#' starts a comment, on any line)
//   200.0.0.0/8        south-america
//   2800::/12          south-america
//   200.160.0.0/16     brazil                    # longer prefix: wins inside 200.160/16
//   192.0.2.7          vip                       # a bare address is one host (/32 or /128)
//
// Fields are separated by spaces or tabs; blank lines are ignored; CRLF line ends are accepted.
// A range has no bit set beyond its prefix length ("10.1.0.0/8" is refused: 10.0.0.0/8 was
// probably meant), and the same range twice is refused. A cohort name is 1 to 63 of a-z, 0-9,
// '-', '_', '.', starting with a letter or digit. IPv4 clients, IPv4-mapped IPv6 ones included,
// match the IPv4 lines; an IPv4-mapped IPv6 range (inside ::ffff:0:0/96) is refused: write it as
// IPv4. One bad line refuses the whole file, with "FILE:LINE: what is wrong".
//
// Built on the control thread (configuration load, or the file watch when the file changes);
// immutable afterwards: workers share it as a shared_ptr<const CohortCidrMap> and look up from
// any thread without locks. A lookup is a binary search over a sorted table of address runs and
// allocates nothing.
#ifndef SLUICE_PROXY_CONFIG_COHORT_CIDR_MAP_H_
#define SLUICE_PROXY_CONFIG_COHORT_CIDR_MAP_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/socket_address.h"

namespace sluice {

class CohortCidrMap {
 public:
  // What a cohort name the file uses, and `cohorts` lacks, does: at configuration load it joins
  // the list (kAdd: the list is the steering table's, so cohort ids are indexes into it); when
  // the file changes under a running configuration it refuses the file (kRefuse: the list is
  // fixed until the configuration is reloaded).
  enum class NewCohorts : uint8_t { kAdd, kRefuse };

  CohortCidrMap() = default;  // empty: no address is in a cohort

  // Parses a file's text; `source` names the file in errors. Cohort ids are indexes into
  // `*cohorts`, which grows (kAdd) only when the whole text parses.
  static absl::StatusOr<std::shared_ptr<const CohortCidrMap>> Parse(
      std::string_view text, std::string_view source, std::vector<std::string>* cohorts,
      NewCohorts new_cohorts);
  // Reads and parses the file at `path` ("cannot read PATH: ..." when it cannot).
  static absl::StatusOr<std::shared_ptr<const CohortCidrMap>> Load(
      const std::string& path, std::vector<std::string>* cohorts, NewCohorts new_cohorts);

  // The cohort id of the longest range that holds `address`; -1 when none does. Any thread.
  int Find(const SocketAddress& address) const;

  size_t ranges() const { return ranges_; }  // lines that name a range
  // Increases with every map built in this process: of two maps of one file, the higher is
  // the newer (a file change and a configuration reload may reach a worker in either order).
  uint64_t version() const { return version_; }

  __extension__ typedef unsigned __int128 Uint128;

  // Disjoint runs of addresses: starts[i] begins a run, up to the next start, whose cohort is
  // cohorts[i] (-1: none). Addresses below starts[0] are in none.
  template <typename Key>
  struct RunTable {
    std::vector<Key> starts;
    std::vector<int32_t> cohorts;
    int Find(Key address) const {
      auto it = std::upper_bound(starts.begin(), starts.end(), address);
      if (it == starts.begin()) return -1;
      return cohorts[static_cast<size_t>(it - starts.begin()) - 1];
    }
  };

 private:
  RunTable<uint32_t> v4_;
  RunTable<Uint128> v6_;
  size_t ranges_ = 0;
  uint64_t version_ = 0;
};

using CohortCidrMapPtr = std::shared_ptr<const CohortCidrMap>;

}  // namespace sluice

#endif  // SLUICE_PROXY_CONFIG_COHORT_CIDR_MAP_H_
