// An etcd v3 client on the control loop. What a node does all the time, keeping its lease
// alive and watching, goes over etcd's native gRPC API (proxy/fleet/etcd_grpc_protocol.h): one
// HTTP/2 connection (proxy/fleet/grpc_channel.h) carrying one keep-alive stream and a stream
// per watch. The rest (range, txn, put, lease grant and revoke, authentication, and everything
// when options.grpc is off) goes over etcd's JSON gateway and sluice's own HTTP client
// (proxy/http/control_http_client.h).
//
// JSON calls go to the current endpoint over kept-alive connections (a few per endpoint, so a
// node's steady calls open none), and fail over to the next endpoint when it cannot be
// reached, times out or answers 5xx; a call whose reused connection the server had closed is
// sent again on another. A call that failed on every endpoint fails Unavailable, or
// DeadlineExceeded when an attempt timed out (here, or in etcd: "request timed out", "too many
// requests"): etcd may still carry it out. A JSON watch is one long-lived streamed reply on its
// own connection.
//
// gRPC: the connection goes to the current endpoint. When it is lost (closed, reset, GOAWAY,
// unacknowledged bytes past TCP_USER_TIMEOUT) the next endpoint is current, the keep-alives
// waiting for an answer are sent again there (each at most once per endpoint) and the watches
// end (the fleet watches again); the same when the JSON calls moved on from its endpoint. A
// keep-alive not answered within the timeout moves on the same way when nothing at all came
// from the endpoint since it was sent and another endpoint is left to try; otherwise it fails
// DeadlineExceeded while the connection stays: a slow etcd is not a lost one. etcd answers a
// stream's keep-alives one for one and in order, so an answer goes to the call it answers or,
// if that one timed out, nowhere. An endpoint that does not speak gRPC (an HTTP/1.1 proxy in
// front of the gateway) is used through its JSON gateway for a minute, then tried again; a
// watch that got nothing yet moves there unseen. Watches ask for a member with a leader (gRPC
// metadata hasleader): a member cut off from the rest of etcd ends them instead of going
// quiet.
//
// With a username, the client authenticates first (through the gateway) and sends etcd's
// token with every call and stream, authenticating again once when etcd says it expired.
//
// Endpoints are "http://HOST:PORT" or "https://HOST:PORT" with an IP address or a host name;
// a name is resolved when the client first connects to it, again after a connection to its
// address failed (its other addresses are tried in turn) and at least every 30 s. https
// verifies etcd's certificate against a CA bundle and may present a client certificate
// (etcd's --client-cert-auth).
//
// Callbacks run on the loop, never from inside the call that started them, and never after
// CancelAll() or the client's destruction. Control thread only.
#ifndef SLUICE_PROXY_FLEET_ETCD_CLIENT_H_
#define SLUICE_PROXY_FLEET_ETCD_CLIENT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/socket_address.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/timeout_queue.h"
#include "proxy/fleet/etcd_protocol.h"
#include "proxy/fleet/grpc_channel.h"
#include "proxy/http/control_http_client.h"
#include "proxy/http/url.h"
#include "proxy/tls/client_tls.h"

namespace sluice {

struct EtcdClientOptions {
  std::vector<HttpOrigin> endpoints;  // ParseHttpOrigin
  std::string username;               // empty: no authentication
  std::string password;
  absl::Duration timeout = absl::Seconds(2);  // per attempt
  ClientTlsContext tls;                       // for https:// endpoints
  bool grpc = true;                           // keep-alives and watches over gRPC
};

// What the client cost on the wire since it started.
struct EtcdClientStats {
  uint64_t requests = 0;     // unary calls and watches sent (a retry counts again); gRPC
                             // streams opened (the keep-alives on one are not counted)
  uint64_t connections = 0;  // opened
  uint64_t rx_bytes = 0;
  uint64_t tx_bytes = 0;
  uint64_t watch_messages = 0;
  uint64_t watch_events = 0;
  uint64_t tls_handshakes = 0;  // full
  uint64_t tls_resumed = 0;
  uint64_t keepalives_grpc = 0;  // keep-alives sent on the gRPC stream (again after a loss too)
  uint64_t keepalives_json = 0;  // through the gateway
};

class EtcdClient final : private GrpcChannel::Owner, private GrpcChannel::StreamHandler {
 public:
  template <typename T>
  using Done = std::function<void(absl::StatusOr<T>)>;
  using OnWatchMessage = std::function<void(const EtcdWatchMessage&)>;
  using OnWatchEnd = std::function<void(const absl::Status&)>;

