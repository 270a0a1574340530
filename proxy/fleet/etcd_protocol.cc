#include "proxy/fleet/etcd_protocol.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "common/base64.h"
#include "common/strings.h"

namespace sluice {
namespace {

using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string Int64Text(int64_t v) { return absl::StrFormat("%d", v); }

absl::StatusOr<json> ParseJson(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InternalError("etcd answered something that is not a JSON object");
  }
  return j;
}

// A proto3 int64: a JSON string of digits, or a number. Absent means 0.
absl::Status Int64Field(const json& j, const char* key, int64_t* out) {
  *out = 0;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (it->is_number_integer()) {
    *out = it->get<int64_t>();
    return absl::OkStatus();
  }
  if (it->is_string() && ParseInteger(it->get_ref<const std::string&>(), out)) {
    return absl::OkStatus();
  }
  return absl::InternalError(absl::StrFormat("etcd reply: \"%s\" is not an integer", key));
}

absl::Status BytesField(const json& j, const char* key, std::string* out) {
  out->clear();
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string() || !Base64Decode(it->get_ref<const std::string&>(), out)) {
    return absl::InternalError(absl::StrFormat("etcd reply: \"%s\" is not base64", key));
  }
  return absl::OkStatus();
}

absl::Status BoolField(const json& j, const char* key, bool* out) {
  *out = false;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) {
    return absl::InternalError(absl::StrFormat("etcd reply: \"%s\" is not a boolean", key));
  }
  *out = it->get<bool>();
  return absl::OkStatus();
}

const json* ObjectField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? &*it : nullptr;
}

absl::Status HeaderRevision(const json& j, int64_t* revision) {
  const json* header = ObjectField(j, "header");
  if (!header) return absl::InternalError("etcd reply: no header");
  if (absl::Status s = Int64Field(*header, "revision", revision); !s.ok()) return s;
  if (*revision <= 0) return absl::InternalError("etcd reply: no revision in the header");
  return absl::OkStatus();
}

absl::StatusOr<EtcdKeyValue> KeyValue(const json& j) {
  if (!j.is_object()) return absl::InternalError("etcd reply: a key-value is not an object");
  EtcdKeyValue kv;
  absl::Status s = BytesField(j, "key", &kv.key);
  if (s.ok()) s = BytesField(j, "value", &kv.value);
  if (s.ok()) s = Int64Field(j, "create_revision", &kv.create_revision);
  if (s.ok()) s = Int64Field(j, "mod_revision", &kv.mod_revision);
  if (s.ok()) s = Int64Field(j, "version", &kv.version);
  if (s.ok()) s = Int64Field(j, "lease", &kv.lease);
  if (!s.ok()) return s;
  if (kv.key.empty()) return absl::InternalError("etcd reply: a key-value without a key");
  return kv;
}

// The body of a range reply (top level, or a txn's response_range).
absl::Status RangeFrom(const json& j, EtcdRangeResult* out) {
  if (absl::Status s = Int64Field(j, "count", &out->count); !s.ok()) return s;
  if (out->count < 0) return absl::InternalError("etcd reply: \"count\" is negative");
  auto kvs = j.find("kvs");
  if (kvs == j.end() || kvs->is_null()) return absl::OkStatus();
  if (!kvs->is_array()) return absl::InternalError("etcd reply: \"kvs\" is not a list");
  for (const json& item : *kvs) {
    absl::StatusOr<EtcdKeyValue> kv = KeyValue(item);
    if (!kv.ok()) return kv.status();
    out->kvs.push_back(*std::move(kv));
  }
  return absl::OkStatus();
}

