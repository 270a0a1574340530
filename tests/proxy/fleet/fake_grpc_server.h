// A gRPC server on loopback for tests of gRPC clients (proxy/fleet/grpc_channel.h and the
// etcd client over it): nghttp2, a thread per connection, scripted by the messages it gets.
#ifndef SLUICE_TESTS_PROXY_FLEET_FAKE_GRPC_SERVER_H_
#define SLUICE_TESTS_PROXY_FLEET_FAKE_GRPC_SERVER_H_

#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/socket_address.h"
#include "proxy/fleet/etcd_grpc_protocol.h"
#include "tests/proxy/socket_test_util.h"

namespace sluice {

// A gRPC server on loopback (nghttp2, a thread per connection) whose streams do what their
// messages say:
//   "echo:X"          answers with the message X
//   "status:C:M"      ends the stream with grpc-status C and grpc-message M
//   "reset"           resets the stream (RST_STREAM INTERNAL_ERROR)
//   "compressed"      answers with a message flagged compressed
//   "close"           closes the connection
//   "goaway"          sends GOAWAY (and keeps the connection)
//   "404"             answers with HTTP status 404, not gRPC
// and any other message as the answerer says (set_answerer: an etcd stand-in). Or, for a whole
// connection: answers HTTP/1.1 to the preface (kHttp1), or never answers (kSilent).
class FakeGrpcServer {
 public:
  enum class Mode { kGrpc, kHttp1, kSilent };
  struct Stream {
    std::map<std::string, std::string> headers;  // the request's, pseudo-headers included
    uint32_t closed_with = ~0u;                  // the error code it closed with
    std::string in;                              // request DATA not yet framed
    std::string out;                             // response DATA not yet sent
    bool headers_sent = false;
    bool end = false;  // trailers once `out` is sent
    bool not_found = false;
    std::deque<std::pair<std::string, std::chrono::steady_clock::time_point>> held;
    std::string status;
    std::string message;
  };

  explicit FakeGrpcServer(Mode mode = Mode::kGrpc) : mode_(mode) {
    listen_fd_ = BindLoopback(&address_, 16);
    threads_.emplace_back([this] { AcceptLoop(); });
  }
  ~FakeGrpcServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    for (std::thread& t : threads_) t.join();
    ::close(listen_fd_);
  }

  const SocketAddress& address() const { return address_; }
  // The streams seen so far, by id (one connection at a time in these tests).
  std::map<int32_t, Stream> streams() {
    std::lock_guard<std::mutex> lock(mutex_);
    return streams_;
  }
  int connections() const { return connections_; }
  // Answers a message that is not one of the commands: the answer (unframed) and how long to
  // hold it. Answers leave in the order their messages came, as etcd's do. Set before the
  // first connection; runs on the server's threads.
  using Answerer = std::function<std::pair<std::string, int>(const std::string& path,
                                                             const std::string& message)>;
  void set_answerer(Answerer answerer) { answerer_ = std::move(answerer); }

 private:
  struct Connection {
    FakeGrpcServer* server;
    nghttp2_session* session = nullptr;
    int fd = -1;
    bool close = false;
  };

