// Cost of path normalization: the common clean path (fast path) and one that needs work.
#include <string>

#include "benchmark/benchmark.h"
#include "proxy/http/path_normalizer.h"

namespace sluice {
namespace {

void BM_NormalizeCleanPath(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    NormalizePath("/api/v1/titles/81234567/artwork", {}, &out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_NormalizeCleanPath);

void BM_NormalizeDirtyPath(benchmark::State& state) {
  std::string out;
  for (auto _ : state) {
    NormalizePath("/api//v1/./titles/%7Euser/../81234567/%61rtwork", {}, &out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_NormalizeDirtyPath);

}  // namespace
}  // namespace sluice
