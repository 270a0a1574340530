#include "filters/filter_chain.h"

namespace sluice {

void FilterChain::Add(std::unique_ptr<Filter> filter) {
  wants_bodies_ = wants_bodies_ || filter->wants_bodies();
  filters_.push_back(std::move(filter));
}

void FilterRun::Start(const FilterChain* chain) {
  chain_ = chain;
  next_ = 0;
  started_ = 0;
  paused_ = false;
  completed_ = false;
  responder_ = -1;
  for (FilterSlot& slot : slots_) slot = FilterSlot{};
}

FilterStatus FilterRun::RunRequestHead(FilterRequest& request) {
  if (!chain_ || completed_ || paused_) return FilterStatus::kContinue;
  while (next_ < chain_->size()) {
    size_t i = next_++;
    started_ = next_;
    FilterStatus status = chain_->at(i).OnRequestHead(request, slots_[i]);
    switch (status) {
      case FilterStatus::kContinue:
        continue;
      case FilterStatus::kPause:
        paused_ = true;
        return FilterStatus::kPause;
      case FilterStatus::kRespond:
        responder_ = static_cast<int8_t>(i);
        return FilterStatus::kRespond;
      case FilterStatus::kRetry:
        continue;  // meaningless before anything went upstream
    }
  }
  return FilterStatus::kContinue;
}

FilterStatus FilterRun::Resume(FilterRequest& request, FilterStatus status) {
  if (!paused_) return FilterStatus::kContinue;
  paused_ = false;
  if (status == FilterStatus::kRespond) {
    responder_ = static_cast<int8_t>(started_ - 1);
    return FilterStatus::kRespond;
  }
  return RunRequestHead(request);
}

FilterStatus FilterRun::RunUpstreamError(FilterRequest& request) {
  if (!chain_ || completed_) return FilterStatus::kContinue;
  for (size_t i = started_; i-- > 0;) {
    if (chain_->at(i).OnUpstreamError(request, slots_[i]) == FilterStatus::kRetry) {
      retry_at_ = static_cast<uint8_t>(i);
      return FilterStatus::kRetry;
    }
  }
  return FilterStatus::kContinue;
}

FilterStatus FilterRun::RunResponseHead(FilterRequest& request, ResponseHead& response) {
  if (!chain_ || completed_) return FilterStatus::kContinue;
  for (size_t i = started_; i-- > 0;) {
    if (chain_->at(i).OnResponseHead(request, response, slots_[i]) == FilterStatus::kRetry) {
      retry_at_ = static_cast<uint8_t>(i);
      return FilterStatus::kRetry;
    }
  }
  return FilterStatus::kContinue;
}

void FilterRun::FinishUpstreamError(FilterRequest& request) {
  if (!chain_ || completed_) return;
  for (size_t i = retry_at_; i-- > 0;) chain_->at(i).OnUpstreamError(request, slots_[i]);
}

void FilterRun::FinishResponseHead(FilterRequest& request, ResponseHead& response) {
  if (!chain_ || completed_) return;
  for (size_t i = retry_at_; i-- > 0;) chain_->at(i).OnResponseHead(request, response, slots_[i]);
}

void FilterRun::RunRequestBody(FilterRequest& request, std::string_view data) {
  if (!chain_ || completed_ || !chain_->wants_bodies()) return;
  for (size_t i = 0; i < started_; ++i) {
    Filter& filter = chain_->at(i);
    if (filter.wants_bodies()) filter.OnRequestBody(request, data, slots_[i]);
  }
}

void FilterRun::RunResponseBody(FilterRequest& request, std::string_view data) {
  if (!chain_ || completed_ || !chain_->wants_bodies()) return;
  for (size_t i = started_; i-- > 0;) {
    Filter& filter = chain_->at(i);
    if (filter.wants_bodies()) filter.OnResponseBody(request, data, slots_[i]);
  }
}

void FilterRun::Complete(FilterRequest& request, const FilterOutcome& outcome) {
  if (!chain_ || completed_) return;
  completed_ = true;
  FilterOutcome final_outcome = outcome;
  final_outcome.cancelled = outcome.cancelled || paused_;
  for (size_t i = started_; i-- > 0;) chain_->at(i).OnComplete(request, final_outcome, slots_[i]);
}

}  // namespace sluice
