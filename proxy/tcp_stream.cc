#include "proxy/tcp_stream.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cassert>

namespace sluice {
namespace {}  // namespace

struct TcpStream::InFlight {
  uv_write_t request;
  std::string data;
};

TcpStream::TcpStream(LoopContext* context, Handler* handler)
    : context_(context), handler_(handler) {
  handle_.data = this;
}

TcpStream::~TcpStream() {
  // Only destroyed from OnStreamClosed (or never initialized): libuv is done with the handle.
  assert(!initialized_ || closing_);
}

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
    } else {
      self->handler_->OnStreamConnected();
    }
    self->context_->RunDeferredNow();
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
        LoopContext::From(s->loop)->RunDeferredNow();
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
  PrepareOut();
  out_.append(data);
  ScheduleFlush();
}

void TcpStream::Write(std::string_view a, std::string_view b) {
  if (closing_ || failed_ || shutdown_requested_) return;
  PrepareOut();
  out_.reserve(out_.size() + a.size() + b.size());
  out_.append(a);
  out_.append(b);
  ScheduleFlush();
}

void TcpStream::Write(std::string_view a, std::string_view b, std::string_view c) {
  if (closing_ || failed_ || shutdown_requested_) return;
  PrepareOut();
  out_.reserve(out_.size() + a.size() + b.size() + c.size());
  out_.append(a);
  out_.append(b);
  out_.append(c);
  ScheduleFlush();
}

size_t TcpStream::queued_bytes() const {
  return out_.size() + (writing_ ? in_flight_->data.size() : 0);
}

void TcpStream::ScheduleFlush() {
  if (!writing_) context_->Schedule(this);
}

void TcpStream::RunDeferred() { Flush(); }

void TcpStream::Flush() {
  if (closing_ || failed_ || writing_) return;
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
    if (status != UV_ECANCELED) context->RunDeferredNow();
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
  if (!out_.empty()) {
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
  if (!initialized_) return;  // nothing for libuv to close; the owner frees itself
  reading_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), [](uv_handle_t* h) {
    auto* self = static_cast<TcpStream*>(h->data);
    self->handler_->OnStreamClosed();
  });
}

}  // namespace sluice
