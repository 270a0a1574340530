// Cohort CIDR files (proxy/config/cohort_cidr_map.h): the lookup every request with a
// cidr_file cohort rule makes (no allocation; a binary search over address runs), and loading
// a file the size of a country-level IP database (a few hundred thousand lines: well under a
// second, on the control thread).
#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/allocation_counter.h"
#include "benchmark/benchmark.h"
#include "proxy/config/cohort_cidr_map.h"

namespace sluice {
namespace {

// `lines` distinct ranges: IPv4 /16 to /24 (nested here and there) and, one line in four,
// IPv6 /44s, spread over 250 cohorts.
std::string CidrFile(int lines) {
  std::mt19937 random(7);
  std::set<std::string> ranges;
  std::string text;
  text.reserve(static_cast<size_t>(lines) * 32);
  while (static_cast<int>(ranges.size()) < lines) {
    const uint32_t r = random();
    std::string range;
    if (ranges.size() % 4 == 3) {
      range = absl::StrFormat("2%03x:%x::/44", r % 0x1000, (r >> 12) & 0xfff0);
    } else {
      const int length = 16 + static_cast<int>(r % 9);
      const uint32_t network = random() & (~0u << (32 - length));
      range = absl::StrFormat("%d.%d.%d.%d/%d", network >> 24, (network >> 16) & 255,
                              (network >> 8) & 255, network & 255, length);
    }
    if (!ranges.insert(range).second) continue;
    text += absl::StrFormat("%s c%d\n", range, random() % 250);
  }
  return text;
}

void BM_CohortCidrLookup(benchmark::State& state) {
  const std::string text = CidrFile(static_cast<int>(state.range(0)));
  std::vector<std::string> cohorts;
  auto map = CohortCidrMap::Parse(text, "bench.cidr", &cohorts, CohortCidrMap::NewCohorts::kAdd);
  if (!map.ok()) {
    state.SkipWithError(std::string(map.status().message()).c_str());
    return;
  }
  std::mt19937 random(11);
  std::vector<SocketAddress> clients;
  for (int i = 0; i < 4096; ++i) {
    uint8_t bytes[16];
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(random());
    bytes[0] = static_cast<uint8_t>(0x20 + (bytes[0] & 1));
    clients.push_back(i % 4 == 3 ? SocketAddress::FromIpv6(bytes, 443)
                                 : SocketAddress::FromIpv4(bytes, 443));
  }
  size_t i = 0;
  int in_cohort = 0;
  uint64_t allocations_before = AllocationCount();
  for (auto _ : state) {
    int cohort = (*map)->Find(clients[i++ & 4095]);
    in_cohort += cohort >= 0;
    benchmark::DoNotOptimize(cohort);
  }
  const double iterations = static_cast<double>(std::max<int64_t>(1, state.iterations()));
  state.counters["allocs_per_lookup"] =
      benchmark::Counter(static_cast<double>(AllocationCount() - allocations_before) / iterations);
  state.counters["in_cohort_share"] = benchmark::Counter(in_cohort / iterations);
}
BENCHMARK(BM_CohortCidrLookup)->ArgName("ranges")->Arg(1000)->Arg(300000);

void BM_CohortCidrLoad(benchmark::State& state) {
  const std::string text = CidrFile(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    std::vector<std::string> cohorts;
    auto map = CohortCidrMap::Parse(text, "bench.cidr", &cohorts, CohortCidrMap::NewCohorts::kAdd);
    if (!map.ok()) {
      state.SkipWithError(std::string(map.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(map);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_CohortCidrLoad)->ArgName("lines")->Arg(300000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sluice
