#include "proxy/net/tcp_stream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cassert>
#include <cstring>

#include "absl/strings/str_format.h"

namespace sluice {

namespace {

// libuv's error codes are the negated errno on Linux.
int ErrnoToUv(int error) { return -error; }

// Reads per readable event at most (libuv's streams read 32 times): a fast sender cannot keep
// the loop from the other connections.
constexpr int kReadsPerEvent = 32;

// Sent bytes kept at the front of the output queue at most (its offset is 32 bits).
constexpr uint32_t kMaxSentAtFront = 1 << 20;

}  // namespace

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
  std::string plain_out;       // plaintext waiting for the handshake or for the next flush
  std::string held;            // a server handshake's bytes waiting for the loop's budget
  int64_t established_ns = 0;  // when the handshake finished (the loop's clock): a young
                               // server stream's reads are paid from the handshake budget
  bool waited = false;         // the handshake waited for the budget at least once
  bool charging = false;       // OnReadable charges this read's work: OnTlsRead does not again
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
    stream->out_->append(data, static_cast<size_t>(len));
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

TcpStream::TcpStream(LoopContext* context, Handler* handler) : handler_(handler) {
  std::memset(&poll_, 0, sizeof(poll_));
  poll_.loop = context->loop();  // uv_poll_init sets the same; context() reads it before
  poll_.data = this;
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
    tls_->established_ns = context()->clock().MonotonicNanos();
    return true;
  }
  int code = SSL_get_error(tls_->ssl, ret);
  if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) FailTls(ret, "handshake");
  return false;
}

