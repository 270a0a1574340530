// A blocking HTTP/1.1 origin on its own thread, for tests of the forwarding side on a real
// loop: answers every request with `status`, or closes at once when `status` is 0. Records
// what it received. One connection at a time (a keep-alive connection is served until the
// peer closes it). And a loopback address that refuses connections.
#ifndef SLUICE_TESTS_PROXY_FORWARD_THREAD_ORIGIN_H_
#define SLUICE_TESTS_PROXY_FORWARD_THREAD_ORIGIN_H_

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/socket_address.h"
#include "gtest/gtest.h"
#include "proxy/net/listen_socket.h"

namespace sluice {

class ThreadOrigin {
 public:
  explicit ThreadOrigin(int status) : status_(status) {
    fd_ = *BindListenSocket(*SocketAddress::Parse("127.0.0.1:0"), 64);
    MakeBlocking(fd_);
    sockaddr_storage addr;
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    address_ = SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&addr));
    thread_ = std::thread([this] { Serve(); });
  }
  ~ThreadOrigin() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    int client = client_fd_.load();
    if (client >= 0) ::shutdown(client, SHUT_RDWR);  // a pooled connection may still be open
    thread_.join();
    ::close(fd_);
  }
  ThreadOrigin(const ThreadOrigin&) = delete;
  ThreadOrigin& operator=(const ThreadOrigin&) = delete;

  const SocketAddress& address() const { return address_; }
  std::vector<std::string> received() {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }

 private:
  static void MakeBlocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  }
  void Serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      client_fd_ = c;
      if (stop_) ::shutdown(c, SHUT_RDWR);
      std::string buf;
      char chunk[4096];
      while (true) {
        size_t end = buf.find("\r\n\r\n");
        if (end != std::string::npos) {
          size_t length = 0;
          size_t cl = buf.find("Content-Length: ");
          if (cl != std::string::npos && cl < end) length = std::stoul(buf.substr(cl + 16));
          if (buf.size() >= end + 4 + length) {
            {
              std::lock_guard<std::mutex> lock(mutex_);
              received_.push_back(buf.substr(0, end + 4 + length));
            }
            buf.erase(0, end + 4 + length);
            if (status_ == 0) break;
            std::string response =
                "HTTP/1.1 " + std::to_string(status_) + " X\r\nContent-Length: 2\r\n\r\nok";
            if (::send(c, response.data(), response.size(), MSG_NOSIGNAL) < 0) break;
            continue;
          }
        }
        ssize_t n = ::recv(c, chunk, sizeof(chunk), 0);
        if (n <= 0) break;
        buf.append(chunk, static_cast<size_t>(n));
      }
      client_fd_ = -1;
      ::close(c);
    }
  }

  int status_;
  int fd_;
  SocketAddress address_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> client_fd_{-1};
  std::mutex mutex_;
  std::vector<std::string> received_;
};

// A loopback port that refuses connections: bound, then closed.
inline SocketAddress RefusingAddress() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)), 0);
  socklen_t len = sizeof(sin);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  close(fd);
  return *SocketAddress::Parse("127.0.0.1:" + std::to_string(ntohs(sin.sin_port)));
}

}  // namespace sluice

#endif  // SLUICE_TESTS_PROXY_FORWARD_THREAD_ORIGIN_H_