  EtcdClient(LoopContext* context, EtcdClientOptions options);
  EtcdClient(const EtcdClient&) = delete;
  EtcdClient& operator=(const EtcdClient&) = delete;
  ~EtcdClient() override;

  void Range(const std::string& key, const std::string& range_end, Done<EtcdRangeResult> done);
  void Put(const std::string& key, const std::string& value, int64_t lease, Done<int64_t> done);
  void Txn(const EtcdTxn& txn, Done<EtcdTxnResult> done);
  void LeaseGrant(absl::Duration ttl, Done<EtcdLease> done);
  void LeaseKeepAlive(int64_t id, Done<EtcdLease> done);
  void LeaseRevoke(int64_t id, Done<bool> done);

  // Streams the changes of [key, range_end) from `start_revision` on. `on_end` runs once when
  // the stream ends for any reason (never after CancelWatch). Returns the watch's id.
  uint64_t Watch(const std::string& key, const std::string& range_end, int64_t start_revision,
                 OnWatchMessage on_message, OnWatchEnd on_end);
  void CancelWatch(uint64_t id);

  // Abandons every call and watch: no callback runs afterwards.
  void CancelAll();

  // The endpoint the next call goes to.
  const std::string& endpoint() const { return options_.endpoints[current_].url; }
  // Whether the next keep-alive or watch goes over gRPC (else the JSON gateway).
  bool grpc() const { return UseGrpc(); }
  EtcdClientStats stats() const;

 private:
  struct Call {
    std::string path;
    std::string body;
    std::function<void(absl::StatusOr<std::string>)> done;
    size_t attempts = 0;
    bool reauthenticated = false;
    std::string errors;      // one per failed endpoint, for the final message
    bool timed_out = false;  // an attempt timed out (here or in etcd): it may have been done
    ControlHttpRequest* request = nullptr;
  };
  struct WatchState {
    ControlHttpRequest* request = nullptr;
    GrpcStream* grpc = nullptr;  // over gRPC instead
    // gRPC: what was asked (to ask the gateway instead when the endpoint turns out to have no
    // gRPC), of which endpoint, and whether any message came.
    std::string key;
    std::string range_end;
    int64_t start_revision = 0;
    size_t endpoint = 0;
    bool heard = false;
    // Shared, so that a message handler may cancel the watch while the decoder is feeding it.
    std::shared_ptr<EtcdWatchDecoder> decoder = std::make_shared<EtcdWatchDecoder>();
    OnWatchMessage on_message;
    OnWatchEnd on_end;
  };

  // A keep-alive over gRPC, waiting for its answer.
  struct KeepAliveCall final : TimeoutTarget {
    KeepAliveCall(EtcdClient* owner, uint64_t call_id)
        : client(owner), id(call_id), timeout(this) {}
    void OnTimeout(Timeout*) override { client->KeepAliveTimedOut(id); }
    EtcdClient* client;
    uint64_t id;
    int64_t lease = 0;
    Done<EtcdLease> done;
    Timeout timeout;
    size_t attempts = 0;
    GrpcStream* stream = nullptr;  // the one it was last sent on, until that ends
    absl::Time sent;
  };