json OpJson(const EtcdOp& op) {
  switch (op.kind) {
    case EtcdOp::Kind::kPut: {
      json put{{"key", Base64Encode(op.key)}, {"value", Base64Encode(op.value)}};
      if (op.lease != 0) put["lease"] = Int64Text(op.lease);
      return json{{"request_put", put}};
    }
    case EtcdOp::Kind::kDelete: {
      json del{{"key", Base64Encode(op.key)}};
      if (!op.range_end.empty()) del["range_end"] = Base64Encode(op.range_end);
      return json{{"request_delete_range", del}};
    }
    case EtcdOp::Kind::kRange: {
      json range{{"key", Base64Encode(op.key)}};
      if (!op.range_end.empty()) range["range_end"] = Base64Encode(op.range_end);
      if (op.count_only) range["count_only"] = true;
      return json{{"request_range", range}};
    }
  }
  return json::object();
}

json CompareJson(const EtcdCompare& c) {
  json j{{"key", Base64Encode(c.key)},
         {"result", c.result == EtcdCompare::Result::kEqual ? "EQUAL" : "NOT_EQUAL"}};
  switch (c.target) {
    case EtcdCompare::Target::kCreateRevision:
      j["target"] = "CREATE";
      j["create_revision"] = Int64Text(c.revision);
      break;
    case EtcdCompare::Target::kModRevision:
      j["target"] = "MOD";
      j["mod_revision"] = Int64Text(c.revision);
      break;
    case EtcdCompare::Target::kValue:
      j["target"] = "VALUE";
      j["value"] = Base64Encode(c.value);
      break;
  }
  return j;
}

absl::StatusOr<EtcdLease> LeaseFrom(const json& j) {
  EtcdLease lease;
  absl::Status s = Int64Field(j, "ID", &lease.id);
  if (s.ok()) s = Int64Field(j, "TTL", &lease.ttl_seconds);
  if (!s.ok()) return s;
  return lease;
}

}  // namespace

std::string EtcdPrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  // The smallest key greater than every key with the prefix: drop trailing 0xff bytes and
  // increment the last one. An all-0xff (or empty) prefix means "to the end": "\0".
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::string(1, '\0');
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

std::string EtcdRangeBody(std::string_view key, std::string_view range_end) {
  json j{{"key", Base64Encode(key)}};
  if (!range_end.empty()) j["range_end"] = Base64Encode(range_end);
  return Dump(j);
}

