// A gRPC client connection on the control loop: one HTTP/2 connection (nghttp2; cleartext, or
// TLS offering h2 by ALPN) to one server, carrying long-lived bidirectional streams: the etcd
// client's lease keep-alive stream and its watches (proxy/fleet/etcd_client.h). Unary calls
// are not needed here.
//
// A stream is a method's path and its metadata; messages go out framed as gRPC frames them and
// come back whole, one callback each; the stream ends once, with the status of its trailers
// (grpc-status, grpc-message), with Unavailable when the server reset it or the connection was
// lost, or with the error of a message that did not decode. Streams may be opened before the
// connection is up: they go out once the server's SETTINGS arrived.
//
// The connection is given up (Unavailable, every stream ending with it) when it fails, closes,
// the server sends GOAWAY, or it is not up within the connect timeout (counted from Create, so
// a slow name lookup counts). "Refused" says the server was reached but does not speak gRPC
// over HTTP/2 (an HTTP/1.1 answer to the preface, no h2 by ALPN, an HTTP/2 answer that is not
// gRPC): the owner may then use etcd's JSON gateway instead.
//
// Lifetime: Create() allocates; the channel frees itself once its socket is closed, after it
// went down or was abandoned. The owner is told it went down (OnGrpcChannelDown, before the
// streams' ends) and must not use the channel afterwards. Callbacks run on the loop, never from
// inside Create, OpenStream or Send. Control thread only.
#ifndef SLUICE_PROXY_FLEET_GRPC_CHANNEL_H_
#define SLUICE_PROXY_FLEET_GRPC_CHANNEL_H_

#include <nghttp2/nghttp2.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/socket_address.h"
#include "proxy/event/loop_context.h"
#include "proxy/event/timeout_queue.h"
#include "proxy/fleet/etcd_grpc_protocol.h"
#include "proxy/http/control_http_client.h"
#include "proxy/net/tcp_stream.h"
#include "proxy/tls/client_tls.h"

namespace sluice {

class GrpcChannel;
struct GrpcStream;

struct GrpcChannelOptions {
  std::string name;       // the server as errors name it ("http://127.0.0.1:2379")
  std::string authority;  // :authority ("127.0.0.1:2379", "etcd.example:2379")
  // Set: TLS, the server's certificate checked against `server_name`, sessions resumed from
  // `tls_session` (which outlives the channel) when set.
  ClientTlsContext tls;
  std::string server_name;
  TlsSessionSlot* tls_session = nullptr;
  absl::Duration connect_timeout = absl::Seconds(2);  // TCP, TLS and the server's SETTINGS
  // TCP_USER_TIMEOUT: bytes sent and not acknowledged for this long end the connection. A
  // server host that vanished is found out even though a long-lived stream never times out;
  // a server process that is merely slow (its kernel still acknowledges) is not.
  absl::Duration user_timeout = absl::Seconds(10);
  ControlHttpCounters* counters = nullptr;  // set: outlives the channel
};

class GrpcChannel final : private TcpStream::Handler, private DeferredTask, private TimeoutTarget {
 public:
  class Owner {
   public:
    // The connection is gone (once, never after Abandon). `refused`: the server was reached
    // but does not speak gRPC.
    virtual void OnGrpcChannelDown(GrpcChannel* channel, const absl::Status& status,
                                   bool refused) = 0;

   protected:
    virtual ~Owner() = default;
  };
  class StreamHandler {
   public:
    // One whole message, valid during the call.
    virtual void OnGrpcMessage(GrpcStream* stream, std::string_view message) = 0;
    // The stream ended (once; not after CloseStream): the trailers' status (OK when the server
    // ended it without an error), or why not.
    virtual void OnGrpcEnd(GrpcStream* stream, const absl::Status& status) = 0;

   protected:
    virtual ~StreamHandler() = default;
  };
  using Metadata = std::vector<std::pair<std::string, std::string>>;

