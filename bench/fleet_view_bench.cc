// What a fleet's leader spends on the nodes' views (steering/fleet_view.h): reading one view
// as etcd hands it over, and summing a fleet's views per region (a gate, the sums it
// publishes). A new leader of 3,000 nodes decodes 3,000 views before it leads.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "steering/fleet_view.h"

namespace sluice {
namespace {

const char* const kRegions[] = {"us-east-1", "us-west-2", "eu-west-1"};

// Of the size and shape a real node publishes (bench/fleet_sim.cc's): its region's origins,
// tunnels to two saviors, the detector's signal and a configured capacity.
NodeView View(int i) {
  NodeView view;
  view.node = absl::StrFormat("sim-%s-%d", kRegions[i % 3], i);
  view.region = kRegions[i % 3];
  view.admin = absl::StrFormat("10.%d.%d.%d:9901", i % 3, (i / 256) % 256, i % 256);
  view.version = 42;
  view.revision = 1000 + i;
  view.updated = absl::Now();
  view.window = absl::Seconds(30);
  const uint64_t requests = 1000 + static_cast<uint64_t>(i);
  view.local.requests = requests;
  view.local.errors = static_cast<uint64_t>(i % 3);
  view.local.starts = requests / 5;
  view.local.latency[2] = requests / 2;
  view.local.latency[4] = requests / 4;
  view.local.latency[8] = requests - requests / 2 - requests / 4;
  for (int s = 1; s < 3; ++s) {
    TrafficTotals tunnel;
    tunnel.requests = 20 + static_cast<uint64_t>(i % 10);
    tunnel.latency[5] = tunnel.requests;
    view.tunnels[kRegions[(i + s) % 3]] = tunnel;
  }
  view.starts_per_second[view.region] = static_cast<double>(view.local.starts) / 30;
  view.has_signal = true;
  view.entry_sps = view.starts_per_second[view.region];
  view.requests_per_second = static_cast<double>(requests) / 30;
  view.serving_sps[view.region] = view.entry_sps;
  view.capacity.known = true;
  view.capacity.source = "configured";
  view.capacity.capacity_rps = 500;
  view.capacity.load_rps = view.requests_per_second;
  return view;
}

void BM_DecodeNodeView(benchmark::State& state) {
  const std::string text = EncodeNodeView(View(7));
  for (auto _ : state) {
    absl::StatusOr<NodeView> view = DecodeNodeView(text);
    benchmark::DoNotOptimize(view);
  }
  state.counters["bytes"] = static_cast<double>(text.size());
}
BENCHMARK(BM_DecodeNodeView);

void BM_SumRegions(benchmark::State& state) {
  std::vector<NodeView> views;
  for (int i = 0; i < state.range(0); ++i) views.push_back(View(i));
  for (auto _ : state) {
    std::map<std::string, RegionSum> sums = SumRegions(views);
    benchmark::DoNotOptimize(sums);
  }
}
BENCHMARK(BM_SumRegions)->ArgName("nodes")->Arg(30)->Arg(3000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sluice
