#include "proxy/admin/admin_server.h"

#include <memory>

#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/strings.h"
#include "proxy/event/timeout_queue.h"
#include "proxy/http/http1_server_codec.h"
#include "proxy/net/listen_socket.h"
#include "proxy/net/tcp_stream.h"

namespace sluice {
namespace {

constexpr absl::Duration kHeadTimeout = absl::Seconds(10);
constexpr absl::Duration kIdleTimeout = absl::Seconds(60);
// From the end of a head to the end of its answer: the body, and the fleet's store taking a
// change, must fit in it.
constexpr absl::Duration kExchangeTimeout = absl::Seconds(30);
// Admin connections open at once; more are closed as they come.
constexpr size_t kMaxAdminConnections = 64;

}  // namespace

// One admin request: reads the body whole, asks the API, answers. Owned by the codec.
class AdminExchange final : public ServerStreamHandler {
 public:
  AdminExchange(AdminApi* api, ServerStream* stream, const SocketAddress& client)
      : api_(api), stream_(stream) {
    request_.client = client;
  }
  ~AdminExchange() override { *alive_ = false; }

  void OnRequestHead(RequestHeadPtr head) override {
    request_.method = head->method_text;
    request_.path = head->target;
    if (size_t q = request_.path.find('?'); q != std::string::npos) {
      request_.query = request_.path.substr(q + 1);
      request_.path.resize(q);
    }
    max_body_ = request_.path == "/v1/history" ? kMaxHistoryBody : kMaxAdminBody;
    request_.authorization = std::string(head->headers.Get("authorization").value_or(""));
    request_.host = std::string(head->headers.GetKind(HeaderKind::kHost).value_or(""));
    request_.if_none_match = std::string(head->headers.Get("if-none-match").value_or(""));
    head_only_ = head->method_text == "HEAD";
    // Who may ask is decided on the head: no body is read for a request that is refused.
    if (std::optional<AdminResponse> refused = api_->Screen(request_)) {
      if (head->has_body()) stream_->CloseAfterResponse();
      Answer(*refused);
      return;
    }
    if (head->has_body() && head->content_length > max_body_ &&
        head->framing == BodyFraming::kContentLength) {
      Answer(AdminResponse{413, "application/json", "{\"error\": \"body too large\"}\n", {}});
      return;
    }
    stream_->SendContinue();
    if (!head->has_body()) Finish();
  }
  void OnRequestBody(std::string_view data) override {
    if (done_) return;
    if (request_.body.size() + data.size() > max_body_) {
      Answer(AdminResponse{413, "application/json", "{\"error\": \"body too large\"}\n", {}});
      return;
    }
    request_.body.append(data);
  }
  void OnRequestEnd() override { Finish(); }
  void OnDownstreamDrained() override {}
  void OnStreamReset(StreamResetReason) override {
    done_ = true;
    stream_ = nullptr;
  }

 private:
  void Finish() {
    if (done_ || asked_) return;
    asked_ = true;
    // A change may wait for the fleet's store; the connection may be gone by then.
    std::shared_ptr<bool> alive = alive_;
    api_->Handle(request_, [this, alive](const AdminResponse& r) {
      if (*alive) Answer(r);
    });
  }
  void Answer(const AdminResponse& r) {
    if (done_ || !stream_) return;
    done_ = true;
    ResponseHeadPtr head = MakeResponseHead();
    head->status = r.status;
    head->headers.Add("Content-Type", r.content_type);
    bool cache_control = false;
    for (const auto& [name, value] : r.headers) {
      cache_control = cache_control || EqualsIgnoreCase(name, "Cache-Control");
      head->headers.Add(name, value);
    }
    if (!cache_control) head->headers.Add("Cache-Control", "no-store");
    // No answer of the API is to be read as anything but its declared type.
    if (!head->headers.Get("x-content-type-options")) {
      head->headers.Add("X-Content-Type-Options", "nosniff");
    }
    head->framing = BodyFraming::kContentLength;
    head->content_length = r.body.size();
    ServerStream* stream = stream_;
    stream_ = nullptr;
    if (r.status == 413) stream->CloseAfterResponse();
    if (head_only_) {
      stream->SendResponseHead(*head, true);
      return;
    }
    stream->SendResponseHead(*head, false);
    stream->SendResponseBody(r.body, true);
  }

