#include "proxy/dns/dns_exchange.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "proxy/event/timeout_queue.h"
#include "proxy/net/tcp_stream.h"

namespace sluice {

namespace {
constexpr size_t kMaxMessage = 65535;  // what a two-byte length can say
}  // namespace

class DnsExchange final : private TcpStream::Handler, private TimeoutTarget, private DeferredTask {
 public:
  DnsExchange(LoopContext* context, std::string message, DnsExchangeCallback callback)
      : context_(context),
        stream_(context, this),
        timeout_(this),
        message_(std::move(message)),
        callback_(std::move(callback)) {}

  void Start(const SocketAddress& server, absl::Duration timeout) {
    server_ = server.ToString();
    timeout_.Arm(context_->Timeouts(timeout));
    if (message_.size() > kMaxMessage) {
      no_handle_ = true;
      Finish(absl::InvalidArgumentError("the DNS message is too large"));
      return;
    }
    if (stream_.Init() != 0) {
      no_handle_ = true;
      Finish(absl::UnavailableError("cannot create a socket"));
      return;
    }
    if (stream_.Connect(server.sockaddr_ptr()) != 0) {
      Finish(absl::UnavailableError(absl::StrFormat("%s: connect failed", server_)));
    }
  }

  void Cancel() {
    callback_ = nullptr;
    Finish(absl::CancelledError("cancelled"));
  }

 private:
  ~DnsExchange() override = default;

  void OnStreamConnected() override {
    stream_.StartReading();
    std::string framed;
    framed.push_back(static_cast<char>(message_.size() >> 8));
    framed.push_back(static_cast<char>(message_.size() & 0xff));
    framed += message_;
    stream_.Write(framed);
    message_.clear();
  }
  void OnStreamRead(const char* data, size_t len) override {
    if (finished_) return;
    reply_.append(data, len);
    if (reply_.size() < 2) return;
    size_t want = (static_cast<uint8_t>(reply_[0]) << 8) | static_cast<uint8_t>(reply_[1]);
    if (reply_.size() > 2 + want) {
      Finish(absl::InvalidArgumentError(
          absl::StrFormat("%s sent more than one DNS message", server_)));
      return;
    }
    if (reply_.size() == 2 + want) Finish(reply_.substr(2));
  }
  void OnStreamEof() override {
    Finish(absl::UnavailableError(
        absl::StrFormat("%s closed the connection before its answer was whole", server_)));
  }
  void OnStreamError(int error) override {
    Finish(absl::UnavailableError(absl::StrFormat("%s: %s", server_, uv_strerror(error))));
  }
  void OnStreamDrained() override {}
  void OnStreamClosed() override { delete this; }
  void OnTimeout(Timeout*) override {
    Finish(absl::UnavailableError(absl::StrFormat("%s did not answer in time", server_)));
  }

  void Finish(absl::StatusOr<std::string> result) {
    if (finished_) return;
    finished_ = true;
    result_ = std::move(result);
    timeout_.Disarm();
    context_->Schedule(this);  // never from inside Start() or Cancel()
  }

  void RunDeferred() override {
    if (callback_) {
      DnsExchangeCallback callback = std::move(callback_);
      callback_ = nullptr;
      callback(std::move(result_));
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
  std::string message_;
  std::string reply_;
  std::string server_;
  DnsExchangeCallback callback_;
  absl::StatusOr<std::string> result_ = absl::UnknownError("");
  bool finished_ = false;
  bool no_handle_ = false;
};

DnsExchange* StartDnsExchange(LoopContext* context, const SocketAddress& server,
                              std::string message, absl::Duration timeout,
                              DnsExchangeCallback callback) {
  auto* exchange = new DnsExchange(context, std::move(message), std::move(callback));
  exchange->Start(server, timeout);
  return exchange;
}

void CancelDnsExchange(DnsExchange* exchange) { exchange->Cancel(); }

}  // namespace sluice
