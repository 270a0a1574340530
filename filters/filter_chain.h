// A route's filters in order (FilterChain, built once per worker) and one request's run
// through them (FilterRun, embedded in the forwarder: no allocation per request).
#ifndef SLUICE_FILTERS_FILTER_CHAIN_H_
#define SLUICE_FILTERS_FILTER_CHAIN_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "filters/filter.h"

namespace sluice {

inline constexpr size_t kMaxFiltersPerChain = 16;

class FilterChain {
 public:
  FilterChain() = default;
  FilterChain(FilterChain&&) = default;
  FilterChain& operator=(FilterChain&&) = default;

  // At most kMaxFiltersPerChain (the configuration loader refuses more).
  void Add(std::unique_ptr<Filter> filter);
  size_t size() const { return filters_.size(); }
  bool empty() const { return filters_.empty(); }
  Filter& at(size_t i) const { return *filters_[i]; }
  bool wants_bodies() const { return wants_bodies_; }

 private:
  std::vector<std::unique_ptr<Filter>> filters_;
  bool wants_bodies_ = false;
};

class FilterRun {
 public:
  // Begins a request on `chain` (which must outlive the run).
  void Start(const FilterChain* chain);

  // Runs OnRequestHead from the first filter not yet run. Returns kContinue when every filter
  // passed, kRespond (reply is in the request) or kPause.
  FilterStatus RunRequestHead(FilterRequest& request);
  // A paused filter resumed with `status`: kContinue runs the rest, kRespond stops.
  FilterStatus Resume(FilterRequest& request, FilterStatus status);
  // Reverse order over the filters that ran; a filter answering kRetry stops the walk, so the
  // filters after it do not see a response (or error) that is about to be discarded.
  FilterStatus RunUpstreamError(FilterRequest& request);
  FilterStatus RunResponseHead(FilterRequest& request, ResponseHead& response);
  // When the retry asked for cannot happen (budget, attempts, a body not replayable), the
  // filters the walk skipped still see the error or response that stands; kRetry is ignored.
  void FinishUpstreamError(FilterRequest& request);
  void FinishResponseHead(FilterRequest& request, ResponseHead& response);
  void RunRequestBody(FilterRequest& request, std::string_view data);
  void RunResponseBody(FilterRequest& request, std::string_view data);
  // OnComplete for every filter that ran, in reverse order. Once; later calls do nothing.
  void Complete(FilterRequest& request, const FilterOutcome& outcome);

  // The filter (index in the chain) that answered the request itself; -1: none did.
  int responder() const { return responder_; }
  bool paused() const { return paused_; }
  bool completed() const { return completed_; }
  bool active() const { return chain_ != nullptr && !completed_; }

 private:
  const FilterChain* chain_ = nullptr;
  uint8_t next_ = 0;      // the next filter whose OnRequestHead runs
  uint8_t started_ = 0;   // filters whose OnRequestHead ran
  uint8_t retry_at_ = 0;  // the filter that answered kRetry in the last reverse walk
  int8_t responder_ = -1;
  bool paused_ = false;
  bool completed_ = false;
  FilterSlot slots_[kMaxFiltersPerChain];
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_FILTER_CHAIN_H_
