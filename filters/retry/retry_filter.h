// Retry policy: asks the forwarder to send a request again after a failure, to another
// endpoint, with exponential backoff and jitter.
//   - retry:
//       attempts: 3                      # in all, the first included
//       on: [connect_failure, reset, timeout, gateway_error, 500]
//       methods: idempotent              # or any
//       replay_buffer: 64KiB             # a larger body is sent once, never retried
//       per_try_timeout: 2s              # response timeout of each attempt
//       backoff: {base: 25ms, max: 250ms}
// Conditions: connect_failure (refused, failed or timed out), reset (closed before the
// response head), timeout (no response head within the per-try timeout), gateway_error (502,
// 503 or 504 from the origin), and any listed status code. Only idempotent methods (RFC 9110:
// GET, HEAD, OPTIONS, TRACE, PUT, DELETE) or requests with an Idempotency-Key are retried
// unless `methods: any`. Never once a response byte went to the client (the forwarder checks).
// The cluster's retry budget may still say no (proxy/upstream/cluster_runtime.h).
#ifndef SLUICE_FILTERS_RETRY_RETRY_FILTER_H_
#define SLUICE_FILTERS_RETRY_RETRY_FILTER_H_

#include <cstdint>
#include <vector>

#include "common/clock.h"
#include "filters/filter.h"
#include "filters/registry.h"

namespace sluice {

struct RetryConfig : FilterConfig {
  uint32_t attempts = 3;
  bool on_connect_failure = true;
  bool on_reset = true;
  bool on_timeout = true;
  bool on_gateway_error = true;
  std::vector<int> status_codes;  // further statuses that call for another attempt
  bool any_method = false;
  uint64_t replay_buffer = 64 * 1024;
  int64_t per_try_timeout_ns = 0;
  int64_t backoff_base_ns = 25000000;
  int64_t backoff_max_ns = 250000000;
};

class RetryFilter final : public Filter {
 public:
  RetryFilter(const RetryConfig& config, const Clock& clock);
  static constexpr std::string_view kName = "retry";
  std::string_view name() const override { return kName; }
  FilterStatus OnRequestHead(FilterRequest& request, FilterSlot& slot) override;
  FilterStatus OnUpstreamError(FilterRequest& request, FilterSlot& slot) override;
  FilterStatus OnResponseHead(FilterRequest& request, ResponseHead& response,
                              FilterSlot& slot) override;

  // The wait before attempt number `attempts` + 1: equal jitter over
  // min(max, base x 2^(attempts-1)), so never zero and never above the cap.
  int64_t Backoff(int attempts);

 private:
  FilterStatus Again(FilterRequest& request);
  RetryConfig config_;
  uint64_t random_;
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_RETRY_RETRY_FILTER_H_
