// What a request does when an upstream attempt ends: the rules of retries, transparent
// re-sends, tunnel fallback and Isthmus failover in one pure function. No sockets, no clock, no
// filter or cluster of its own: the forwarder (proxy/forward/forwarder.cc) states what
// happened and what the request is, and carries out the answer.
//
// The answer is a short list: the steps to try in order, then the one that stands when every
// step before it was refused. A retry can be refused by the retry budget of the cluster it goes
// to, a tunnel fallback or a failover by steering (no region left to take the member): those
// are the forwarder's to find out when it tries, so that a budget denial is counted only when
// a retry was really wanted. The rules, in the order they apply:
//
// 1. A response head arrived: the filters' verdict on it comes first (the forwarder runs the
//    response-head filters on every response but a 101 before it asks). A filter that asks
//    for another attempt gets a retry; a 502, 503 or 504 from the local region fails over
//    once through a savior; otherwise the response stands.
// 2. The cluster had no endpoint to pick: a tunnel falls back to the next region; locally the
//    503 stands (Isthmus before the first attempt is the steering decision's, not this).
// 3. Transparent re-sends, at most one per request and not retries (no filter sees them, no
//    budget counts them): an endpoint that refused HTTP/2 gets the request again over
//    HTTP/1.1, and a pooled connection the origin had closed before answering gets it again on
//    a new connection when it is idempotent and every byte sent is at hand.
// 4. A failure after the response began cannot be hidden: the client's stream is reset.
// 5. Otherwise the filters are asked first (they see the failure, and may ask for a retry).
//    A retry goes when a filter asks, or, on a route whose chain has no retry policy, once by
//    default: a failed connect always (nothing reached an origin), a reset or broken response
//    when idempotent, never a response timeout and never through a tunnel.
// 6. Then steering: a failed tunnel falls back to the next savior or to local; a failure of the
//    local region fails over once through a savior. A request that may have reached an origin
//    moves only when idempotent.
// 7. Every retry, fallback and failover needs an attempt left: the client has seen nothing,
//    the connection was not upgraded, every body byte sent is at hand and fewer than
//    kMaxAttempts attempts were made.
#ifndef SLUICE_PROXY_FORWARD_NEXT_STEP_H_
#define SLUICE_PROXY_FORWARD_NEXT_STEP_H_

#include <cstdint>

namespace sluice {

// How an attempt ended.
enum class AttemptEnd : uint8_t {
  kResponse,      // a response head arrived
  kNoEndpoint,    // the cluster had no endpoint to pick
  kHttp2Refused,  // the endpoint answered HTTP/2's preface with HTTP/1.1; nothing was sent
  kConnect,       // the connect failed, was refused or timed out
  kClosed,        // the connection closed or reset before any response byte
  kReset,         // any other loss of the connection
  kBadResponse,   // the origin broke HTTP
  kTimeout,       // no response head within the response timeout
};

// What the route's filters said about the failure or the response, if they were asked.
enum class FilterVerdict : uint8_t { kNotAsked, kRetry, kNoRetry };

inline constexpr int kMaxAttempts = 10;

struct AttemptFacts {
  AttemptEnd end = AttemptEnd::kResponse;
  int status = 0;               // of the response head (kResponse)
  bool request_sent = false;    // the request head went out on this attempt's connection
  bool pooled = false;          // the attempt's connection came from the pool
  bool response_began = false;  // its response head had arrived when the connection failed
};

struct RequestFacts {
  bool idempotent = false;           // RFC 9110 9.2.2, or it carries an Idempotency-Key
  bool client_saw_response = false;  // the client's stream has a response head
  bool upgraded = false;             // a 101 made the exchange a tunnel
  bool body_at_hand = true;          // every body byte sent so far can be sent again
  int attempts = 1;                  // made so far, this one included
  bool resent = false;               // the one transparent re-send was used
  bool default_retries = false;      // the route's chain has no retry policy of its own
  FilterVerdict filters = FilterVerdict::kNotAsked;
  bool tunneled = false;       // this attempt went through a tunnel to a peer region
  bool may_fail_over = false;  // steering with failover on, not tunneled in, not yet failed over
};

enum class Step : uint8_t {
  // Tried in order (each may be refused when carried out):
  kRetry,       // another endpoint of the same cluster, after the filters' backoff
  kNextRegion,  // the tunnel's region failed: the next savior, or the local cluster
  kFailover,    // the local region failed: once through a savior (Isthmus)
  // The one that stands:
  kAskFilters,  // run the filters on the failure, then decide again with their verdict
  kResend,      // the same endpoint again, on a new connection, at once
  kDeliver,     // the response goes to the client
  kFail,        // the failure goes to the client (502, 503 or 504)
  kReset,       // the response had begun: the client's stream is reset
};
const char* StepName(Step step);

struct NextSteps {
  Step steps[4] = {};
  uint8_t count = 0;
  // The failed attempt may have reached an origin: a retry of it counts against the budget,
  // and it moves to another region only when idempotent.
  bool reached_origin = false;

  Step last() const { return steps[count - 1]; }
  bool operator==(const NextSteps& other) const;
};

NextSteps DecideNextSteps(const AttemptFacts& attempt, const RequestFacts& request);

// A 502, 503 or 504: the answers a savior region may do better than.
inline bool GatewayError(int status) { return status >= 502 && status <= 504; }
// Rule 1 in brief: only a response the filters want retried, or a gateway error, can go
// anywhere but to the client. The forwarder asks DecideNextSteps about a response only then
// (it is on every request's path; the answer is kDeliver otherwise).
inline bool ResponseMayMove(int status, FilterVerdict filters) {
  return filters == FilterVerdict::kRetry || GatewayError(status);
}

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_NEXT_STEP_H_
