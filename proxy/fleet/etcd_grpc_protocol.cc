#include "proxy/fleet/etcd_grpc_protocol.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/strings.h"

namespace sluice {
namespace {

// Protobuf's wire types (a field's tag is its number << 3 | its wire type).
enum WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutTag(std::string* out, uint32_t field, WireType type) {
  PutVarint(out, (static_cast<uint64_t>(field) << 3) | type);
}

// proto3 leaves fields at their default out.
void PutInt64(std::string* out, uint32_t field, int64_t v) {
  if (v == 0) return;
  PutTag(out, field, kVarint);
  PutVarint(out, static_cast<uint64_t>(v));  // a negative one takes ten bytes, as protobuf says
}

void PutBytes(std::string* out, uint32_t field, std::string_view v) {
  if (v.empty()) return;
  PutTag(out, field, kLengthDelimited);
  PutVarint(out, v.size());
  out->append(v);
}

// Reads one message's fields in order. Next() is false at the end and on an error, which
// error() then names.
class ProtoReader {
 public:
  ProtoReader(std::string_view data, const char* what) : data_(data), what_(what) {}

  bool Next() {
    if (!error_.empty() || data_.empty()) return false;
    uint64_t tag = 0;
    if (!Varint(&tag)) return false;
    field_ = tag >> 3;
    type_ = static_cast<uint8_t>(tag & 7);
    if (field_ == 0 || field_ > (1u << 29) - 1) return Fail("a field numbered 0 or too high");
    switch (type_) {
      case kVarint:
        return Varint(&value_);
      case kFixed64:
        return Fixed(8);
      case kFixed32:
        return Fixed(4);
      case kLengthDelimited: {
        uint64_t size = 0;
        if (!Varint(&size)) return false;
        if (size > data_.size()) return Fail("a field longer than the message");
        bytes_ = data_.substr(0, size);
        data_.remove_prefix(size);
        return true;
      }
      default:  // groups (3, 4) are long gone from protobuf; 6 and 7 were never used
        return Fail(absl::StrFormat("field %d has wire type %d", field_, type_).c_str());
    }
  }

  uint64_t field() const { return field_; }
  // The field as an int64 or a bool; false (an error) when it is not a varint.
  bool Int64(int64_t* out) {
    if (type_ != kVarint) return Fail(absl::StrFormat("field %d is not a number", field_).c_str());
    *out = static_cast<int64_t>(value_);
    return true;
  }
  bool Bool(bool* out) {
    int64_t v = 0;
    if (!Int64(&v)) return false;
    *out = v != 0;
    return true;
  }
  bool Bytes(std::string_view* out) {
    if (type_ != kLengthDelimited) {
      return Fail(absl::StrFormat("field %d is not bytes", field_).c_str());
    }
    *out = bytes_;
    return true;
  }
  bool ok() const { return error_.empty(); }
  absl::Status status() const {
    if (ok()) return absl::OkStatus();
    return absl::InternalError(absl::StrFormat("etcd gRPC: %s: %s", what_, error_));
  }
  bool Fail(const char* why) {
    if (error_.empty()) error_ = why;
    data_ = {};
    return false;
  }

 private:
  bool Varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (data_.empty()) return Fail("the message ends inside a number");
      uint8_t byte = static_cast<uint8_t>(data_[0]);
      data_.remove_prefix(1);
      if (shift == 63 && byte > 1) return Fail("a number longer than 64 bits");
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (byte < 0x80) {
        *out = v;
        return true;
      }
    }
    return Fail("a number longer than ten bytes");
  }
  bool Fixed(size_t n) {
    if (data_.size() < n) return Fail("the message ends inside a fixed-size field");
    data_.remove_prefix(n);
    value_ = 0;  // sluice reads no fixed-size field of etcd's
    return true;
  }

  std::string_view data_;
  const char* what_;
  std::string error_;
  uint64_t field_ = 0;
  uint8_t type_ = 0;
  uint64_t value_ = 0;
  std::string_view bytes_;
};

