#include "proxy/http/control_http_client.h"

#include <algorithm>
#include <memory>

#include "proxy/event/timeout_queue.h"
#include "proxy/http/http1_parser.h"
#include "proxy/net/tcp_stream.h"

namespace sluice {

class ControlHttpRequest final : private TcpStream::Handler,
                                 private Http1Parser::Handler,
                                 private TimeoutTarget,
                                 private DeferredTask {
  friend class ControlHttpPool;

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

  // With a pool: the connection belongs to it (a member) until it closes.
  void Join(ControlHttpPool* pool, std::string key) {
    pool_ = pool;
    key_ = std::move(key);
    pool_->members_.push_back(this);
  }
  // The pool is gone: close after the request in flight, if any.
  void Detach() { pool_ = nullptr; }

  void Start(const SocketAddress& address) {
    Count(&ControlHttpCounters::requests, 1);
    Count(&ControlHttpCounters::connections, 1);
    timeout_.Arm(context_->Timeouts(options_.timeout));
    if (stream_.Init() != 0) {
      // No handle was opened: report from a deferred task, then free without a close callback.
      no_handle_ = true;
      Finish(false, "cannot create a socket");
      return;
    }
    if (stream_.Connect(address.sockaddr_ptr()) != 0) Finish(false, "connect failed");
  }

  // The next request on an idle pooled connection.
  void Reuse(std::string request, ControlHttpOptions options, ControlHttpCallback callback) {
    idle_ = false;
    reused_ = true;
    received_ = false;
    keep_alive_ = false;
    deliver_ = false;
    finished_ = false;
    result_ = ControlHttpReply();
    options_ = std::move(options);
    callback_ = std::move(callback);
    parser_.set_limits(Limits(options_.max_reply));
    parser_.ResumeAfterMessage();
    parser_.ExpectResponse(HttpMethod::kGet, false);
    Count(&ControlHttpCounters::requests, 1);
    timeout_.Arm(context_->Timeouts(options_.timeout));
    Send(request);
  }

  void Cancel() {
    callback_ = nullptr;
    options_.on_body = nullptr;
    Finish(false, "cancelled");
  }

 private:
  ~ControlHttpRequest() override {
    if (pool_) pool_->Forget(this);
  }

  void Count(uint64_t ControlHttpCounters::*field, uint64_t n) {
    if (options_.counters && !idle_) options_.counters->*field += n;
  }

  void Send(std::string_view bytes) {
    if (tls_) {
      if (!tls_->Write(bytes)) {
        Finish(false, tls_->error().c_str());
        return;
      }
      std::string out = tls_->TakeOutput();
      Count(&ControlHttpCounters::tx_bytes, out.size());
      stream_.Write(out);
      return;
    }
    Count(&ControlHttpCounters::tx_bytes, bytes.size());
    stream_.Write(bytes);
  }

  // An idle pooled connection that the server closed, that timed out or that got bytes
  // nobody asked for.
  void CloseIdle() {
    if (pool_) pool_->Forget(this);
    pool_ = nullptr;
    timeout_.Disarm();
    if (!stream_.closing()) stream_.Close();
  }

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
      tls_ = std::make_unique<ClientTlsSession>(options_.tls, options_.server_name,
                                                options_.tls_session);
      // Queued until the handshake is done.
      if (!tls_->Write(request_) || !tls_->Start()) {
        Finish(false, tls_->error().c_str());
        return;
      }
      std::string out = tls_->TakeOutput();
      Count(&ControlHttpCounters::tx_bytes, out.size());
      stream_.Write(out);
    } else {
      Count(&ControlHttpCounters::tx_bytes, request_.size());
      stream_.Write(request_);
    }
    request_.clear();
    request_.shrink_to_fit();
  }
  void OnStreamRead(const char* data, size_t len) override {
    if (idle_) {
      // TLS 1.3 session tickets may arrive after the reply; anything else is unexpected.
      std::string plaintext;
      if (!tls_ || !tls_->Read(std::string_view(data, len), &plaintext) || !plaintext.empty()) {
        CloseIdle();
      }
      return;
    }
    if (finished_) return;
    Count(&ControlHttpCounters::rx_bytes, len);
    if (tls_) {
      std::string plaintext;
      bool ok = tls_->Read(std::string_view(data, len), &plaintext);
      if (std::string out = tls_->TakeOutput(); !out.empty()) stream_.Write(out);
      if (!ok) {
        Finish(false, tls_->error().c_str());
        return;
      }
      if (tls_->established() && !handshake_counted_) {
        handshake_counted_ = true;
        Count(tls_->resumed() ? &ControlHttpCounters::tls_resumed
                              : &ControlHttpCounters::tls_handshakes,
              1);
      }
      if (plaintext.empty()) return;
      received_ = true;
      Outcome(parser_.Execute(plaintext.data(), plaintext.size()), plaintext.size());
      return;
    }
    received_ = true;
    Outcome(parser_.Execute(data, len), len);
  }
  void OnStreamEof() override {
    if (idle_) {
      CloseIdle();
      return;
    }
    if (finished_) return;
    Outcome(parser_.Finish(), 0);
    if (!finished_) Finish(false, "the connection closed before the reply ended");
  }
  void OnStreamError(int error) override {
    if (idle_) {
      CloseIdle();
      return;
    }
    Finish(false, uv_strerror(error));
  }
  void OnStreamDrained() override {}
  void OnStreamClosed() override { delete this; }
  void OnTimeout(Timeout*) override {
    if (idle_) {
      CloseIdle();
      return;
    }
    result_.timed_out = true;
    Finish(false, "timed out");
  }

  // Http1Parser::Handler
  void OnHead() override {
    ResponseHeadPtr head = parser_.TakeResponse();
    result_.status = head->status;
    result_.headers = std::move(head->headers);
    keep_alive_ = head->keep_alive;
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

  void Outcome(const Http1Parser::Result& r, size_t len) {
    // Bytes after the reply that nobody asked for: the connection is not used again.
    if (r.outcome == Http1Parser::Outcome::kMessageComplete && r.consumed < len) {
      trailing_bytes_ = true;
    }
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
    result_.reused = reused_;
    result_.received = received_;
    if (!ok) result_.error = error;
    timeout_.Disarm();
    // Reported from a deferred task: never from inside Start() or a caller's Cancel().
    context_->Schedule(this);
  }

  void RunDeferred() override {
    bool reusable =
        result_.ok && keep_alive_ && !trailing_bytes_ && pool_ && !streamed() && !no_handle_;
    options_.on_body = nullptr;
    // Taken out first: the connection is parked (or closed) before the callback runs, so that
    // a request the callback starts can reuse it, and may reset this object's reply meanwhile.
    ControlHttpCallback callback = std::move(callback_);
    callback_ = nullptr;
    ControlHttpReply result = std::move(result_);
    if (no_handle_) {
      if (callback) callback(result);
      delete this;
      return;
    }
    if (reusable && !stream_.closing() && pool_->Park(key_, this)) {
      idle_ = true;
      options_.counters = nullptr;
      timeout_.Arm(context_->Timeouts(pool_->idle_timeout_));
    } else {
      if (pool_) pool_->Forget(this);
      pool_ = nullptr;
      if (!stream_.closing()) stream_.Close();  // frees this from the close callback, later
    }
    // Nothing of this object is touched from here on.
    if (callback) callback(result);
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
  ControlHttpPool* pool_ = nullptr;
  std::string key_;  // in the pool
  bool deliver_ = false;
  bool finished_ = false;
  bool no_handle_ = false;
  bool keep_alive_ = false;  // the reply allows another request on the connection
  bool idle_ = false;        // waiting in the pool
  bool reused_ = false;      // served a request before this one
  bool received_ = false;    // a byte of this reply arrived
  bool handshake_counted_ = false;
  bool trailing_bytes_ = false;  // after the reply, in the same read
};

ControlHttpPool::~ControlHttpPool() {
  CloseAll();
  std::vector<ControlHttpRequest*> members;
  members.swap(members_);
  for (ControlHttpRequest* r : members) r->Detach();
}

void ControlHttpPool::CloseAll() {
  std::vector<std::pair<std::string, ControlHttpRequest*>> idle;
  idle.swap(idle_);
  for (auto& [key, r] : idle) r->CloseIdle();
}

std::string ControlHttpPool::Key(const SocketAddress& address, const std::string& server_name,
                                 bool tls) {
  return tls ? address.ToString() + " tls " + server_name : address.ToString();
}

bool ControlHttpPool::Park(const std::string& key, ControlHttpRequest* connection) {
  size_t same = 0;
  for (const auto& [k, r] : idle_) same += k == key;
  if (same >= max_idle_) return false;
  idle_.emplace_back(key, connection);
  return true;
}

ControlHttpRequest* ControlHttpPool::Take(const std::string& key) {
  // The newest: the one least likely to have been closed by the server meanwhile.
  for (size_t i = idle_.size(); i-- > 0;) {
    if (idle_[i].first != key) continue;
    ControlHttpRequest* r = idle_[i].second;
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
    return r;
  }
  return nullptr;
}

void ControlHttpPool::Forget(ControlHttpRequest* connection) {
  idle_.erase(std::remove_if(idle_.begin(), idle_.end(),
                             [connection](const auto& e) { return e.second == connection; }),
              idle_.end());
  members_.erase(std::remove(members_.begin(), members_.end(), connection), members_.end());
}

ControlHttpRequest* StartControlHttpRequest(LoopContext* context, const SocketAddress& address,
                                            std::string request, ControlHttpOptions options,
                                            ControlHttpCallback callback) {
  ControlHttpPool* pool = options.pool;
  std::string key;
  if (pool) {
    key = ControlHttpPool::Key(address, options.server_name, static_cast<bool>(options.tls));
    if (ControlHttpRequest* idle = pool->Take(key)) {
      idle->Reuse(std::move(request), std::move(options), std::move(callback));
      return idle;
    }
  }
  auto* r =
      new ControlHttpRequest(context, std::move(request), std::move(options), std::move(callback));
  if (pool) r->Join(pool, std::move(key));
  r->Start(address);
  return r;
}

void CancelControlHttpRequest(ControlHttpRequest* request) { request->Cancel(); }

}  // namespace sluice
