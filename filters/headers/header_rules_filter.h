// Header rules: add, set and remove request and response header fields per route.
//   - headers:
//       request: {add: {X-Edge: sluice}, set: {X-Env: prod}, remove: [X-Debug]}
//       response: {remove: [Server], set: {Cache-Control: no-store}}
// Rules apply in the order remove, set, add. Request rules see the head that goes upstream
// (after sluice's own X-Forwarded-* and Via), response rules the head that goes downstream.
#ifndef SLUICE_FILTERS_HEADERS_HEADER_RULES_FILTER_H_
#define SLUICE_FILTERS_HEADERS_HEADER_RULES_FILTER_H_

#include <string>
#include <utility>
#include <vector>

#include "filters/filter.h"
#include "filters/registry.h"

namespace sluice {

struct HeaderRules {
  std::vector<std::string> remove;
  std::vector<std::pair<std::string, std::string>> set;  // replaces every field of the name
  std::vector<std::pair<std::string, std::string>> add;  // appends another field
  bool empty() const { return remove.empty() && set.empty() && add.empty(); }
  void Apply(HeaderMap& headers) const;
};

struct HeaderRulesConfig : FilterConfig {
  HeaderRules request;
  HeaderRules response;
};

class HeaderRulesFilter final : public Filter {
 public:
  explicit HeaderRulesFilter(HeaderRulesConfig config) : config_(std::move(config)) {}
  static constexpr std::string_view kName = "headers";
  std::string_view name() const override { return kName; }
  FilterStatus OnRequestHead(FilterRequest& request, FilterSlot& slot) override;
  FilterStatus OnResponseHead(FilterRequest& request, ResponseHead& response,
                              FilterSlot& slot) override;

 private:
  HeaderRulesConfig config_;
};

}  // namespace sluice

#endif  // SLUICE_FILTERS_HEADERS_HEADER_RULES_FILTER_H_
