#include "ctl/audit_table.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "common/units.h"

namespace sluice {
namespace {

using nlohmann::json;

// Percent-encodes everything but unreserved characters (RFC 3986): a time's '+' and ':' reach
// the API as written.
std::string EncodeQueryValue(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (IsAsciiAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out += absl::StrFormat("%%%02X", static_cast<unsigned char>(c));
    }
  }
  return out;
}

std::string AuditText(const json& event, const char* key) {
  auto it = event.find(key);
  if (it == event.end() || it->is_null()) return "-";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

}  // namespace

absl::StatusOr<std::string> AuditQueryString(std::string_view since, int limit, absl::Time now) {
  std::string query;
  if (!since.empty()) {
    std::string value(since);
    // "10m": that long ago. Anything else goes to the API, which says what it takes.
    if (!since.starts_with("seq:") && !IsAsciiDigit(since.back()) &&
        since.find('-') == std::string_view::npos) {
      absl::StatusOr<absl::Duration> ago = ParseDurationText(since);
      if (!ago.ok() || *ago < absl::ZeroDuration()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "--since: seq:N, Unix seconds, an RFC 3339 time or a duration back (10m), got \"%s\"",
            since));
      }
      value = absl::StrFormat("%.3f", absl::ToDoubleSeconds(now - *ago - absl::UnixEpoch()));
    }
    query = "?since=" + EncodeQueryValue(value);
  }
  if (limit > 0) query += absl::StrFormat("%slimit=%d", query.empty() ? "?" : "&", limit);
  return query;
}

void RenderAuditEvents(const json& events, bool header, std::ostream& out) {
  if (header) {
    out << absl::StrFormat("%-6s %-24s %-14s %-9s %s\n", "SEQ", "TIME", "ACTOR", "VERSION",
                           "ACTION");
  }
  if (!events.is_array()) return;
  for (const json& e : events) {
    if (!e.is_object()) continue;
    std::string before = AuditText(e, "version_before");
    std::string after = AuditText(e, "version_after");
    std::string version = before == after ? before : before + "->" + after;
    out << absl::StrFormat("%-6s %-24s %-14s %-9s %s%s\n", AuditText(e, "seq"),
                           AuditText(e, "time"), AuditText(e, "actor"), version,
                           e.value("warning", false) ? "! " : "", AuditText(e, "action"));
  }
}

}  // namespace sluice