// etcdserverpb.ResponseHeader: revision = 3 (cluster_id, member_id and raft_term unused).
bool ReadHeader(std::string_view message, int64_t* revision, ProtoReader* outer) {
  ProtoReader r(message, "a response header");
  while (r.Next()) {
    if (r.field() == 3 && !r.Int64(revision)) break;
  }
  if (!r.ok()) return outer->Fail(std::string(r.status().message()).c_str());
  return true;
}

// mvccpb.KeyValue: key = 1, create_revision = 2, mod_revision = 3, version = 4, value = 5,
// lease = 6.
absl::StatusOr<EtcdKeyValue> ReadKeyValue(std::string_view message) {
  ProtoReader r(message, "a key-value");
  EtcdKeyValue kv;
  std::string_view bytes;
  while (r.Next()) {
    switch (r.field()) {
      case 1:
        if (r.Bytes(&bytes)) kv.key = std::string(bytes);
        break;
      case 2:
        r.Int64(&kv.create_revision);
        break;
      case 3:
        r.Int64(&kv.mod_revision);
        break;
      case 4:
        r.Int64(&kv.version);
        break;
      case 5:
        if (r.Bytes(&bytes)) kv.value = std::string(bytes);
        break;
      case 6:
        r.Int64(&kv.lease);
        break;
      default:
        break;
    }
  }
  if (!r.ok()) return r.status();
  if (kv.key.empty()) return absl::InternalError("etcd gRPC: a key-value without a key");
  return kv;
}

// mvccpb.Event: type = 1 (PUT 0, DELETE 1), kv = 2 (prev_kv = 3 is not asked for).
absl::StatusOr<EtcdWatchEvent> ReadEvent(std::string_view message) {
  ProtoReader r(message, "a watch event");
  EtcdWatchEvent event;
  bool has_kv = false;
  while (r.Next()) {
    if (r.field() == 1) {
      int64_t type = 0;
      if (!r.Int64(&type)) break;
      if (type != 0 && type != 1) {
        r.Fail("an event type other than PUT or DELETE");
        break;
      }
      event.deleted = type == 1;
    } else if (r.field() == 2) {
      std::string_view kv;
      if (!r.Bytes(&kv)) break;
      absl::StatusOr<EtcdKeyValue> parsed = ReadKeyValue(kv);
      if (!parsed.ok()) return parsed.status();
      event.kv = *std::move(parsed);
      has_kv = true;
    }
  }
  if (!r.ok()) return r.status();
  if (!has_kv) return absl::InternalError("etcd gRPC: a watch event without a key-value");
  return event;
}