  // POSTs `body` to `path`; `done` gets the body of a 200 reply or the error.
  void Unary(std::string path, std::string body,
             std::function<void(absl::StatusOr<std::string>)> done);
  void Send(uint64_t id);
  void OnReply(uint64_t id, size_t endpoint, const ControlHttpReply& reply);
  void Fail(uint64_t id, absl::Status status);
  void Authenticate(uint64_t id);
  // `pooled`: over a kept-alive connection (unary calls), else its own (a watch).
  ControlHttpOptions Options(size_t endpoint, bool pooled);
  std::string Request(const std::string& path, const std::string& body, bool with_token,
                      bool pooled) const;
  void NextEndpoint(size_t failed);
  void EndWatch(uint64_t id, absl::Status status);
  // gRPC: whether it is the way now (on, the endpoint speaks it, a token if one is needed).
  bool UseGrpc() const;
  // The connection, opened to the current endpoint if there is none.
  GrpcChannel* Channel();
  GrpcChannel::Metadata Metadata(bool watch) const;
  void SendKeepAlive(KeepAliveCall* call);
  void KeepAliveTimedOut(uint64_t id);
  void KeepAliveJson(int64_t lease, Done<EtcdLease> done);
  void FailKeepAlive(uint64_t id, absl::Status status);
  uint64_t WatchJson(const std::string& key, const std::string& range_end, int64_t start_revision,
                     OnWatchMessage on_message, OnWatchEnd on_end);
  void StartWatchJson(uint64_t id, const std::string& key, const std::string& range_end,
                      int64_t start_revision);
  uint64_t WatchOf(const GrpcStream* stream) const;
  // GrpcChannel::Owner, ::StreamHandler
  void OnGrpcChannelDown(GrpcChannel* channel, const absl::Status& status, bool refused) override;
  void OnGrpcMessage(GrpcStream* stream, std::string_view message) override;
  void OnGrpcEnd(GrpcStream* stream, const absl::Status& status) override;

  // The address to connect to for `endpoint`: at once for an IP address or a fresh name,
  // after resolving otherwise. `done` does not run once the client is gone.
  void Address(size_t endpoint, std::function<void(absl::StatusOr<SocketAddress>)> done);
  // A connection to `endpoint` failed: a name's next address next time.
  void AddressFailed(size_t endpoint);

  LoopContext* context_;
  EtcdClientOptions options_;
  size_t current_ = 0;
  std::string token_;  // from /v3/auth/authenticate
  uint64_t next_id_ = 1;
  std::map<uint64_t, Call> calls_;
  std::map<uint64_t, WatchState> watches_;
  struct Resolved {
    std::vector<SocketAddress> addresses;
    size_t next = 0;
    absl::Time at = absl::InfinitePast();
  };
  std::vector<Resolved> resolved_;  // by endpoint
  // One per endpoint, for its https connections; they outlive every request (CancelAll).
  std::vector<std::unique_ptr<TlsSessionSlot>> tls_sessions_;
  ControlHttpCounters wire_;
  uint64_t watch_messages_ = 0;
  uint64_t watch_events_ = 0;
  uint64_t keepalives_grpc_ = 0;
  uint64_t keepalives_json_ = 0;
  ControlHttpPool pool_;
  GrpcChannel* channel_ = nullptr;  // null until needed and once it went down
  size_t channel_endpoint_ = 0;
  GrpcStream* keepalive_stream_ = nullptr;  // where new keep-alives go
  uint64_t channel_generation_ = 0;
  // Each keep-alive stream (the current one, and older ones until they end) and the calls sent
  // on it in order, answered or not: etcd answers them one for one, in order.
  std::map<const GrpcStream*, std::deque<uint64_t>> keepalive_sent_;
  std::map<uint64_t, std::unique_ptr<KeepAliveCall>> keepalives_;  // by id: in sending order
  std::vector<absl::Time> json_until_;  // by endpoint: no gRPC there before then
  // Outlives the client in resolutions still running in libuv's thread pool.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace sluice

#endif  // SLUICE_PROXY_FLEET_ETCD_CLIENT_H_
