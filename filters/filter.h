// The one interface a filter needs.
//
// A route has a chain of filters, configured in YAML in order and built once per worker when a
// configuration snapshot arrives. Filter objects are shared by every request of their worker
// (so they keep only per-worker state: caches, token buckets, learned limits); what belongs to
// one request lives in that request's FilterRequest and in the filter's FilterSlot. Running a
// chain allocates nothing.
//
// Order (Zuul's inbound / endpoint / outbound model):
//   OnRequestHead      in chain order, after the request was normalized and routed and before
//                      anything goes upstream;
//   OnUpstreamError    in reverse order, when the upstream failed before the response began;
//   OnResponseHead     in reverse order, before the response head goes to the client;
//   OnComplete         in reverse order, once, for every filter whose OnRequestHead ran.
//
// Threading: every hook runs on the worker loop that owns the request. A hook must not block;
// work that waits returns kPause and resumes from the loop.
#ifndef SLUICE_FILTERS_FILTER_H_
#define SLUICE_FILTERS_FILTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/http_message.h"
#include "common/socket_address.h"

namespace sluice {

// What a hook asks for.
enum class FilterStatus : uint8_t {
  // Go on: the next filter runs (after the last request filter, the request goes upstream;
  // after the last response filter, the response goes to the client).
  kContinue,
  // Request head (or a resumed pause) only: answer now with FilterRequest::reply. Nothing
  // goes upstream; filters after this one do not run; every filter that ran sees OnComplete.
  kRespond,
  // Request head only: the filter has work in flight. The chain stops here and the request
  // body is held (the client is paused once the forwarder's buffer fills) until the filter
  // calls FilterRequest::resume->Resume(status) from the loop with kContinue or kRespond.
  // If the exchange ends first, OnComplete comes with outcome.cancelled and the filter must
  // forget the request.
  kPause,
  // Response head or upstream error only: drop this response (or error) and send the
  // request again, to another endpoint when the cluster has one. The forwarder does it only
  // while the request is replayable (no body, or one kept whole because a filter set
  // context.keep_request_body and it fit the replay buffer) and nothing reached the client;
  // otherwise it carries on as for kContinue.
  kRetry,
};

// Who sent the request, as far as a filter verified it. Views stay valid while `owner` lives.
struct Identity {
  enum class Method : uint8_t { kNone, kJwt, kApiKey };
  Method method = Method::kNone;
  std::string_view member_id;    // the verified subject (JWT) or the API key's name
  std::string_view home_region;  // from the configured claim, empty if none
  std::string_view tier;         // from the configured claim, empty if none
  std::shared_ptr<const void> owner;
  bool verified() const { return method != Method::kNone; }
};

// Why the last upstream attempt failed, for OnUpstreamError.
enum class UpstreamFailure : uint8_t {
  kNone,
  kConnect,      // connect refused, failed or timed out
  kReset,        // the connection closed or reset before the response head
  kTimeout,      // no response head within the (per-try) response timeout
  kBadResponse,  // the origin broke HTTP
  kCount,        // not a failure: the number of values above (new values go before it)
};
inline constexpr int kUpstreamFailures = static_cast<int>(UpstreamFailure::kCount);

// Values filters attach to a request for later filters and for steering.
struct FilterContext {
  SocketAddress client;  // the real client (after the PROXY protocol)
  // The request came through a trusted proxy or a verified tunnel (or proxy.trust_client_headers
  // is on): what its headers say about its member and priority may be believed.
  bool trusted_headers = false;
  size_t route_index = 0;
  size_t cluster_index = 0;
  Identity identity;
  int partition = -1;      // the load-shedding partition, once classified
  int64_t started_ns = 0;  // when the request head arrived (monotonic)
  int attempts = 0;        // upstream attempts so far
  UpstreamFailure last_failure = UpstreamFailure::kNone;
  // Set by a filter that may ask for retries (the retry policy):
  bool keep_request_body = false;  // buffer the body, up to replay_limit, for a replay
  uint64_t replay_limit = 64 * 1024;
  int64_t per_try_timeout_ns = 0;  // response timeout of each attempt; 0: the cluster's
  int64_t retry_delay_ns = 0;      // wait this long before the attempt a kRetry asks for
};

// A filter's answer when it returns kRespond.
struct FilterReply {
  int status = 0;
  HeaderMap headers;  // added to the response as they are
  std::string body;   // sent with Content-Type: text/plain unless headers say otherwise
};

// How the exchange ended, for OnComplete.
struct FilterOutcome {
  int status = 0;  // the status the client got; 0 if it got none (reset)
  bool answered_by_filter = false;
  bool upstream_failed = false;  // connect failure, reset, invalid response
  bool timed_out = false;        // an upstream timeout
  bool cancelled = false;        // the client went away first
  int64_t latency_ns = 0;        // from the request head to the end of the exchange
};

// Resumes a chain paused with kPause. Implemented by the forwarder.
class FilterResume {
 public:
  virtual void Resume(FilterStatus status) = 0;

 protected:
  virtual ~FilterResume() = default;
};

// One request as the chain sees it. Owned by the forwarder; valid until OnComplete returns.
struct FilterRequest {
  RequestHead* head = nullptr;  // editable: filters may change headers
  FilterContext context;
  FilterReply reply;
  FilterResume* resume = nullptr;
};

// Sixteen bytes of per-request state for each filter of the chain (FilterRequest is shared by
// the chain; a slot belongs to one filter). Zeroed when the request starts.
struct FilterSlot {
  int64_t value = 0;
  int32_t extra = 0;
  bool flag = false;
};
static_assert(sizeof(FilterSlot) == 16);

class Filter {
 public:
  virtual ~Filter() = default;
  // The name used in configuration and logs ("auth", "shed", ...).
  virtual std::string_view name() const = 0;

  virtual FilterStatus OnRequestHead(FilterRequest& request, FilterSlot& slot) {
    return FilterStatus::kContinue;
  }
  virtual FilterStatus OnUpstreamError(FilterRequest& request, FilterSlot& slot) {
    return FilterStatus::kContinue;
  }
  virtual FilterStatus OnResponseHead(FilterRequest& request, ResponseHead& response,
                                      FilterSlot& slot) {
    return FilterStatus::kContinue;
  }
  // Body chunks, only for filters that return true from wants_bodies(). Views are valid only
  // during the call.
  virtual bool wants_bodies() const { return false; }
  virtual void OnRequestBody(FilterRequest& request, std::string_view data, FilterSlot& slot) {}
  virtual void OnResponseBody(FilterRequest& request, std::string_view data, FilterSlot& slot) {}
  virtual void OnComplete(FilterRequest& request, const FilterOutcome& outcome, FilterSlot& slot) {}
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_FILTER_H_
