// Cost of the steering decision per request (the target: at most 50 ns at every evacuated
// fraction, no allocation) and of the hop marker a tunneled request carries (signed by the
// sender, verified by the receiver; the target for a verify: at most 0.3 us, no allocation).
// Allocations count C++ operator new and OpenSSL's allocator (bench/allocation_counter.h).
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "bench/allocation_counter.h"
#include "benchmark/benchmark.h"
#include "steering/decision.h"
#include "steering/hop_marker.h"

namespace sluice {
namespace {

// Three regions; us-east-1 (local) evacuating `bp` to eu-west-1 70 / us-west-2 30, with a
// cohort row; us-west-2 evacuating 10% of its own members.
SteeringTablePtr Table(uint32_t bp) {
  SteeringSpec spec;
  spec.local_region = "us-east-1";
  spec.cohorts = {"latam"};
  RegionSpec east;
  east.name = "us-east-1";
  east.evacuated_bp = bp;
  east.saviors = {{"eu-west-1", 70}, {"us-west-2", 30}};
  east.cohort_saviors["latam"] = {{"us-west-2", 100}};
  RegionSpec west;
  west.name = "us-west-2";
  west.evacuated_bp = 1000;
  west.saviors = {{"us-east-1", 50}, {"eu-west-1", 50}};
  RegionSpec eu;
  eu.name = "eu-west-1";
  spec.regions = {east, west, eu};
  return *BuildSteeringTable(spec, 1);
}

std::vector<std::string> Members() {
  std::vector<std::string> members;
  for (int i = 0; i < 4096; ++i) {
    members.push_back(absl::StrFormat("3f2a9c1e-%04x-4d2b-9a61-%012x", i, i * 7919));
  }
  return members;
}

// Allocations per iteration since `before`, as a benchmark counter.
benchmark::Counter AllocationsPerIteration(const benchmark::State& state, uint64_t before) {
  return benchmark::Counter(static_cast<double>(AllocationCount() - before) /
                            static_cast<double>(std::max<int64_t>(1, state.iterations())));
}

// range(0): the evacuated fraction in basis points; range(1): 1 = the member's home region is
// us-west-2 (misrouted), 0 = none. Members are 36-character ids (a UUID's length).
void BM_SteeringDecision(benchmark::State& state) {
  SteeringTablePtr table = Table(static_cast<uint32_t>(state.range(0)));
  const std::vector<std::string> members = Members();
  MemberRequest request;
  request.home = state.range(1) ? 1 : -1;
  size_t i = 0;
  uint64_t allocations_before = AllocationCount();
  int tunneled = 0;
  for (auto _ : state) {
    request.member = members[i++ & 4095];
    SteeringDecision decision = Decide(*table, request);
    tunneled += decision.tunnel;
    benchmark::DoNotOptimize(decision);
  }
  state.counters["allocs_per_decision"] = AllocationsPerIteration(state, allocations_before);
  state.counters["tunneled_share"] =
      benchmark::Counter(tunneled / static_cast<double>(std::max<int64_t>(1, state.iterations())));
}
BENCHMARK(BM_SteeringDecision)
    ->ArgNames({"evacuated_bp", "misrouted"})
    ->ArgsProduct({{0, 1, 100, 1000, 2500, 5000, 7500, 9000, 9999, 10000}, {0}})
    ->Args({0, 1})
    ->Args({2500, 1})
    ->Args({10000, 1});

const HopRequest kLine{
    "GET", "/api/v1/profiles/12345/rows", "page=2&lang=en", "api.example", "203.0.113.7", "-"};

const std::string kKey(64, 'k');
const std::string kOldKey(64, 'o');

std::string SignLine(const HopSigner& signer) {
  return signer.Sign("us-east-1", "eu-west-1", 1763790000, 0x1234,
                     "3f2a9c1e-77aa-4d2b-9a61-0c1b2d3e4f50", kLine);
}

// Sign builds the header value (a std::string): its allocations are the string's.
void BM_HopMarkerSign(benchmark::State& state) {
  HopSigner signer({kKey});
  uint64_t allocations_before = AllocationCount();
  for (auto _ : state) {
    std::string value = SignLine(signer);
    benchmark::DoNotOptimize(value);
  }
  state.counters["allocs_per_sign"] = AllocationsPerIteration(state, allocations_before);
}
BENCHMARK(BM_HopMarkerSign);

// range(0): 1 = the marker is signed with the signer's second key (during a key rotation:
// two MACs per verify), 0 = with its first.
void BM_HopMarkerVerify(benchmark::State& state) {
  HopSigner signer({kKey, kOldKey});
  HopSigner sender({state.range(0) ? kOldKey : kKey});
  std::string value = SignLine(sender);
  HopMarker marker;
  uint64_t allocations_before = AllocationCount();
  for (auto _ : state) {
    HopVerdict verdict = signer.Verify(value, "eu-west-1", 1763790001, 30, kLine, &marker);
    if (verdict != HopVerdict::kValid) {
      state.SkipWithError("the marker did not verify");
      break;
    }
  }
  state.counters["allocs_per_verify"] = AllocationsPerIteration(state, allocations_before);
  state.counters["openssl_allocs_counted"] = AllocationCountIncludesOpenSsl() ? 1 : 0;
}
BENCHMARK(BM_HopMarkerVerify)->ArgName("second_key")->Arg(0)->Arg(1);

// The syntax alone (what Verify does before its MACs).
void BM_HopMarkerParse(benchmark::State& state) {
  HopSigner sender({kKey});
  std::string value = SignLine(sender);
  HopMarker marker;
  for (auto _ : state) {
    benchmark::DoNotOptimize(value.data());
    if (!ParseHopMarker(value, &marker)) {
      state.SkipWithError("the marker did not parse");
      break;
    }
    benchmark::DoNotOptimize(marker);
  }
}
BENCHMARK(BM_HopMarkerParse);

}  // namespace
}  // namespace sluice