std::string EtcdPutBody(std::string_view key, std::string_view value, int64_t lease) {
  json j{{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) j["lease"] = Int64Text(lease);
  return Dump(j);
}

std::string EtcdTxnBody(const EtcdTxn& txn) {
  json compare = json::array();
  for (const EtcdCompare& c : txn.compare) compare.push_back(CompareJson(c));
  json success = json::array();
  for (const EtcdOp& op : txn.success) success.push_back(OpJson(op));
  json failure = json::array();
  for (const EtcdOp& op : txn.failure) failure.push_back(OpJson(op));
  return Dump(json{{"compare", compare}, {"success", success}, {"failure", failure}});
}

std::string EtcdWatchBody(std::string_view key, std::string_view range_end,
                          int64_t start_revision) {
  json create{{"key", Base64Encode(key)}, {"progress_notify", true}};
  if (!range_end.empty()) create["range_end"] = Base64Encode(range_end);
  if (start_revision > 0) create["start_revision"] = Int64Text(start_revision);
  return Dump(json{{"create_request", create}});
}

std::string EtcdLeaseGrantBody(int64_t ttl_seconds) {
  return Dump(json{{"TTL", Int64Text(ttl_seconds)}});
}

std::string EtcdLeaseIdBody(int64_t id) { return Dump(json{{"ID", Int64Text(id)}}); }

std::string EtcdAuthBody(std::string_view user, std::string_view password) {
  return Dump(json{{"name", user}, {"password", password}});
}

absl::StatusOr<EtcdRangeResult> ParseEtcdRangeReply(std::string_view body) {
  absl::StatusOr<json> j = ParseJson(body);
  if (!j.ok()) return j.status();
  EtcdRangeResult r;
  if (absl::Status s = HeaderRevision(*j, &r.revision); !s.ok()) return s;
  if (absl::Status s = RangeFrom(*j, &r); !s.ok()) return s;
  return r;
}

absl::StatusOr<int64_t> ParseEtcdPutReply(std::string_view body) {
  absl::StatusOr<json> j = ParseJson(body);
  if (!j.ok()) return j.status();
  int64_t revision = 0;
  if (absl::Status s = HeaderRevision(*j, &revision); !s.ok()) return s;
  return revision;
}

absl::StatusOr<EtcdTxnResult> ParseEtcdTxnReply(std::string_view body) {
  absl::StatusOr<json> j = ParseJson(body);
  if (!j.ok()) return j.status();
  EtcdTxnResult r;
  if (absl::Status s = HeaderRevision(*j, &r.revision); !s.ok()) return s;
  if (absl::Status s = BoolField(*j, "succeeded", &r.succeeded); !s.ok()) return s;
  auto responses = j->find("responses");
  if (responses == j->end() || responses->is_null()) return r;
  if (!responses->is_array()) return absl::InternalError("etcd reply: \"responses\" is not a list");
  for (const json& op : *responses) {
    if (!op.is_object()) return absl::InternalError("etcd reply: a txn response is not an object");
    const json* range = ObjectField(op, "response_range");
    if (!range) continue;
    EtcdRangeResult result;
    result.revision = r.revision;
    if (absl::Status s = RangeFrom(*range, &result); !s.ok()) return s;
    r.ranges.push_back(std::move(result));
  }
  return r;
}

absl::StatusOr<EtcdLease> ParseEtcdLeaseGrantReply(std::string_view body) {
  absl::StatusOr<json> j = ParseJson(body);
  if (!j.ok()) return j.status();
  if (auto error = j->find("error");
      error != j->end() && error->is_string() && !error->get_ref<const std::string&>().empty()) {
    return absl::UnavailableError("etcd: " + error->get<std::string>());
  }
  absl::StatusOr<EtcdLease> lease = LeaseFrom(*j);
  if (lease.ok() && (lease->id == 0 || lease->ttl_seconds <= 0)) {
    return absl::InternalError("etcd reply: a lease grant without an ID and a TTL");
  }
  return lease;
}

absl::StatusOr<EtcdLease> ParseEtcdKeepAliveReply(std::string_view body) {
  // A one-message stream: {"result": {...}} followed by the end of the body.
  absl::StatusOr<json> j = ParseJson(StripWhitespace(body));
  if (!j.ok()) return j.status();
  if (const json* error = ObjectField(*j, "error")) {
    auto message = error->find("message");
    return absl::UnavailableError("etcd keep-alive: " +
                                  (message != error->end() && message->is_string()
                                       ? message->get<std::string>()
                                       : std::string("failed")));
  }
  const json* result = ObjectField(*j, "result");
  if (!result) return absl::InternalError("etcd reply: a keep-alive without a result");
  return LeaseFrom(*result);
}

absl::Status ParseEtcdRevokeReply(std::string_view body) {
  absl::StatusOr<json> j = ParseJson(body);
  if (!j.ok()) return j.status();
  int64_t revision = 0;
  return HeaderRevision(*j, &revision);
}

absl::StatusOr<std::string> ParseEtcdAuthReply(std::string_view body) {
  absl::StatusOr<json> j = ParseJson(body);
  if (!j.ok()) return j.status();
  auto token = j->find("token");
  if (token == j->end() || !token->is_string() || token->get_ref<const std::string&>().empty()) {
    return absl::InternalError("etcd reply: authentication gave no token");
  }
  return token->get<std::string>();
}

absl::Status EtcdErrorStatus(int http_status, std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  std::string message;
  int64_t code = -1;
  if (!j.is_discarded() && j.is_object()) {
    // Streams wrap their error in {"error": {...}}.
    const json* e = ObjectField(j, "error");
    const json& error = e ? *e : j;
    if (auto m = error.find("message"); m != error.end() && m->is_string()) {
      message = m->get<std::string>();
    }
    if (auto c = error.find("code"); c != error.end() && c->is_number_integer()) {
      code = c->get<int64_t>();
    }
  }
  if (message.empty()) message = absl::StrFormat("HTTP %d", http_status);
  return EtcdCodeStatus(code, "etcd: " + message,
                        http_status == 401 || http_status == 403
                            ? absl::StatusCode::kUnauthenticated
                            : absl::StatusCode::kUnavailable);
}

absl::Status EtcdCodeStatus(int64_t code, std::string message, absl::StatusCode otherwise) {
  switch (code) {
    case 3:   // INVALID_ARGUMENT
    case 11:  // OUT_OF_RANGE (a compacted revision)
      return absl::InvalidArgumentError(message);
    case 5:  // NOT_FOUND
      return absl::NotFoundError(message);
    case 7:   // PERMISSION_DENIED
    case 16:  // UNAUTHENTICATED
      return absl::UnauthenticatedError(message);
    case 9:  // FAILED_PRECONDITION
      return absl::FailedPreconditionError(message);
    default:
      return absl::Status(otherwise, message);
  }
}

absl::StatusOr<EtcdWatchMessage> ParseEtcdWatchMessage(std::string_view line) {
  absl::StatusOr<json> j = ParseJson(line);
  if (!j.ok()) return j.status();
  if (ObjectField(*j, "error")) return EtcdErrorStatus(200, line);
  const json* result = ObjectField(*j, "result");
  if (!result) return absl::InternalError("etcd watch: a message without a result");
  EtcdWatchMessage m;
  absl::Status s = HeaderRevision(*result, &m.revision);
  if (s.ok()) s = BoolField(*result, "created", &m.created);
  if (s.ok()) s = BoolField(*result, "canceled", &m.canceled);
  if (s.ok()) s = Int64Field(*result, "compact_revision", &m.compact_revision);
  if (!s.ok()) return s;
  if (auto reason = result->find("cancel_reason"); reason != result->end() && reason->is_string()) {
    m.cancel_reason = reason->get<std::string>();
  }
  auto events = result->find("events");
  if (events == result->end() || events->is_null()) return m;
  if (!events->is_array()) return absl::InternalError("etcd watch: \"events\" is not a list");
  for (const json& e : *events) {
    if (!e.is_object()) return absl::InternalError("etcd watch: an event is not an object");
    EtcdWatchEvent event;
    auto type = e.find("type");
    if (type != e.end() && !type->is_null()) {
      if (!type->is_string() || (type->get_ref<const std::string&>() != "PUT" &&
                                 type->get_ref<const std::string&>() != "DELETE")) {
        return absl::InternalError("etcd watch: an event type other than PUT or DELETE");
      }
      event.deleted = type->get_ref<const std::string&>() == "DELETE";
    }
    auto kv = e.find("kv");
    if (kv == e.end()) return absl::InternalError("etcd watch: an event without a key-value");
    absl::StatusOr<EtcdKeyValue> parsed = KeyValue(*kv);
    if (!parsed.ok()) return parsed.status();
    event.kv = *std::move(parsed);
    m.events.push_back(std::move(event));
  }
  return m;
}

absl::Status EtcdWatchDecoder::Feed(std::string_view data, const OnMessage& on_message) {
  while (!data.empty()) {
    size_t newline = data.find('\n');
    std::string_view piece = data.substr(0, newline);
    if (pending_.size() + piece.size() > kMaxMessage) {
      return absl::ResourceExhaustedError("etcd watch: a message larger than 16 MiB");
    }
    if (newline == std::string_view::npos) {
      pending_.append(piece);
      return absl::OkStatus();
    }
    data.remove_prefix(newline + 1);
    std::string line;
    line.swap(pending_);
    line.append(piece);
    if (StripWhitespace(line).empty()) continue;
    absl::StatusOr<EtcdWatchMessage> message = ParseEtcdWatchMessage(line);
    if (!message.ok()) return message.status();
    on_message(*message);
  }
  return absl::OkStatus();
}

}  // namespace sluice
