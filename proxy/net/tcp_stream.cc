#include "proxy/net/tcp_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <cassert>
#include <cstring>

#include "absl/strings/str_format.h"

namespace sluice {

struct TcpStream::InFlight {
  uv_write_t request;
  std::string data;
};

// A TLS connection's state. It is the one that waits for the loop's handshake budget, so that
// a cleartext stream does not carry the waiter's list node (issue 24: idle memory).
struct TcpStream::Tls final : HandshakeWaiter {
  explicit Tls(TcpStream* s) : stream(s) {}
  void ResumeHandshake() override { stream->ResumeHandshake(); }
  void StopWaiting() { StopWaitingForBudget(); }
  TcpStream* stream;
  SSL* ssl = nullptr;
  const char* in = nullptr;  // ciphertext of the current read not yet taken by OpenSSL
  size_t in_len = 0;
  std::string plain_out;  // plaintext waiting for the handshake or for the next flush
  std::string held;       // a server handshake's bytes waiting for the loop's budget
  bool waited = false;    // the handshake waited for the budget at least once
  std::string error;
  bool established = false;
  bool notify_sent = false;  // our close_notify is queued
  ~Tls() override {
    StopWaiting();
    if (!ssl) return;
    // A client connection that got past its handshake without a TLS error ends quietly: freed
    // without a shutdown, OpenSSL would mark its session (a TLS 1.3 ticket kept for the next
    // connection to the endpoint) not resumable.
    if (established && error.empty() && !SSL_is_server(ssl)) {
      SSL_set_quiet_shutdown(ssl, 1);
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
  }
};

// The network side of a TLS stream's SSL object: reads take from the current read's buffer,
// writes append to the stream's output queue.
struct TlsBio {
  static BIO_METHOD* Method() {
    static BIO_METHOD* method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice-stream");
      BIO_meth_set_write(m, &TlsBio::Write);
      BIO_meth_set_read(m, &TlsBio::Read);
      BIO_meth_set_ctrl(m, &TlsBio::Ctrl);
      BIO_meth_set_create(m, [](BIO* b) {
        BIO_set_init(b, 1);
        return 1;
      });
      return m;
    }();
    return method;
  }
  static int Write(BIO* b, const char* data, int len) {
    auto* stream = static_cast<TcpStream*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    stream->PrepareOut();
    stream->out_.append(data, static_cast<size_t>(len));
    return len;
  }
  static int Read(BIO* b, char* data, int len) {
    auto* stream = static_cast<TcpStream*>(BIO_get_data(b));
    TcpStream::Tls& tls = *stream->tls_;
    BIO_clear_retry_flags(b);
    if (tls.in_len == 0) {
      BIO_set_retry_read(b);
      return -1;
    }
    size_t n = std::min(tls.in_len, static_cast<size_t>(len));
    std::memcpy(data, tls.in, n);
    tls.in += n;
    tls.in_len -= n;
    return static_cast<int>(n);
  }
  static long Ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }
};

TcpStream::TcpStream(LoopContext* context, Handler* handler)
    : context_(context), handler_(handler) {
  handle_.data = this;
}

TcpStream::~TcpStream() {
  // Only destroyed from OnStreamClosed (or never initialized): libuv is done with the handle.
  assert(!initialized_ || closing_);
}

void TcpStream::StartTls(SSL* ssl) {
  tls_ = std::make_unique<Tls>(this);
  tls_->ssl = ssl;
  BIO* bio = BIO_new(TlsBio::Method());
  BIO_set_data(bio, this);
  SSL_set_bio(ssl, bio, bio);  // one reference, owned by ssl
}

SSL* TcpStream::ssl() const { return tls_ ? tls_->ssl : nullptr; }

bool TcpStream::handshake_waited() const { return tls_ && tls_->waited; }

const std::string& TcpStream::tls_error() const {
  static const std::string kNone;
  return tls_ ? tls_->error : kNone;
}

std::string_view TcpStream::alpn() const {
  if (!tls_) return {};
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(tls_->ssl, &data, &len);
  return std::string_view(reinterpret_cast<const char*>(data), len);
}

