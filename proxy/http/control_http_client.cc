#include "proxy/http/control_http_client.h"

#include <memory>

#include "proxy/event/timeout_queue.h"
#include "proxy/http/http1_parser.h"
#include "proxy/net/tcp_stream.h"

namespace sluice {

class ControlHttpRequest final : private TcpStream::Handler,
                                 private Http1Parser::Handler,
                                 private TimeoutTarget,
                                 private DeferredTask {
 public:
  ControlHttpRequest(LoopContext* context, std::string request, ControlHttpOptions options,
                     ControlHttpCallback callback)
      : context_(context),
        stream_(context, this),
        parser_(Http1Parser::Mode::kResponse, Limits(options.max_reply), this),
        timeout_(this),
        request_(std::move(request)),
        options_(std::move(options)),
        callback_(std::move(callback)) {
    // The requests sent here are never HEAD and never ask for an upgrade.
    parser_.ExpectResponse(HttpMethod::kGet, false);
  }

  void Start(const SocketAddress& address) {
    timeout_.Arm(context_->Timeouts(options_.timeout));
    if (stream_.Init() != 0) {
      // No handle was opened: report from a deferred task, then free without a close callback.
      no_handle_ = true;
      Finish(false, "cannot create a socket");
      return;
    }
    if (stream_.Connect(address.sockaddr_ptr()) != 0) Finish(false, "connect failed");
  }

  void Cancel() {
    callback_ = nullptr;
    options_.on_body = nullptr;
    Finish(false, "cancelled");
  }

 private:
  ~ControlHttpRequest() override = default;

  static Http1Limits Limits(size_t max_reply) {
    Http1Limits limits;
    limits.max_head_bytes = static_cast<uint32_t>(std::min<size_t>(max_reply, 64 * 1024));
    return limits;
  }

  bool streamed() const { return static_cast<bool>(options_.on_body); }

  // TcpStream::Handler
  void OnStreamConnected() override {
    stream_.StartReading();
    if (options_.tls) {
      tls_ = std::make_unique<ClientTlsSession>(options_.tls, options_.server_name);
      // Queued until the handshake is done.
      if (!tls_->Write(request_) || !tls_->Start()) {
        Finish(false, tls_->error().c_str());
        return;
      }
      stream_.Write(tls_->TakeOutput());
    } else {
      stream_.Write(request_);
    }
    request_.clear();
    request_.shrink_to_fit();
  }
  void OnStreamRead(const char* data, size_t len) override {
    if (finished_) return;
    if (tls_) {
      std::string plaintext;
      bool ok = tls_->Read(std::string_view(data, len), &plaintext);
      if (std::string out = tls_->TakeOutput(); !out.empty()) stream_.Write(out);
      if (!ok) {
        Finish(false, tls_->error().c_str());
        return;
      }
      if (plaintext.empty()) return;
      Outcome(parser_.Execute(plaintext.data(), plaintext.size()));
      return;
    }
    Http1Parser::Result r = parser_.Execute(data, len);
    Outcome(r);
  }
  void OnStreamEof() override {
    if (finished_) return;
    Outcome(parser_.Finish());
    if (!finished_) Finish(false, "the connection closed before the reply ended");
  }
  void OnStreamError(int error) override { Finish(false, uv_strerror(error)); }
  void OnStreamDrained() override {}
  void OnStreamClosed() override { delete this; }
  void OnTimeout(Timeout*) override { Finish(false, "timed out"); }

  // Http1Parser::Handler
  void OnHead() override {
    ResponseHeadPtr head = parser_.TakeResponse();
    result_.status = head->status;
    result_.headers = std::move(head->headers);
    deliver_ = streamed() && head->status >= 200 && head->status < 300;
    // A stream lives as long as the server keeps it open.
    if (deliver_) timeout_.Disarm();
  }
  void OnBody(std::string_view data) override {
    if (finished_) return;
    if (deliver_) {
      auto on_body = options_.on_body;  // the callback may cancel this request
      on_body(result_.status, data);
      return;
    }
    if (result_.body.size() + data.size() > options_.max_reply) {
      parser_.Stop();
      Finish(false, "reply too large");
      return;
    }
    result_.body.append(data);
  }
  void OnMessageComplete() override { Finish(true, ""); }

  void Outcome(const Http1Parser::Result& r) {
    if (r.outcome == Http1Parser::Outcome::kError) {
      Finish(false, r.reason && *r.reason ? r.reason : "not an HTTP reply");
    } else if (r.outcome == Http1Parser::Outcome::kUpgrade) {
      Finish(false, "an unexpected upgrade");
    }
  }

  void Finish(bool ok, const char* error) {
    if (finished_) return;
    finished_ = true;
    result_.ok = ok;
    if (!ok) result_.error = error;
    timeout_.Disarm();
    // Reported from a deferred task: never from inside Start() or a caller's Cancel().
    context_->Schedule(this);
  }

  void RunDeferred() override {
    options_.on_body = nullptr;
    if (callback_) {
      ControlHttpCallback callback = std::move(callback_);
      callback_ = nullptr;
      callback(result_);
    }
    if (no_handle_) {
      delete this;
      return;
    }
    if (!stream_.closing()) stream_.Close();  // frees this from the close callback
  }

  LoopContext* context_;
  TcpStream stream_;
  Http1Parser parser_;
  std::unique_ptr<ClientTlsSession> tls_;
  Timeout timeout_;
  std::string request_;
  ControlHttpOptions options_;
  ControlHttpCallback callback_;
  ControlHttpReply result_;
  bool deliver_ = false;
  bool finished_ = false;
  bool no_handle_ = false;
};

ControlHttpRequest* StartControlHttpRequest(LoopContext* context, const SocketAddress& address,
                                            std::string request, ControlHttpOptions options,
                                            ControlHttpCallback callback) {
  auto* r =
      new ControlHttpRequest(context, std::move(request), std::move(options), std::move(callback));
  r->Start(address);
  return r;
}

void CancelControlHttpRequest(ControlHttpRequest* request) { request->Cancel(); }

}  // namespace sluice
