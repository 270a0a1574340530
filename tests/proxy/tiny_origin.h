// A tiny keep-alive origin on a libuv loop, for tests and benchmarks of the upstream side:
// every read is answered with an empty 200, connections stay open until CloseAll.
#ifndef SLUICE_TESTS_PROXY_TINY_ORIGIN_H_
#define SLUICE_TESTS_PROXY_TINY_ORIGIN_H_

#include <uv.h>

#include <memory>
#include <vector>

#include "common/socket_address.h"
#include "proxy/upstream/upstream_connection.h"

namespace sluice {

class TinyOrigin {
 public:
  explicit TinyOrigin(uv_loop_t* loop) {
    uv_tcp_init(loop, &server_);
    server_.data = this;
    SocketAddress listen = *SocketAddress::Parse("127.0.0.1:0");
    uv_tcp_bind(&server_, listen.sockaddr_ptr(), 0);
    uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 64, &TinyOrigin::OnConnection);
    sockaddr_storage bound;
    int length = sizeof(bound);
    uv_tcp_getsockname(&server_, reinterpret_cast<sockaddr*>(&bound), &length);
    address_ = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&bound));
  }
  TinyOrigin(const TinyOrigin&) = delete;
  TinyOrigin& operator=(const TinyOrigin&) = delete;

  const SocketAddress& address() const { return address_; }
  size_t accepted() const { return accepted_; }

  // Closes every accepted connection (as an origin's keep-alive timeout would).
  void CloseConnections() {
    for (auto& peer : peers_) uv_close(reinterpret_cast<uv_handle_t*>(peer.get()), nullptr);
    closing_.insert(closing_.end(), std::make_move_iterator(peers_.begin()),
                    std::make_move_iterator(peers_.end()));
    peers_.clear();
  }
  // Closes the connections and the listener; run the loop afterwards so the handles close.
  void Close() {
    CloseConnections();
    uv_close(reinterpret_cast<uv_handle_t*>(&server_), nullptr);
  }

 private:
  static void OnConnection(uv_stream_t* server, int status) {
    if (status != 0) return;
    auto* self = static_cast<TinyOrigin*>(server->data);
    auto peer = std::make_unique<uv_tcp_t>();
    uv_tcp_init(server->loop, peer.get());
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(peer.get())) != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(peer.get()), nullptr);
      self->closing_.push_back(std::move(peer));
      return;
    }
    ++self->accepted_;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(peer.get()),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static char buffer[4096];
          *buf = uv_buf_init(buffer, sizeof(buffer));
        },
        [](uv_stream_t* stream, ssize_t nread, const uv_buf_t*) {
          if (nread <= 0) return;
          static char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
          uv_buf_t out = uv_buf_init(reply, sizeof(reply) - 1);
          uv_try_write(stream, &out, 1);
        });
    self->peers_.push_back(std::move(peer));
  }

  uv_tcp_t server_;
  SocketAddress address_;
  size_t accepted_ = 0;
  std::vector<std::unique_ptr<uv_tcp_t>> peers_;
  std::vector<std::unique_ptr<uv_tcp_t>> closing_;  // freed with the origin, after the loop ran
};

// One GET on a fresh upstream connection; the connection goes back to its pool at the end.
struct OneExchange : UpstreamStream::Handler {
  UpstreamConnection* connection = nullptr;
  bool done = false;
  bool failed = false;
  void OnUpstreamConnected() override {
    connection->SendRequestHead("GET / HTTP/1.1\r\nHost: origin\r\n\r\n", HttpMethod::kGet,
                                BodyFraming::kNone, false);
    connection->EndRequest();
  }
  void OnUpstreamHead(ResponseHeadPtr) override {}
  void OnUpstreamBody(std::string_view) override {}
  void OnUpstreamTrailers(const HeaderMap&) override {}
  void OnUpstreamEnd() override {
    connection->Release();
    done = true;
  }
  void OnUpstreamError(UpstreamError, int, const char*) override { done = failed = true; }
  void OnUpstreamDrained() override {}
};

}  // namespace sluice

#endif  // SLUICE_TESTS_PROXY_TINY_ORIGIN_H_