void TcpStream::OnTlsRead(const char* data, size_t len) {
  Tls& tls = *tls_;
  int64_t handshake_start = 0;  // set: this read's handshake work is charged to the budget
  if (!tls.established && context()->handshake_budget_enabled() && SSL_is_server(tls.ssl)) {
    if (!context()->HandshakeBudgetLeft() || tls.waiting_for_budget()) {
      // This iteration's handshakes are paid for: wait (not reading) for a later one.
      tls.held.append(data, len);
      tls.waited = true;
      StopReading();
      context()->WaitForHandshakeBudget(&tls);
      return;
    }
    if (!tls.charging) handshake_start = SystemClock().MonotonicNanos();
  }
  tls.in = data;
  tls.in_len = len;
  if (!tls.established) {
    bool done = AdvanceHandshake();
    if (handshake_start != 0) {
      context()->ChargeHandshake(SystemClock().MonotonicNanos() - handshake_start);
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
  char* plain = context()->tls_buffer();
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
  if (budget_paused_) {  // a young stream's read that waited: nothing of it was read yet
    budget_paused_ = false;
    UpdatePoll();
    if (tls_->held.empty()) {
      if (reading_) OnReadable();
      return;
    }
  }
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
    context()->GiveBuffer(std::move(tls.plain_out));
    tls.plain_out.clear();
  }
  if (shutdown_requested_ && !tls.notify_sent) {
    tls.notify_sent = true;
    ERR_clear_error();
    SSL_shutdown(tls.ssl);  // queues close_notify; the peer's is not awaited
    ERR_clear_error();
  }
}

bool TcpStream::HasOutput() const { return out_size() > 0; }

int TcpStream::Init() {
  initialized_ = true;
  return 0;
}

int TcpStream::Adopt(int fd) {
  int rc = WatchSocket(fd);
  if (rc != 0) return rc;
  UpdatePoll();                                // reading asked for before
  if (HasOutput()) context()->Schedule(this);  // written before
  return 0;
}

int TcpStream::WatchSocket(int fd) {
  assert(initialized_ && !polling_);
  if (closing_) {
    ::close(fd);
    return UV_ECANCELED;
  }
  int rc = uv_poll_init_socket(context()->loop(), &poll_, fd);
  if (rc != 0) {
    ::close(fd);
    return rc;
  }
  poll_.data = this;
  polling_ = true;
  return 0;
}

int TcpStream::fd() const {
  uv_os_fd_t fd = -1;
  if (!polling_ || closing_ || uv_fileno(reinterpret_cast<const uv_handle_t*>(&poll_), &fd) != 0) {
    return -1;
  }
  return fd;
}

int TcpStream::Connect(const sockaddr* address) {
  if (!initialized_ || polling_ || closing_) return UV_EINVAL;
  socklen_t len = address->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  int fd = ::socket(address->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoToUv(errno);
  int rc = WatchSocket(fd);
  if (rc != 0) return rc;
  do {
    rc = ::connect(fd, address, len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EINPROGRESS) {
    // Refused at once (loopback can): reported like a refusal that takes a round trip, from
    // after this call, as libuv does.
    if (errno != ECONNREFUSED) return ErrnoToUv(errno);
    refused_ = true;
    context()->Schedule(this);
    return 0;
  }
  connecting_ = true;
  UpdatePoll();
  return 0;
}

void TcpStream::OnConnectDone(int error) {
  connecting_ = false;
  if (error != 0) {
    UpdatePoll();
    ReportError(error);
    return;
  }
  if (tls_) {
    // The handshake first; OnStreamConnected when it is done.
    reading_ = true;
    UpdatePoll();
    AdvanceHandshake();
    return;
  }
  // The owner starts reading from here, usually: the poll changes once, not twice.
  handler_->OnStreamConnected();
  UpdatePoll();
  if (HasOutput() || shutdown_requested_) ScheduleFlush();  // written while connecting
}

int TcpStream::SocketError() const {
  int error = 0;
  socklen_t len = sizeof(error);
  if (getsockopt(fd(), SOL_SOCKET, SO_ERROR, &error, &len) != 0) return ErrnoToUv(errno);
  return ErrnoToUv(error);
}

void TcpStream::TuneSocket(int not_sent_low_water) {
  int socket = fd();
  if (socket < 0) return;
  int one = 1;
  setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(socket, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &not_sent_low_water,
             sizeof(not_sent_low_water));
}

void TcpStream::UpdatePoll() {
  if (!polling_ || closing_) return;
  int want = 0;
  if (!failed_) {  // a failed stream waits for nothing: the owner closes it
    if (reading_ && !budget_paused_) want |= UV_READABLE;
    if (writing_ || connecting_) want |= UV_WRITABLE;
  }
  if (want == events_) return;
  events_ = static_cast<uint8_t>(want);
  // Every change costs the loop an epoll_ctl or two: it happens when a connection starts or
  // stops waiting for the kernel's room or for its peer's bytes, not per request.
  if (want == 0) {
    uv_poll_stop(&poll_);
    return;
  }
  int rc = uv_poll_start(&poll_, want, [](uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<TcpStream*>(handle->data);
    self->OnPoll(status, events);
    // Flush what this event produced now, not after every other event of this poll: the
    // response to one read goes out in one write without waiting behind the others.
    LoopContext::From(handle->loop)->RunAfterCallback();
  });
  if (rc != 0) {
    events_ = 0;
    ReportError(rc);
  }
}

void TcpStream::OnPoll(int status, int events) {
  if (closing_) return;
  if (status < 0) {
    // A socket error (libuv's poll handle says EBADF for POLLERR and stops watching). As
    // libuv's own streams did: what the peer sent before it is read, and what waits is
    // written, and either meets the error; a stream that read the peer's end and has nothing
    // to write reports nothing (its owner has the end).
    events_ = 0;
    if (connecting_) {
      int error = SocketError();
      OnConnectDone(error != 0 ? error : status);
      return;
    }
    if (reading_) OnReadable(/*to_the_end=*/true);
    if (closing_ || failed_) return;
    if (writing_) OnWritable();
    if (closing_ || failed_) return;
    if (!reading_ && !writing_) {
      UpdatePoll();
      return;
    }
    int error = SocketError();
    ReportError(error != 0 ? error : status);
    return;
  }
  if (connecting_) {
    if (events & UV_WRITABLE) OnConnectDone(SocketError());
    return;
  }
  if ((events & UV_READABLE) && reading_) OnReadable();
  if (closing_ || failed_) return;
  if ((events & UV_WRITABLE) && writing_) OnWritable();
}

int TcpStream::StartReading() {
  if (reading_ || closing_) return 0;
  reading_ = true;
  if (!connecting_) UpdatePoll();
  return 0;
}

void TcpStream::StopReading() {
  if (!reading_) return;
  reading_ = false;
  UpdatePoll();
}

bool TcpStream::young_server() const {
  if (!tls_) return false;
  const LoopContext* loop = context();
  if (!loop->handshake_budget_enabled() || loop->young_age_ns() == 0 || !SSL_is_server(tls_->ssl)) {
    return false;
  }
  // Counted from the handshake's end: a storm's connection may wait for the budget longer
  // than its life after it.
  return !tls_->established ||
         loop->clock().MonotonicNanos() - tls_->established_ns < loop->young_age_ns();
}

void TcpStream::OnReadable(bool to_the_end) {
  // A young server connection's reads (the rest of its handshake, its first requests, its end)
  // are new connections' work, paid from the loop's handshake budget: in a storm of
  // reconnecting clients the established connections' events go first, and a burst of young
  // ones (a storm's requests, or its clients closing all at once) spreads over iterations
  // instead of making one long one. A read after a socket error (to_the_end) does not wait.
  if (to_the_end || !young_server()) {
    ReadSocket(to_the_end);
    return;
  }
  LoopContext* loop = context();
  if (!loop->HandshakeBudgetLeft() || tls_->waiting_for_budget()) {
    // Not read, not watched: ResumeHandshake reads when an iteration has room. Whether the
    // owner wants to read (reading_) is left as it is, and it may change it meanwhile.
    budget_paused_ = true;
    UpdatePoll();
    if (!tls_->established) tls_->waited = true;  // sluice_tls_handshakes_waited_total
    loop->WaitForHandshakeBudget(tls_.get());
    return;
  }
  int64_t start = SystemClock().MonotonicNanos();
  tls_->charging = true;
  ReadSocket(false);  // tls_ outlives a Close inside: it goes with the stream
  tls_->charging = false;
  loop->ChargeHandshake(SystemClock().MonotonicNanos() - start);
}

void TcpStream::ReadSocket(bool to_the_end) {
  char* buffer = context()->read_buffer();
  const int socket = fd();
  for (int i = 0; i < kReadsPerEvent && reading_ && !closing_ && !failed_; ++i) {
    ssize_t n = ::read(socket, buffer, LoopContext::kReadBufferSize);
    if (n > 0) {
      if (tls_) {
        OnTlsRead(buffer, static_cast<size_t>(n));
      } else {
        handler_->OnStreamRead(buffer, static_cast<size_t>(n));
      }
      // The buffer was not filled: there is nothing more to read now (after a socket error,
      // the next read says how the stream ended).
      if (static_cast<size_t>(n) < LoopContext::kReadBufferSize && !to_the_end) return;
      context()->RunAfterCallback();  // this read's output before the next read
      continue;
    }
    if (n == 0) {
      StopReading();
      handler_->OnStreamEof();
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    int error = ErrnoToUv(errno);
    StopReading();
    ReportError(error);
    return;
  }
}

void TcpStream::PrepareOut() {
  // The first byte to wait in the queue gets a pooled buffer.
  if (!out_) out_ = context()->TakeBoxedBuffer();
}

void TcpStream::ReleaseOut() {
  out_sent_ = 0;
  context()->GiveBoxedBuffer(std::move(out_));
}

void TcpStream::Write(std::string_view data) {
  if (closing_ || failed_ || shutdown_requested_ || data.empty()) return;
  if (tls_) {
    std::string& plain = tls_->plain_out;
    if (plain.empty()) plain = context()->TakeBuffer();
    plain.append(data);
    ScheduleFlush();
    return;
  }
  PrepareOut();
  out_->append(data);
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
  out_->reserve(out_->size() + a.size() + b.size());
  out_->append(a);
  out_->append(b);
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
  out_->reserve(out_->size() + a.size() + b.size() + c.size());
  out_->append(a);
  out_->append(b);
  out_->append(c);
  ScheduleFlush();
}

size_t TcpStream::queued_bytes() const { return out_size() + (tls_ ? tls_->plain_out.size() : 0); }

void TcpStream::ScheduleFlush() {
  // TLS: plaintext is encrypted at flush time even while the queue waits for the kernel.
  if (!writing_ || tls_) context()->Schedule(this);
}

void TcpStream::RunDeferred() {
  if (closing_) {
    // Closed without a socket (Close): nothing for libuv to call back, so the owner hears of
    // it from here, after the call that closed it.
    if (initialized_ && !polling_) handler_->OnStreamClosed();
    return;
  }
  if (refused_) {
    refused_ = false;
    ReportError(UV_ECONNREFUSED);
    return;
  }
  Flush();
}

void TcpStream::Flush() {
  if (closing_ || failed_) return;
  if (tls_) {
    EncryptPending();
    if (failed_) return;
  }
  if (writing_ || connecting_ || !polling_) return;  // the poll callback goes on
  if (!HasOutput()) {
    MaybeShutdown();
    return;
  }
  if (!Send()) return;
  if (HasOutput()) {
    writing_ = true;
    UpdatePoll();
    return;
  }
  ReleaseOut();
  handler_->OnStreamDrained();
  MaybeShutdown();
}

bool TcpStream::Send() {
  const int socket = fd();
  while (HasOutput()) {
    ssize_t n = ::send(socket, out_->data() + out_sent_, out_size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      ReportError(ErrnoToUv(errno));
      return false;
    }
    out_sent_ += static_cast<uint32_t>(n);
  }
  if (HasOutput() && (out_sent_ >= out_->size() / 2 || out_sent_ >= kMaxSentAtFront)) {
    // Keep what waits at the front: the queue does not creep through memory while a slow
    // reader takes a little at a time and more is appended behind.
    out_->erase(0, out_sent_);
    out_sent_ = 0;
  }
  return true;
}

void TcpStream::OnWritable() {
  if (tls_) {
    EncryptPending();  // plaintext written since: in the same send
    if (failed_) return;
  }
  if (!Send()) return;
  if (HasOutput()) return;  // still waiting for room
  writing_ = false;
  UpdatePoll();
  ReleaseOut();
  handler_->OnStreamDrained();
  MaybeShutdown();
}

void TcpStream::ShutdownWrite() {
  if (closing_ || shutdown_requested_) return;
  shutdown_requested_ = true;
  ScheduleFlush();
}

void TcpStream::MaybeShutdown() {
  if (!shutdown_requested_ || shutdown_started_ || writing_ || HasOutput() || closing_) return;
  if (tls_ && tls_->established && !tls_->notify_sent) {
    ScheduleFlush();  // close_notify first
    return;
  }
  if (!polling_ || connecting_) return;  // a connect in progress shuts down once done
  shutdown_started_ = true;
  if (::shutdown(fd(), SHUT_WR) != 0 && errno != ENOTCONN) ReportError(ErrnoToUv(errno));
}

void TcpStream::ReportError(int error) {
  if (failed_ || closing_) return;
  failed_ = true;
  UpdatePoll();  // a socket in error would wake the loop until the owner closes it
  handler_->OnStreamError(error);
}

void TcpStream::Close() {
  if (closing_) return;
  int socket = fd();
  closing_ = true;
  CancelDeferred();
  if (tls_) tls_->StopWaiting();
  if (!initialized_) return;  // nothing for libuv to close; the owner frees itself
  reading_ = false;
  if (!polling_) {
    context()->Schedule(this);  // OnStreamClosed from RunDeferred
    return;
  }
  // Once the handle is closed the loop no longer watches the socket (uv_close takes it out of
  // epoll at once), so the descriptor can go now; the handle itself is libuv's until the close
  // callback.
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t* h) {
    auto* self = static_cast<TcpStream*>(h->data);
    self->handler_->OnStreamClosed();
  });
  ::close(socket);
}

}  // namespace sluice
