// routes[].filters[].headers: request and response header rules.
#include "absl/strings/str_format.h"
#include "common/http_headers.h"
#include "common/status_macros.h"
#include "common/yaml_field.h"
#include "filters/headers/header_rules_filter.h"
#include "filters/registry.h"

namespace sluice {
namespace {

absl::Status CheckRuleName(const Field& f, std::string_view name) {
  if (!IsHttpToken(name)) return f.Error(absl::StrFormat("\"%s\" is not a header name", name));
  HeaderKind kind = ClassifyHeaderName(name);
  if (IsHopByHop(kind) || kind == HeaderKind::kContentLength ||
      kind == HeaderKind::kSluiceInternal) {
    return f.Error(absl::StrFormat("header rules cannot change \"%s\"", name));
  }
  return absl::OkStatus();
}

absl::Status ParseRules(const Field& f, HeaderRules* out) {
  RETURN_IF_ERROR(f.ExpectMap({"add", "set", "remove"}));
  for (const char* op : {"add", "set"}) {
    Field field = f.Child(op);
    if (!field.present()) continue;
    ASSIGN_OR_RETURN(auto entries, field.Entries());
    for (auto& [name, value_field] : entries) {
      RETURN_IF_ERROR(CheckRuleName(value_field, name));
      ASSIGN_OR_RETURN(std::string value, value_field.Scalar());
      for (char c : value) {
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
          return value_field.Error("header values cannot contain control characters");
        }
      }
      (std::string_view(op) == "add" ? out->add : out->set).emplace_back(name, value);
    }
  }
  Field remove = f.Child("remove");
  if (remove.present()) {
    ASSIGN_OR_RETURN(std::vector<Field> items, remove.Sequence());
    for (const Field& item : items) {
      ASSIGN_OR_RETURN(std::string name, item.Scalar());
      RETURN_IF_ERROR(CheckRuleName(item, name));
      out->remove.push_back(name);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const FilterConfig>> Parse(const Field& f,
                                                          const FilterParseContext&) {
  auto out = std::make_shared<HeaderRulesConfig>();
  RETURN_IF_ERROR(f.ExpectMap({"request", "response"}));
  if (Field r = f.Child("request"); r.present()) RETURN_IF_ERROR(ParseRules(r, &out->request));
  if (Field r = f.Child("response"); r.present()) RETURN_IF_ERROR(ParseRules(r, &out->response));
  return out;
}

std::unique_ptr<Filter> Create(const FilterConfig& config, const FilterEnvironment&) {
  return std::make_unique<HeaderRulesFilter>(static_cast<const HeaderRulesConfig&>(config));
}

}  // namespace

extern const FilterRegistration kHeadersFilterRegistration = {
    .name = HeaderRulesFilter::kName,
    .parse = Parse,
    .create = Create,
};

}  // namespace sluice
