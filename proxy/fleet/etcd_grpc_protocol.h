// etcd v3's native gRPC API, for the two calls a fleet node makes all the time: its lease's
// keep-alives (etcdserverpb.Lease/LeaseKeepAlive) and its watches (etcdserverpb.Watch/Watch),
// each a long-lived stream (proxy/fleet/grpc_channel.h carries them). Through the JSON gateway
// every keep-alive was a gateway request that opened a gRPC stream inside etcd of its own, and
// every event was turned into JSON for each watcher: at a thousand nodes that was most of etcd's
// CPU (issue 27).
//
// The messages are written and read here by hand, as protobuf (etcd 3.4's rpc.proto and
// kv.proto; only the fields sluice uses, unknown ones skipped as protobuf requires), and so is
// gRPC's framing of them. No I/O. Readers treat their input as untrusted: what etcd would not
// send is an error naming what is wrong, never a crash or a silent default.
#ifndef SLUICE_PROXY_FLEET_ETCD_GRPC_PROTOCOL_H_
#define SLUICE_PROXY_FLEET_ETCD_GRPC_PROTOCOL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proxy/fleet/etcd_protocol.h"

namespace sluice {

// The methods' paths.
inline constexpr std::string_view kEtcdLeaseKeepAlivePath = "/etcdserverpb.Lease/LeaseKeepAlive";
inline constexpr std::string_view kEtcdWatchPath = "/etcdserverpb.Watch/Watch";

// Request messages (protobuf, unframed).
std::string EtcdGrpcKeepAliveRequest(int64_t lease);  // LeaseKeepAliveRequest
// A WatchRequest carrying a WatchCreateRequest (start_revision 0: from now on).
std::string EtcdGrpcWatchCreateRequest(std::string_view key, std::string_view range_end,
                                       int64_t start_revision);

// Response messages (protobuf, unframed). A keep-alive's TTL is 0 when the lease is gone.
absl::StatusOr<EtcdLease> ParseEtcdGrpcKeepAliveResponse(std::string_view message);
absl::StatusOr<EtcdWatchMessage> ParseEtcdGrpcWatchResponse(std::string_view message);

// gRPC's length-prefixed message: a zero byte (not compressed) and the length, big-endian.
std::string GrpcFrame(std::string_view message);

// Splits a stream's DATA into messages as bytes come. A compressed message (sluice never asks
// for compression) or one over the size limit is an error and ends the stream.
class GrpcMessageReader {
 public:
  using OnMessage = std::function<void(std::string_view message)>;
  static constexpr size_t kMaxMessage = 16 * 1024 * 1024;

  // `on_message` may not destroy the reader.
  absl::Status Feed(std::string_view data, const OnMessage& on_message);
  // Bytes of a message not yet whole (a stream that ends with some is truncated).
  bool partial() const { return !pending_.empty(); }

 private:
  std::string pending_;
};

// What a stream's grpc-status (0..16) and grpc-message (percent-encoded) mean for etcd, as
// EtcdErrorStatus says for the gateway: OK, or an error whose message is "etcd: " and etcd's
// own. A status that is not a number is Unknown.
absl::Status EtcdGrpcStatus(std::string_view grpc_status, std::string_view grpc_message);

}  // namespace sluice

#endif  // SLUICE_PROXY_FLEET_ETCD_GRPC_PROTOCOL_H_
