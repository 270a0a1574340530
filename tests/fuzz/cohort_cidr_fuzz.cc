// Fuzzes the cohort CIDR file parser (proxy/config/cohort_cidr_map.h), which reads a file an
// operator or a generator script writes, again on every change. Invariants: no crash, no
// sanitizer report; a refusal names the file and the line; a file that parses maps addresses
// only to its own cohorts, parses again the same with its names known (as on a reload), and
// gives the same answers both times.
#include <cstdlib>
#include <string>
#include <vector>

#include "proxy/config/cohort_cidr_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sluice::CohortCidrMap;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> cohorts = {"known"};
  auto map = CohortCidrMap::Parse(text, "fuzz.cidr", &cohorts, CohortCidrMap::NewCohorts::kAdd);
  if (!map.ok()) {
    if (map.status().message().substr(0, 10) != "fuzz.cidr:") std::abort();
    if (cohorts.size() != 1) std::abort();  // a refused file adds no name
    return 0;
  }
  std::vector<std::string> known = cohorts;
  auto again = CohortCidrMap::Parse(text, "fuzz.cidr", &known, CohortCidrMap::NewCohorts::kRefuse);
  if (!again.ok() || known != cohorts || (*again)->ranges() != (*map)->ranges()) std::abort();
  // Addresses from the input's own bytes (every 4 or 16 in a row), IPv4 and IPv6.
  uint8_t bytes[16] = {};
  for (size_t i = 0; i < size && i < 4096; i += 3) {
    for (size_t j = 0; j < sizeof(bytes); ++j) bytes[j] = i + j < size ? data[i + j] : 0;
    const sluice::SocketAddress addresses[] = {sluice::SocketAddress::FromIpv4(bytes, 1),
                                               sluice::SocketAddress::FromIpv6(bytes, 1)};
    for (const sluice::SocketAddress& address : addresses) {
      const int cohort = (*map)->Find(address);
      if (cohort < -1 || cohort >= static_cast<int>(cohorts.size())) std::abort();
      if ((*again)->Find(address) != cohort) std::abort();
    }
  }
  return 0;
}