  // A channel that connects once given an address (Connect).
  static GrpcChannel* Create(LoopContext* context, GrpcChannelOptions options, Owner* owner);
  void Connect(const SocketAddress& address);
  // Gives the connection up as if it failed with `status`: the owner hears of it and every
  // stream ends.
  void Fail(const absl::Status& status);
  // Fail(), from a deferred task: the owner, which stopped using the channel, hears of it
  // later (or not at all, if it ignores channels it no longer holds).
  void Retire(absl::Status status);
  // The owner is going: no callback runs again (streams included); the channel closes.
  void Abandon();

  // A new stream on `path` with `metadata` (lower-case names). Null once the channel is down.
  GrpcStream* OpenStream(std::string_view path, const Metadata& metadata, StreamHandler* handler);
  // Queues one message on the stream (framed here).
  void Send(GrpcStream* stream, std::string_view message);
  // Ends the stream from this side (RST_STREAM CANCEL); its handler hears nothing more and
  // the pointer is not to be used again (nor after the handler heard the stream end).
  void CloseStream(GrpcStream* stream);

  // The server's SETTINGS arrived.
  bool ready() const { return ready_; }
  bool down() const { return down_; }
  // When bytes last came from the server (creation time before any).
  absl::Time last_read() const { return last_read_; }
  size_t streams() const { return streams_.size(); }

 private:
  friend struct GrpcChannelCallbacks;

  GrpcChannel(LoopContext* context, GrpcChannelOptions options, Owner* owner);
  ~GrpcChannel() override;

  // TcpStream::Handler
  void OnStreamRead(const char* data, size_t len) override;
  void OnStreamEof() override;
  void OnStreamError(int error) override;
  void OnStreamDrained() override;
  void OnStreamConnected() override;
  void OnStreamClosed() override;
  // DeferredTask: hand what nghttp2 queued to the socket.
  void RunDeferred() override;
  // TimeoutTarget: not up in time.
  void OnTimeout(Timeout* which) override;

  void Down(const absl::Status& status, bool refused);
  // Fail() from a deferred task: never from inside the owner's call.
  void FailLater(absl::Status status);
  void Submit(GrpcStream* stream);
  void StreamClosed(GrpcStream* stream, uint32_t error_code);
  // How a stream ended: reset with `error_code`, or by the server with its trailers.
  absl::Status EndStatus(const GrpcStream* stream, uint32_t error_code);
  void EndStream(GrpcStream* stream, const absl::Status& status);
  void ScheduleSend();
  void Count(uint64_t ControlHttpCounters::*field, uint64_t n) {
    if (options_.counters) options_.counters->*field += n;
  }

  LoopContext* context_;
  GrpcChannelOptions options_;
  Owner* owner_;
  TcpStream stream_;
  Timeout connect_timeout_;
  nghttp2_session* session_ = nullptr;
  std::vector<std::unique_ptr<GrpcStream>> streams_;
  absl::Time last_read_;
  absl::Status failure_;    // FailLater's, until the deferred task runs
  bool connected_ = false;  // TCP (and TLS) up: nghttp2's output may go
  bool ready_ = false;      // the server's SETTINGS arrived
  bool down_ = false;
  bool abandoned_ = false;
  bool first_read_ = true;
  bool handshake_counted_ = false;
  bool goaway_ = false;    // the server sent GOAWAY: given up after the read
  bool not_grpc_ = false;  // a response that is not gRPC: refused after the read
};

// One stream; the channel owns it.
struct GrpcStream {
  GrpcChannel* channel = nullptr;
  GrpcChannel::StreamHandler* handler = nullptr;  // null once ended or closed
  std::string path;
  GrpcChannel::Metadata metadata;
  int32_t id = -1;  // nghttp2's, once submitted
  std::string out;  // framed messages not yet taken by nghttp2
  size_t out_taken = 0;
  bool deferred = false;  // nghttp2 waits for more of `out`
  GrpcMessageReader reader;
  int http_status = 0;
  bool grpc_content = false;  // content-type application/grpc
  std::string grpc_status;
  std::string grpc_message;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_FLEET_GRPC_CHANNEL_H_
