#include "proxy/control_http_client.h"

#include "common/strings.h"
#include "proxy/tcp_stream.h"
#include "proxy/timeout_queue.h"

namespace sluice {

class ControlHttpRequest final : private TcpStream::Handler,
                                 private TimeoutTarget,
                                 private DeferredTask {
 public:
  ControlHttpRequest(LoopContext* context, std::string request, size_t max_reply,
                     ControlHttpCallback callback)
      : context_(context),
        stream_(context, this),
        timeout_(this),
        request_(std::move(request)),
        max_reply_(max_reply),
        callback_(std::move(callback)) {}

  void Start(const SocketAddress& address, absl::Duration timeout) {
    timeout_.Arm(context_->Timeouts(timeout));
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
    Finish(false, "cancelled");
  }

 private:
  ~ControlHttpRequest() override = default;

  void OnStreamConnected() override {
    stream_.StartReading();
    stream_.Write(request_);
  }
  void OnStreamRead(const char* data, size_t len) override {
    reply_.append(data, len);
    if (reply_.size() > max_reply_) Finish(false, "reply too large");
  }
  void OnStreamEof() override { Parse(); }
  void OnStreamError(int error) override { Finish(false, uv_strerror(error)); }
  void OnStreamDrained() override {}
  void OnStreamClosed() override { delete this; }
  void OnTimeout(Timeout*) override { Finish(false, "timed out"); }

  void Parse() {
    size_t head_end = reply_.find("\r\n\r\n");
    int status = 0;
    if (head_end == std::string::npos || reply_.size() < 12 || reply_.compare(0, 7, "HTTP/1.") ||
        !ParseInteger(std::string_view(reply_).substr(9, 3), &status)) {
      Finish(false, "not an HTTP reply");
      return;
    }
    result_.status = status;
    result_.body = reply_.substr(head_end + 4);
    Finish(true, "");
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
  Timeout timeout_;
  std::string request_;
  size_t max_reply_;
  ControlHttpCallback callback_;
  std::string reply_;
  ControlHttpReply result_;
  bool finished_ = false;
  bool no_handle_ = false;
};

ControlHttpRequest* StartControlHttpRequest(LoopContext* context, const SocketAddress& address,
                                            std::string request, absl::Duration timeout,
                                            size_t max_reply, ControlHttpCallback callback) {
  auto* r = new ControlHttpRequest(context, std::move(request), max_reply, std::move(callback));
  r->Start(address, timeout);
  return r;
}

void CancelControlHttpRequest(ControlHttpRequest* request) { request->Cancel(); }

}  // namespace sluice