  void AcceptLoop() {
    std::vector<std::thread> serving;
    while (!stop_) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) break;
      ++connections_;
      serving.emplace_back([this, fd] { Serve(fd); });
    }
    for (std::thread& t : serving) t.join();
  }

  void Serve(int fd) {
    Connection c{this};
    c.fd = fd;
    if (mode_ == Mode::kGrpc) {
      nghttp2_session_callbacks* cb;
      nghttp2_session_callbacks_new(&cb);
      nghttp2_session_callbacks_set_on_header_callback(cb, &OnHeader);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &OnData);
      nghttp2_session_callbacks_set_on_stream_close_callback(cb, &OnClose);
      nghttp2_session_server_new(&c.session, cb, &c);
      nghttp2_session_callbacks_del(cb);
      nghttp2_submit_settings(c.session, NGHTTP2_FLAG_NONE, nullptr, 0);
    }
    char buf[16384];
    while (!stop_ && !c.close) {
      if (c.session) Flush(&c);
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      if (mode_ == Mode::kHttp1) {
        const char kAnswer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        ::send(fd, kAnswer, sizeof(kAnswer) - 1, MSG_NOSIGNAL);
        break;
      }
      if (mode_ == Mode::kSilent) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      if (nghttp2_session_mem_recv(c.session, reinterpret_cast<uint8_t*>(buf),
                                   static_cast<size_t>(n)) < 0) {
        break;
      }
    }
    if (c.session) nghttp2_session_del(c.session);
    ::close(fd);
  }

  void Flush(Connection* c) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    for (auto& [id, s] : streams_) {
      while (!s.held.empty() && s.held.front().second <= now) {
        s.out += GrpcFrame(s.held.front().first);
        s.held.pop_front();
      }
      if (!s.headers_sent && s.not_found) {
        s.headers_sent = true;
        nghttp2_nv h[] = {Nv(":status", "404"), Nv("content-type", "text/plain")};
        nghttp2_submit_response(c->session, id, h, 2, nullptr);
      } else if (!s.headers_sent && s.closed_with == ~0u && (!s.out.empty() || s.end)) {
        s.headers_sent = true;
        nghttp2_nv h[] = {Nv(":status", "200"), Nv("content-type", "application/grpc")};
        nghttp2_data_provider provider;
        provider.source.ptr = &s;
        provider.read_callback = &ReadOut;
        nghttp2_submit_response(c->session, id, h, 2, &provider);
      } else if (s.headers_sent && (!s.out.empty() || s.end)) {
        nghttp2_session_resume_data(c->session, id);
      }
    }
    for (;;) {
      const uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(c->session, &data);
      if (n <= 0) break;
      ::send(c->fd, data, static_cast<size_t>(n), MSG_NOSIGNAL);
    }
  }

  // `value` must outlive the submission: a literal or a stream's member.
  static nghttp2_nv Nv(std::string_view name, std::string_view value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), NGHTTP2_NV_FLAG_NONE};
  }

  static ssize_t ReadOut(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                         uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* s = static_cast<Stream*>(source->ptr);
    if (!s->out.empty()) {
      size_t n = std::min(length, s->out.size());
      std::memcpy(buf, s->out.data(), n);
      s->out.erase(0, n);
      return static_cast<ssize_t>(n);
    }
    if (!s->end) return NGHTTP2_ERR_DEFERRED;
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    nghttp2_nv t[] = {Nv("grpc-status", s->status), Nv("grpc-message", s->message)};
    nghttp2_submit_trailer(session, id, t, 2);
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* c = static_cast<Connection*>(user);
    c->server->streams_[frame->hd.stream_id]
        .headers[std::string(reinterpret_cast<const char*>(name), namelen)] =
        std::string(reinterpret_cast<const char*>(value), valuelen);
    return 0;
  }

  static int OnData(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    auto* c = static_cast<Connection*>(user);
    Stream& s = c->server->streams_[id];
    s.in.append(reinterpret_cast<const char*>(data), len);
    while (s.in.size() >= 5) {
      size_t size = 0;
      for (int i = 1; i < 5; ++i) size = size << 8 | static_cast<uint8_t>(s.in[i]);
      if (s.in.size() < 5 + size) break;
      std::string m = s.in.substr(5, size);
      s.in.erase(0, 5 + size);
      if (m.rfind("echo:", 0) == 0) {
        s.out += GrpcFrame(m.substr(5));
      } else if (m.rfind("status:", 0) == 0) {
        size_t colon = m.find(':', 7);
        s.status = m.substr(7, colon - 7);
        s.message = m.substr(colon + 1);
        s.end = true;
      } else if (m == "reset") {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
      } else if (m == "compressed") {
        s.out += std::string("\x01\0\0\0\x01x", 6);
      } else if (m == "close") {
        c->close = true;
      } else if (m == "goaway") {
        nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, nullptr, 0);
      } else if (m == "404") {
        s.not_found = true;
      } else if (c->server->answerer_) {
        auto [answer, hold_ms] = c->server->answerer_(s.headers[":path"], m);
        s.held.emplace_back(answer,
                            std::chrono::steady_clock::now() + std::chrono::milliseconds(hold_ms));
      }
    }
    return 0;
  }

  static int OnClose(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
    auto* c = static_cast<Connection*>(user);
    c->server->streams_[id].closed_with = error_code;
    return 0;
  }

  Mode mode_;
  int listen_fd_ = -1;
  SocketAddress address_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::map<int32_t, Stream> streams_;
  Answerer answerer_;
};

}  // namespace sluice

#endif  // SLUICE_TESTS_PROXY_FLEET_FAKE_GRPC_SERVER_H_
