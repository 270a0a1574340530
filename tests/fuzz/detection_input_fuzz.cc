// Fuzzes what the sick-region detector reads from outside: a history CSV (POST /v1/history,
// steering/signal_history.h) and a Prometheus range-query answer
// (proxy/control/prometheus_baseline.h). The first byte picks the parser.
// Invariants: no crash, no sanitizer report; every refusal says why; a CSV that decodes
// encodes to a CSV that decodes to the same rows; a matrix holds no sample from the future.
#include <cstdlib>
#include <string>

#include "proxy/control/prometheus_baseline.h"
#include "steering/signal_history.h"

namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

void Check(const absl::Status& s) {
  if (!s.ok() && s.message().empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
    auto rows = sluice::DecodeHistoryCsv(text, kNow);
    Check(rows.status());
    if (rows.ok()) {
      auto again = sluice::DecodeHistoryCsv(sluice::EncodeHistoryCsv(*rows), kNow);
      if (!again.ok() || again->size() != rows->size()) std::abort();
      for (size_t i = 0; i < rows->size(); ++i) {
        if ((*again)[i].region != (*rows)[i].region || (*again)[i].start != (*rows)[i].start ||
            (*again)[i].span != (*rows)[i].span) {
          std::abort();
        }
      }
    }
  } else {
    auto matrix = sluice::ParsePrometheusMatrix(text, kNow);
    Check(matrix.status());
    if (matrix.ok()) {
      for (const auto& [region, samples] : *matrix) {
        for (const auto& [t, v] : samples) {
          if (t > absl::ToUnixSeconds(kNow) + 60 || v < 0) std::abort();
        }
      }
    }
  }
  return 0;
}