void TcpStream::FailTls(int ret, const char* what) {
  int code = SSL_get_error(tls_->ssl, ret);
  long verify = SSL_get_verify_result(tls_->ssl);
  if (code == SSL_ERROR_SYSCALL || code == SSL_ERROR_SSL) {
    unsigned long e = ERR_peek_last_error();
    char buffer[256];
    ERR_error_string_n(e, buffer, sizeof(buffer));
    tls_->error = absl::StrFormat("TLS %s: %s", what, e != 0 ? buffer : "connection closed");
    if (verify != X509_V_OK && !tls_->established) {
      tls_->error += absl::StrFormat(" (certificate: %s)", X509_verify_cert_error_string(verify));
    }
  } else {
    tls_->error = absl::StrFormat("TLS %s: error %d", what, code);
  }
  ERR_clear_error();
  ReportError(UV_EPROTO);
}

bool TcpStream::AdvanceHandshake() {
  ERR_clear_error();
  int ret = SSL_do_handshake(tls_->ssl);
  if (HasOutput()) ScheduleFlush();
  if (ret == 1) {
    tls_->established = true;
    return true;
  }
  int code = SSL_get_error(tls_->ssl, ret);
  if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) FailTls(ret, "handshake");
  return false;
}

void TcpStream::OnTlsRead(const char* data, size_t len) {
  Tls& tls = *tls_;
  int64_t handshake_start = 0;  // set: this read's handshake work is charged to the budget
  if (!tls.established && context_->handshake_budget_enabled() && SSL_is_server(tls.ssl)) {
    if (!context_->HandshakeBudgetLeft() || tls.waiting_for_budget()) {
      // This iteration's handshakes are paid for: wait (not reading) for a later one.
      tls.held.append(data, len);
      tls.waited = true;
      StopReading();
      context_->WaitForHandshakeBudget(&tls);
      return;
    }
    handshake_start = SystemClock().MonotonicNanos();
  }
  tls.in = data;
  tls.in_len = len;
  if (!tls.established) {
    bool done = AdvanceHandshake();
    if (handshake_start != 0) {
      context_->ChargeHandshake(SystemClock().MonotonicNanos() - handshake_start);
    }
    if (!done) return;
    if (SSL_is_server(tls.ssl)) {
      handler_->OnTlsEstablished();
    } else {
      handler_->OnStreamConnected();
    }
    if (closing_ || failed_) return;
    ScheduleFlush();  // plaintext written before the handshake finished
  }
  // Everything this read decrypts to reaches the handler in one call, like a plain read.
  char* plain = context_->tls_buffer();
  size_t have = 0;
  bool peer_closed = false;
  for (;;) {
    size_t n = 0;
    ERR_clear_error();
    int ret = SSL_read_ex(tls.ssl, plain + have, LoopContext::kTlsBufferSize - have, &n);
    if (ret == 1) {
      have += n;
      if (have == LoopContext::kTlsBufferSize) {
        handler_->OnStreamRead(plain, have);
        if (closing_ || failed_) return;
        have = 0;
      }
      continue;
    }
    int code = SSL_get_error(tls.ssl, ret);
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) break;
    if (code == SSL_ERROR_ZERO_RETURN) {  // close_notify: the end of the peer's data
      peer_closed = true;
      break;
    }
    if (have > 0) handler_->OnStreamRead(plain, have);
    if (!closing_ && !failed_) FailTls(ret, "read");
    return;
  }
  if (HasOutput()) ScheduleFlush();  // post-handshake messages (tickets, key updates)
  if (have > 0) {
    handler_->OnStreamRead(plain, have);
    if (closing_ || failed_) return;
  }
  if (peer_closed && reading_) {
    StopReading();
    handler_->OnStreamEof();
  }
}

void TcpStream::ResumeHandshake() {
  if (closing_ || failed_ || !tls_) return;
  std::string held = std::move(tls_->held);
  tls_->held.clear();
  if (StartReading() != 0) {
    ReportError(UV_EIO);
    return;
  }
  OnTlsRead(held.data(), held.size());
}

