#include "proxy/config/filter_config_loader.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "filters/filter_chain.h"
#include "proxy/config/config.h"

namespace sluice {

absl::Status ParseFilterChain(const Field& f, const FilterParseContext& context,
                              std::vector<FilterSpec>* out) {
  ASSIGN_OR_RETURN(std::vector<Field> items, f.Sequence());
  if (items.size() > kMaxFiltersPerChain) {
    return f.Error(absl::StrFormat("at most %d filters per route", kMaxFiltersPerChain));
  }
  for (const Field& item : items) {
    ASSIGN_OR_RETURN(auto entries, item.Entries());
    if (entries.size() != 1) {
      return item.Error("each filter is one key naming it: " + FilterNames());
    }
    auto& [kind, body] = entries[0];
    const FilterRegistration* registration = FindFilter(kind);
    if (!registration) {
      return item.Error(
          absl::StrFormat("unknown filter \"%s\" (expected %s)", kind, FilterNames()));
    }
    ASSIGN_OR_RETURN(std::shared_ptr<const FilterConfig> config,
                     registration->parse(body, context));
    out->push_back(FilterSpec{registration, std::move(config)});
  }
  return absl::OkStatus();
}

std::vector<std::string> FilterKeyFiles(const Config& config) {
  std::vector<std::string> files;
  for (const RouteConfig& route : config.routes) {
    for (const FilterSpec& spec : route.filters) {
      if (!spec.registration->key_files) continue;
      for (std::string& file : spec.registration->key_files(*spec.config)) {
        if (std::find(files.begin(), files.end(), file) == files.end()) {
          files.push_back(std::move(file));
        }
      }
    }
  }
  return files;
}

}  // namespace sluice