// grpc-message is percent-encoded; a malformed escape stays as it is.
std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    int hi = 0;
    int lo = 0;
    if (s[i] == '%' && i + 2 < s.size() && (hi = HexValue(s[i + 1])) >= 0 &&
        (lo = HexValue(s[i + 2])) >= 0) {
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::string EtcdGrpcKeepAliveRequest(int64_t lease) {
  std::string out;
  PutInt64(&out, 1, lease);  // LeaseKeepAliveRequest.ID
  return out;
}

std::string EtcdGrpcWatchCreateRequest(std::string_view key, std::string_view range_end,
                                       int64_t start_revision) {
  std::string create;
  PutBytes(&create, 1, key);
  PutBytes(&create, 2, range_end);
  PutInt64(&create, 3, start_revision);
  std::string out;
  // WatchRequest.create_request = 1, present even when empty (the oneof's choice).
  PutTag(&out, 1, kLengthDelimited);
  PutVarint(&out, create.size());
  out.append(create);
  return out;
}

absl::StatusOr<EtcdLease> ParseEtcdGrpcKeepAliveResponse(std::string_view message) {
  // LeaseKeepAliveResponse: header = 1, ID = 2, TTL = 3.
  ProtoReader r(message, "a keep-alive");
  EtcdLease lease;
  int64_t revision = 0;
  while (r.Next()) {
    std::string_view header;
    switch (r.field()) {
      case 1:
        if (r.Bytes(&header)) ReadHeader(header, &revision, &r);
        break;
      case 2:
        r.Int64(&lease.id);
        break;
      case 3:
        r.Int64(&lease.ttl_seconds);
        break;
      default:
        break;
    }
  }
  if (!r.ok()) return r.status();
  if (lease.id == 0) return absl::InternalError("etcd gRPC: a keep-alive without a lease ID");
  if (lease.ttl_seconds < 0) lease.ttl_seconds = 0;
  return lease;
}

absl::StatusOr<EtcdWatchMessage> ParseEtcdGrpcWatchResponse(std::string_view message) {
  // WatchResponse: header = 1, watch_id = 2, created = 3, canceled = 4, compact_revision = 5,
  // cancel_reason = 6, fragment = 7, events = 11.
  ProtoReader r(message, "a watch response");
  EtcdWatchMessage m;
  bool fragment = false;
  while (r.Next()) {
    std::string_view bytes;
    switch (r.field()) {
      case 1:
        if (r.Bytes(&bytes)) ReadHeader(bytes, &m.revision, &r);
        break;
      case 3:
        r.Bool(&m.created);
        break;
      case 4:
        r.Bool(&m.canceled);
        break;
      case 5:
        r.Int64(&m.compact_revision);
        break;
      case 6:
        if (r.Bytes(&bytes)) m.cancel_reason = std::string(bytes);
        break;
      case 7:
        r.Bool(&fragment);
        break;
      case 11: {
        if (!r.Bytes(&bytes)) break;
        absl::StatusOr<EtcdWatchEvent> event = ReadEvent(bytes);
        if (!event.ok()) return event.status();
        m.events.push_back(*std::move(event));
        break;
      }
      default:
        break;
    }
  }
  if (!r.ok()) return r.status();
  // Fragments come only to a watch that asked for them; sluice's never do.
  if (fragment) return absl::InternalError("etcd gRPC: a fragment of a watch response");
  if (m.compact_revision < 0) {
    return absl::InternalError("etcd gRPC: a negative compact revision");
  }
  return m;
}

std::string GrpcFrame(std::string_view message) {
  std::string out;
  out.reserve(5 + message.size());
  out.push_back('\0');
  uint32_t n = static_cast<uint32_t>(message.size());
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  out.append(message);
  return out;
}

absl::Status GrpcMessageReader::Feed(std::string_view data, const OnMessage& on_message) {
  while (!data.empty()) {
    // The 5-byte prefix first, then the message.
    if (pending_.size() < 5) {
      size_t take = std::min(5 - pending_.size(), data.size());
      pending_.append(data.substr(0, take));
      data.remove_prefix(take);
      if (pending_.size() < 5) break;
      if (pending_[0] != '\0') {
        return absl::InternalError("etcd gRPC: a compressed message, which was not asked for");
      }
    }
    uint64_t size = 0;
    for (int i = 1; i < 5; ++i) size = size << 8 | static_cast<uint8_t>(pending_[i]);
    if (size > kMaxMessage) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("etcd gRPC: a message of %d bytes (at most %d)", size, kMaxMessage));
    }
    size_t have = pending_.size() - 5;
    if (have == 0 && data.size() >= size) {
      // The whole message in this piece: no copy.
      std::string_view message = data.substr(0, size);
      data.remove_prefix(size);
      pending_.clear();
      on_message(message);
      continue;
    }
    size_t take = std::min<size_t>(size - have, data.size());
    pending_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (pending_.size() - 5 < size) break;
    std::string message = pending_.substr(5);
    pending_.clear();
    on_message(message);
  }
  return absl::OkStatus();
}

absl::Status EtcdGrpcStatus(std::string_view grpc_status, std::string_view grpc_message) {
  int64_t code = 0;
  std::string message =
      "etcd: " + (grpc_message.empty() ? std::string("gRPC status ") + std::string(grpc_status)
                                       : PercentDecode(grpc_message));
  if (!ParseInteger(grpc_status, &code) || code < 0 || code > 16) {
    return absl::UnknownError(message + " (not a gRPC status)");
  }
  if (code == 0) return absl::OkStatus();
  return EtcdCodeStatus(
      code, std::move(message),
      code == 4 ? absl::StatusCode::kDeadlineExceeded : absl::StatusCode::kUnavailable);
}

}  // namespace sluice
