// `sluicectl history`: the audit events of GET /v1/audit as a table, and what --since means.
#ifndef SLUICE_CTL_AUDIT_TABLE_H_
#define SLUICE_CTL_AUDIT_TABLE_H_

#include <ostream>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sluice {

// The query string of GET /v1/audit ("?since=...&limit=N", "" when neither is given). `since`:
// "seq:N", Unix seconds, an RFC 3339 time (passed on as given, percent-encoded), or a duration
// back from `now` ("10m", "2h": the Unix time that long ago). `limit`: 0 for the API's default.
absl::StatusOr<std::string> AuditQueryString(std::string_view since, int limit, absl::Time now);

// The events of one answer, oldest first: TIME ACTOR ACTION VERSION (a line each; a warning is
// marked with "!"). `header`: the column names first.
void RenderAuditEvents(const nlohmann::json& events, bool header, std::ostream& out);

}  // namespace sluice

#endif  // SLUICE_CTL_AUDIT_TABLE_H_
