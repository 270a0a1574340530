// etcd v3 as its JSON gateway speaks it (etcd 3.4: POST /v3/kv/range, /v3/kv/put, /v3/kv/txn,
// /v3/watch, /v3/lease/grant, /v3/lease/keepalive, /v3/lease/revoke, /v3/auth/authenticate):
// the request bodies and the parsing of the replies, without any I/O. Keys and values travel
// base64-encoded; 64-bit numbers travel as JSON strings (proto3's JSON mapping) and are
// accepted as numbers too. Every parser treats its input as untrusted: a reply that is not
// what etcd sends is an error naming what is wrong, never a crash or a silent default.
#ifndef SLUICE_PROXY_FLEET_ETCD_PROTOCOL_H_
#define SLUICE_PROXY_FLEET_ETCD_PROTOCOL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice {

// The range_end that selects every key starting with `prefix`.
std::string EtcdPrefixEnd(std::string_view prefix);

struct EtcdKeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct EtcdRangeResult {
  int64_t revision = 0;  // the store's revision when it answered
  std::vector<EtcdKeyValue> kvs;
  int64_t count = 0;  // the keys in the range (all of them: a count_only range sends no kvs)
};

struct EtcdCompare {
  enum class Target : uint8_t { kCreateRevision, kModRevision, kValue };
  enum class Result : uint8_t { kEqual, kNotEqual };
  std::string key;
  Target target = Target::kModRevision;
  Result result = Result::kEqual;
  int64_t revision = 0;  // kCreateRevision, kModRevision
  std::string value;     // kValue
};

struct EtcdOp {
  enum class Kind : uint8_t { kPut, kDelete, kRange };
  Kind kind = Kind::kPut;
  std::string key;
  std::string value;        // kPut
  int64_t lease = 0;        // kPut: 0 for none
  std::string range_end;    // kDelete, kRange: empty for the one key
  bool count_only = false;  // kRange: the count of keys, without them
};

struct EtcdTxn {
  std::vector<EtcdCompare> compare;
  std::vector<EtcdOp> success;
  std::vector<EtcdOp> failure;
};

struct EtcdTxnResult {
  int64_t revision = 0;
  bool succeeded = false;
  std::vector<EtcdRangeResult> ranges;  // the range ops of the branch taken, in order
};

struct EtcdLease {
  int64_t id = 0;
  int64_t ttl_seconds = 0;  // 0 from a keep-alive: the lease is gone
};

struct EtcdWatchEvent {
  bool deleted = false;
  EtcdKeyValue kv;  // a deletion carries the key and its mod_revision only
};

struct EtcdWatchMessage {
  int64_t revision = 0;
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // > 0: the start revision was compacted away
  std::string cancel_reason;
  std::vector<EtcdWatchEvent> events;
};

// Request bodies.
std::string EtcdRangeBody(std::string_view key, std::string_view range_end);
std::string EtcdPutBody(std::string_view key, std::string_view value, int64_t lease);
std::string EtcdTxnBody(const EtcdTxn& txn);
std::string EtcdWatchBody(std::string_view key, std::string_view range_end, int64_t start_revision);
std::string EtcdLeaseGrantBody(int64_t ttl_seconds);
std::string EtcdLeaseIdBody(int64_t id);
std::string EtcdAuthBody(std::string_view user, std::string_view password);

// Replies. A non-200 reply goes to EtcdErrorStatus.
absl::StatusOr<EtcdRangeResult> ParseEtcdRangeReply(std::string_view body);
absl::StatusOr<int64_t> ParseEtcdPutReply(std::string_view body);  // the new revision
absl::StatusOr<EtcdTxnResult> ParseEtcdTxnReply(std::string_view body);
absl::StatusOr<EtcdLease> ParseEtcdLeaseGrantReply(std::string_view body);
absl::StatusOr<EtcdLease> ParseEtcdKeepAliveReply(std::string_view body);
absl::Status ParseEtcdRevokeReply(std::string_view body);
absl::StatusOr<std::string> ParseEtcdAuthReply(std::string_view body);  // the token
// What a non-200 reply means: Unauthenticated (code 16: a bad or expired token), NotFound
// (code 5), Unavailable (no leader, timeouts, a 5xx without a gRPC code), InvalidArgument,
// FailedPrecondition; the message is etcd's own.
absl::Status EtcdErrorStatus(int http_status, std::string_view body);
// The error for a gRPC status code other than 0 as etcd sets it (either API): the errors
// above, and `otherwise` for the other codes.
absl::Status EtcdCodeStatus(int64_t code, std::string message, absl::StatusCode otherwise);

// A watch reply is a stream of JSON objects, one per line: {"result": {...}} or
// {"error": {...}}. Feed() takes body bytes as they come and calls `on_message` for each
// complete object; an error ends the stream (the caller cancels it).
class EtcdWatchDecoder {
 public:
  using OnMessage = std::function<void(const EtcdWatchMessage&)>;
  static constexpr size_t kMaxMessage = 16 * 1024 * 1024;

  absl::Status Feed(std::string_view data, const OnMessage& on_message);

 private:
  std::string pending_;
};

absl::StatusOr<EtcdWatchMessage> ParseEtcdWatchMessage(std::string_view line);

}  // namespace sluice

#endif  // SLUICE_PROXY_FLEET_ETCD_PROTOCOL_H_