void TcpStream::EncryptPending() {
  Tls& tls = *tls_;
  if (!tls.established) return;
  if (!tls.plain_out.empty()) {
    ERR_clear_error();
    size_t written = 0;
    int ret = SSL_write_ex(tls.ssl, tls.plain_out.data(), tls.plain_out.size(), &written);
    if (ret != 1) {
      FailTls(ret, "write");
      return;
    }
    // SSL_MODE_ENABLE_PARTIAL_WRITE is off: everything was taken.
    context_->GiveBuffer(std::move(tls.plain_out));
    tls.plain_out.clear();
  }
  if (shutdown_requested_ && !tls.notify_sent) {
    tls.notify_sent = true;
    ERR_clear_error();
    SSL_shutdown(tls.ssl);  // queues close_notify; the peer's is not awaited
    ERR_clear_error();
  }
}

bool TcpStream::HasOutput() const { return !out_.empty(); }

int TcpStream::Init() {
  int rc = uv_tcp_init(context_->loop(), &handle_);
  if (rc == 0) initialized_ = true;
  handle_.data = this;
  return rc;
}

int TcpStream::Connect(const sockaddr* address) {
  auto* request = new uv_connect_t;
  request->data = this;
  int rc = uv_tcp_connect(request, &handle_, address, [](uv_connect_t* req, int status) {
    auto* self = static_cast<TcpStream*>(req->data);
    delete req;
    if (status == UV_ECANCELED || self->closing_) return;
    if (status < 0) {
      self->ReportError(status);
    } else if (self->tls_) {
      // The handshake first; OnStreamConnected when it is done.
      if (self->StartReading() != 0) {
        self->ReportError(UV_EIO);
      } else {
        self->AdvanceHandshake();
      }
    } else {
      self->handler_->OnStreamConnected();
    }
    self->context_->RunAfterCallback();
  });
  if (rc != 0) delete request;
  return rc;
}

void TcpStream::TuneSocket(int not_sent_low_water) {
  uv_tcp_nodelay(&handle_, 1);
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&handle_), &fd) == 0) {
    setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &not_sent_low_water, sizeof(not_sent_low_water));
  }
}

int TcpStream::StartReading() {
  if (reading_ || closing_) return 0;
  int rc = uv_read_start(
      stream(),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        LoopContext* context = LoopContext::From(h->loop);
        *buf = uv_buf_init(context->read_buffer(), LoopContext::kReadBufferSize);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        static_cast<TcpStream*>(s->data)->OnRead(nread, buf);
        // Flush what this event produced now, not after every other event of this poll: the
        // response to one read goes out in one write without waiting behind the others.
        LoopContext::From(s->loop)->RunAfterCallback();
      });
  if (rc == 0) reading_ = true;
  return rc;
}

void TcpStream::StopReading() {
  if (!reading_) return;
  uv_read_stop(stream());
  reading_ = false;
}

void TcpStream::OnRead(ssize_t nread, const uv_buf_t* buf) {
  if (closing_) return;
  if (nread > 0) {
    if (tls_) {
      OnTlsRead(buf->base, static_cast<size_t>(nread));
      return;
    }
    handler_->OnStreamRead(buf->base, static_cast<size_t>(nread));
  } else if (nread == UV_EOF) {
    StopReading();
    handler_->OnStreamEof();
  } else if (nread < 0) {
    StopReading();
    ReportError(static_cast<int>(nread));
  }
}

void TcpStream::PrepareOut() {
  // The first byte to wait in the queue gets a pooled buffer (std::string's inline capacity
  // means it has none of its own).
  if (out_.empty()) out_ = context_->TakeBuffer();
}

void TcpStream::ReleaseOut() {
  context_->GiveBuffer(std::move(out_));
  out_.clear();
}

void TcpStream::Write(std::string_view data) {
  if (closing_ || failed_ || shutdown_requested_ || data.empty()) return;
  if (tls_) {
    std::string& plain = tls_->plain_out;
    if (plain.empty()) plain = context_->TakeBuffer();
    plain.append(data);
    ScheduleFlush();
    return;
  }
  PrepareOut();
  out_.append(data);
  ScheduleFlush();
}

void TcpStream::Write(std::string_view a, std::string_view b) {
  if (closing_ || failed_ || shutdown_requested_) return;
  if (tls_) {
    Write(a);
    Write(b);
    return;
  }
  PrepareOut();
  out_.reserve(out_.size() + a.size() + b.size());
  out_.append(a);
  out_.append(b);
  ScheduleFlush();
}

