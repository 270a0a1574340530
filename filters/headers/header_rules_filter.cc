#include "filters/headers/header_rules_filter.h"

namespace sluice {

void HeaderRules::Apply(HeaderMap& headers) const {
  for (const std::string& name : remove) headers.Remove(name);
  for (const auto& [name, value] : set) headers.Set(name, value);
  for (const auto& [name, value] : add) headers.Add(name, value);
}

FilterStatus HeaderRulesFilter::OnRequestHead(FilterRequest& request, FilterSlot&) {
  config_.request.Apply(request.head->headers);
  return FilterStatus::kContinue;
}

FilterStatus HeaderRulesFilter::OnResponseHead(FilterRequest&, ResponseHead& response,
                                               FilterSlot&) {
  config_.response.Apply(response.headers);
  return FilterStatus::kContinue;
}

}  // namespace sluice