  AdminApi* api_;
  ServerStream* stream_;
  AdminRequest request_;
  bool head_only_ = false;
  size_t max_body_ = kMaxAdminBody;
  bool done_ = false;
  bool asked_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class AdminConnection final : private TcpStream::Handler,
                              private CodecTransport,
                              private StreamFactory,
                              private Http1ServerCodec::Observer,
                              private TimeoutTarget {
 public:
  static void Accept(AdminServer* server, int fd, const sockaddr* peer) {
    auto* conn = new AdminConnection(server);
    conn->stream_.Init();
    if (conn->stream_.Adopt(fd) != 0) {
      conn->closed_ = true;
      conn->stream_.Close();
      return;
    }
    if (server->open_connections() >= kMaxAdminConnections && !server->CloseAnIdleConnection()) {
      LOG_WARN("admin: %d connections open, none idle; one more closed", kMaxAdminConnections);
      conn->closed_ = true;
      conn->stream_.Close();
      return;
    }
    if (const std::shared_ptr<const ServerTlsContext>& tls = server->tls()) {
      SSL* ssl = tls->NewSession();
      if (!ssl) {
        conn->closed_ = true;
        conn->stream_.Close();
        return;
      }
      // The handshake comes first; the codec sees only its plaintext. A failed handshake is a
      // stream error (OnStreamError), and a stalled one meets the head timeout.
      conn->stream_.StartTls(ssl);
      conn->info_.https = true;
    }
    server->Opened(conn);
    conn->info_.client = SocketAddress::FromSockaddr(peer);
    Http1ServerCodec::Options options;
    options.limits.max_body_bytes = kMaxHistoryBody;  // each exchange checks its own limit
    conn->codec_ = std::make_unique<Http1ServerCodec>(
        server->context(), static_cast<CodecTransport*>(conn), static_cast<StreamFactory*>(conn),
        static_cast<Http1ServerCodec::Observer*>(conn), options, &conn->info_);
    conn->OnCodecStateChanged();
    if (conn->stream_.StartReading() != 0) conn->Abort();
  }

  // Between requests (a keep-alive connection nobody uses).
  bool idle() const { return !closed_ && !lingering_ && timer_ == Timer::kIdle; }

  void Abort() override {
    if (closed_) return;
    closed_ = true;
    timeout_.Disarm();
    if (codec_) codec_->OnTransportError();
    stream_.Close();
  }

 private:
  explicit AdminConnection(AdminServer* server)
      : server_(server), stream_(server->context(), this), timeout_(this) {}
  ~AdminConnection() override { codec_.reset(); }

  // TcpStream::Handler
  void OnStreamRead(const char* data, size_t len) override {
    if (!closed_ && !lingering_) codec_->OnData(data, len);
  }
  void OnStreamEof() override {
    if (lingering_ || closed_) {
      Abort();
      return;
    }
    codec_->OnEof();
  }
  void OnStreamError(int) override { Abort(); }
  void OnStreamDrained() override {
    if (lingering_) {
      Abort();
      return;
    }
    if (codec_) codec_->OnTransportDrained();
  }
  void OnStreamClosed() override {
    server_->Closed(this);
    delete this;
  }
  // CodecTransport
  void Write(std::string_view a, std::string_view b, std::string_view c) override {
    stream_.Write(a, b, c);
  }
  size_t QueuedBytes() const override { return stream_.queued_bytes(); }
  void PauseReading() override { stream_.StopReading(); }
  void ResumeReading() override { stream_.StartReading(); }
  void ShutdownWrite() override { stream_.ShutdownWrite(); }
  void CloseAfterWrites() override {
    if (closed_ || lingering_) return;
    lingering_ = true;
    if (stream_.queued_bytes() == 0) {
      Abort();
      return;
    }
    Arm(Timer::kLinger, kHeadTimeout);
  }
  // StreamFactory
  std::unique_ptr<ServerStreamHandler> NewStream(ServerStream* stream) override {
    return std::make_unique<AdminExchange>(server_->api(), stream, info_.client);
  }
  // Http1ServerCodec::Observer
  void OnCodecStateChanged() override {
    if (closed_ || lingering_) return;
    switch (codec_->state()) {
      case Http1ServerCodec::State::kIdle:
        Arm(Timer::kIdle, kIdleTimeout);
        return;
      case Http1ServerCodec::State::kReadingHead:
        if (timer_ != Timer::kHead) Arm(Timer::kHead, kHeadTimeout);
        return;
      case Http1ServerCodec::State::kActive:
        // The body comes and the answer goes within kExchangeTimeout, or the connection closes.
        if (timer_ != Timer::kExchange) Arm(Timer::kExchange, kExchangeTimeout);
        return;
      case Http1ServerCodec::State::kClosed:
        return;
    }
  }
  enum class Timer { kNone, kIdle, kHead, kExchange, kLinger };
  void Arm(Timer timer, absl::Duration after) {
    timer_ = timer;
    timeout_.Arm(server_->context()->Timeouts(after));
  }
  // TimeoutTarget
  void OnTimeout(Timeout*) override {
    if (!closed_ && !lingering_ && timer_ == Timer::kHead) {
      codec_->OnHeadTimeout();  // a 408
      return;
    }
    Abort();
  }

  AdminServer* server_;
  TcpStream stream_;
  Timeout timeout_;
  DownstreamInfo info_;
  std::unique_ptr<Http1ServerCodec> codec_;
  Timer timer_ = Timer::kNone;  // what timeout_ is armed for
  bool lingering_ = false;
  bool closed_ = false;
};

AdminServer::AdminServer(LoopContext* context, AdminApi* api) : context_(context), api_(api) {}

AdminServer::~AdminServer() { Stop(); }

absl::Status AdminServer::Start(const SocketAddress& address, int inherited) {
  // Exclusive: a second process must not take a share of the requests and their tokens.
  absl::StatusOr<int> fd = inherited >= 0 ? absl::StatusOr<int>(inherited)
                                          : BindListenSocket(address, 128, PortSharing::kExclusive);
  if (!fd.ok()) {
    return absl::Status(
        fd.status().code(),
        absl::StrFormat("admin listener %s: %s", address.ToString(), fd.status().message()));
  }
  acceptor_ = new SocketAcceptor(context_, this, "admin " + address.ToString());
  int rc = acceptor_->Start(*fd, 128);
  if (rc != 0) {
    Stop();
    return absl::InternalError(
        absl::StrFormat("admin listener %s: %s", address.ToString(), uv_strerror(rc)));
  }
  sockaddr_storage bound;
  address_ = address;
  socklen_t len = sizeof(bound);
  if (getsockname(acceptor_->fd(), reinterpret_cast<sockaddr*>(&bound), &len) == 0) {
    address_ = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&bound));
  }
  return absl::OkStatus();
}

int AdminServer::fd() const { return acceptor_ ? acceptor_->fd() : -1; }

bool AdminServer::CloseAnIdleConnection() {
  // Idle ones hold a place for nothing: a load balancer's probe or an operator comes first.
  for (AdminConnection* c : connections_) {
    if (c->idle()) {
      c->Abort();  // leaves connections_ when its stream has closed
      return true;
    }
  }
  return false;
}

void AdminServer::OnAccepted(int fd, const sockaddr* peer) {
  AdminConnection::Accept(this, fd, peer);
}

void AdminServer::StopListening() {
  if (acceptor_) {
    acceptor_->CloseAndDelete();
    acceptor_ = nullptr;
  }
}

void AdminServer::Stop() {
  StopListening();
  std::set<AdminConnection*> open = connections_;
  for (AdminConnection* c : open) c->Abort();
}

}  // namespace sluice
