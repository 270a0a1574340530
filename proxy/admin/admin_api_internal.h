// What the admin API's files share (proxy/admin/admin_api.cc, admin_history.cc): a handler's
// call and the helpers that shape its answer. Not part of the API: include admin_api.h.
#ifndef SLUICE_PROXY_ADMIN_ADMIN_API_INTERNAL_H_
#define SLUICE_PROXY_ADMIN_ADMIN_API_INTERNAL_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include "absl/status/status.h"
#include "proxy/admin/admin_api.h"

namespace sluice {

// One request on its way to a route's handler.
struct AdminApi::Call {
  const AdminRequest& request;
  std::vector<std::string_view> segments;
  const std::string& actor;  // the token's name, for the audit log
  Reply reply;
};

namespace admin_internal {

using nlohmann::json;

inline std::string Dump(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

inline AdminResponse Json(int status, const json& body) {
  AdminResponse r;
  r.status = status;
  r.body = Dump(body);
  return r;
}

inline AdminResponse Error(int status, std::string_view message) {
  return Json(status, json{{"error", message}, {"status", status}});
}

inline int HttpStatusOf(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

inline AdminResponse Error(const absl::Status& s) {
  return Error(HttpStatusOf(s), std::string(s.message()));
}

inline AdminResponse Text(int status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

}  // namespace admin_internal
}  // namespace sluice

#endif  // SLUICE_PROXY_ADMIN_ADMIN_API_INTERNAL_H_