void TcpStream::Write(std::string_view a, std::string_view b, std::string_view c) {
  if (closing_ || failed_ || shutdown_requested_) return;
  if (tls_) {
    Write(a);
    Write(b);
    Write(c);
    return;
  }
  PrepareOut();
  out_.reserve(out_.size() + a.size() + b.size() + c.size());
  out_.append(a);
  out_.append(b);
  out_.append(c);
  ScheduleFlush();
}

size_t TcpStream::queued_bytes() const {
  return out_.size() + (writing_ ? in_flight_->data.size() : 0) +
         (tls_ ? tls_->plain_out.size() : 0);
}

void TcpStream::ScheduleFlush() {
  // TLS: plaintext is encrypted at flush time even while a write is in flight.
  if (!writing_ || tls_) context_->Schedule(this);
}

void TcpStream::RunDeferred() { Flush(); }

void TcpStream::Flush() {
  if (closing_ || failed_) return;
  if (tls_) {
    EncryptPending();
    if (failed_) return;
  }
  if (writing_) return;
  if (out_.empty()) {
    MaybeShutdown();
    return;
  }
  uv_buf_t buf = uv_buf_init(out_.data(), static_cast<unsigned int>(out_.size()));
  int n = uv_try_write(stream(), &buf, 1);
  if (n == static_cast<int>(out_.size())) {
    ReleaseOut();
    handler_->OnStreamDrained();
    MaybeShutdown();
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    ReportError(n);
    return;
  }
  if (n > 0) out_.erase(0, static_cast<size_t>(n));
  StartUvWrite();
}

void TcpStream::StartUvWrite() {
  if (!in_flight_) in_flight_ = std::make_unique<InFlight>();
  in_flight_->data.swap(out_);
  in_flight_->request.data = this;
  uv_buf_t buf =
      uv_buf_init(in_flight_->data.data(), static_cast<unsigned int>(in_flight_->data.size()));
  writing_ = true;
  int rc = uv_write(&in_flight_->request, stream(), &buf, 1, [](uv_write_t* req, int status) {
    LoopContext* context = LoopContext::From(req->handle->loop);
    static_cast<TcpStream*>(req->data)->OnWriteDone(status);
    if (status != UV_ECANCELED) context->RunAfterCallback();
  });
  if (rc != 0) {
    writing_ = false;
    ReportError(rc);
  }
}

void TcpStream::OnWriteDone(int status) {
  writing_ = false;
  if (closing_ || status == UV_ECANCELED) return;
  if (status < 0) {
    ReportError(status);
    return;
  }
  context_->GiveBuffer(std::move(in_flight_->data));
  in_flight_->data.clear();
  if (!out_.empty() || (tls_ && !tls_->plain_out.empty())) {
    Flush();
    return;
  }
  in_flight_.reset();  // idle connections keep no write request around
  handler_->OnStreamDrained();
  MaybeShutdown();
}

void TcpStream::ShutdownWrite() {
  if (closing_ || shutdown_requested_) return;
  shutdown_requested_ = true;
  ScheduleFlush();
}

void TcpStream::MaybeShutdown() {
  if (!shutdown_requested_ || shutdown_started_ || writing_ || !out_.empty() || closing_) return;
  if (tls_ && tls_->established && !tls_->notify_sent) {
    ScheduleFlush();  // close_notify first
    return;
  }
  shutdown_started_ = true;
  auto* request = new uv_shutdown_t;
  request->data = this;
  int rc = uv_shutdown(request, stream(), [](uv_shutdown_t* req, int status) {
    auto* self = static_cast<TcpStream*>(req->data);
    delete req;
    if (status < 0 && status != UV_ECANCELED && status != UV_ENOTCONN && !self->closing_) {
      self->ReportError(status);
    }
  });
  if (rc != 0) {
    delete request;
    if (rc != UV_ENOTCONN) ReportError(rc);
  }
}

void TcpStream::ReportError(int error) {
  if (failed_ || closing_) return;
  failed_ = true;
  handler_->OnStreamError(error);
}

void TcpStream::Close() {
  if (closing_) return;
  closing_ = true;
  CancelDeferred();
  if (tls_) tls_->StopWaiting();
  if (!initialized_) return;  // nothing for libuv to close; the owner frees itself
  reading_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), [](uv_handle_t* h) {
    auto* self = static_cast<TcpStream*>(h->data);
    self->handler_->OnStreamClosed();
  });
}

}  // namespace sluice
