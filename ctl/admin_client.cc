#include "ctl/admin_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "common/strings.h"

namespace sluice {
namespace {

// Largest reply read (the metrics of a big node fit easily).
constexpr size_t kMaxReply = 16 * 1024 * 1024;

class Socket {
 public:
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd_ = -1;
};

int RemainingMs(absl::Time deadline) {
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms < 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

// Waits for `events` on fd until the deadline.
absl::Status Wait(int fd, short events, absl::Time deadline, const AdminEndpoint& e) {
  pollfd p{fd, events, 0};
  for (;;) {
    int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return absl::OkStatus();
    if (n == 0) return absl::DeadlineExceededError(absl::StrFormat("%s: timed out", e.url));
    if (errno != EINTR) {
      return absl::UnavailableError(absl::StrFormat("%s: %s", e.url, std::strerror(errno)));
    }
  }
}

absl::Status Connect(const AdminEndpoint& e, absl::Time deadline, Socket* out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  if (int rc = ::getaddrinfo(e.host.c_str(), e.port.c_str(), &hints, &list); rc != 0) {
    return absl::UnavailableError(absl::StrFormat("%s: %s", e.url, gai_strerror(rc)));
  }
  std::string last = "no address";
  for (addrinfo* a = list; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    out->fd_ = fd;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
      if (Wait(fd, POLLOUT, deadline, e).ok()) {
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) {
          ::freeaddrinfo(list);
          return absl::OkStatus();
        }
        last = std::strerror(err);
      } else {
        last = "connect timed out";
      }
    } else {
      last = std::strerror(errno);
    }
    ::close(fd);
    out->fd_ = -1;
  }
  ::freeaddrinfo(list);
  return absl::UnavailableError(absl::StrFormat("%s: %s", e.url, last));
}

}  // namespace

absl::StatusOr<AdminEndpoint> ParseAdminUrl(std::string_view url) {
  AdminEndpoint e;
  e.url = std::string(url);
  e.name = e.url;
  std::string_view rest = url;
  if (!rest.starts_with("http://")) {
    return absl::InvalidArgumentError(
        absl::StrFormat("admin URL \"%s\": must start with http:// (http://127.0.0.1:9901)", url));
  }
  rest.remove_prefix(7);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrFormat("admin URL \"%s\": no path expected", url));
  }
  size_t colon = rest.rfind(':');
  if (!rest.empty() && rest.front() == '[') {  // [::1]:9901
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrFormat("admin URL \"%s\": bad IPv6 host", url));
    }
    e.host = std::string(rest.substr(1, close - 1));
    colon = rest.size() > close + 1 && rest[close + 1] == ':' ? close + 1 : std::string_view::npos;
  } else {
    e.host = std::string(rest.substr(0, colon));
  }
  e.port = colon == std::string_view::npos ? "80" : std::string(rest.substr(colon + 1));
  int port = 0;
  if (e.host.empty() || !ParseInteger(e.port, &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("admin URL \"%s\": needs a host and a port 1..65535", url));
  }
  e.url = absl::StrFormat("http://%s", rest);
  return e;
}

absl::StatusOr<HttpReply> AdminRequest(const AdminEndpoint& e, std::string_view method,
                                       std::string_view path, std::string_view token,
                                       std::string_view body, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  Socket socket;
  if (absl::Status s = Connect(e, deadline, &socket); !s.ok()) return s;
  std::string request =
      absl::StrFormat("%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, e.host);
  if (!token.empty()) request.append("Authorization: Bearer ").append(token).append("\r\n");
  if (!body.empty() || method == "PUT" || method == "POST") {
    absl::StrAppend(&request, "Content-Type: application/json\r\nContent-Length: ", body.size(),
                    "\r\n");
  }
  request.append("User-Agent: sluicectl\r\n\r\n").append(body);
  std::string_view out = request;
  while (!out.empty()) {
    if (absl::Status s = Wait(socket.fd_, POLLOUT, deadline, e); !s.ok()) return s;
    ssize_t n = ::send(socket.fd_, out.data(), out.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0)
      return absl::UnavailableError(absl::StrFormat("%s: %s", e.url, std::strerror(errno)));
    out.remove_prefix(static_cast<size_t>(n));
  }
  std::string reply;
  char buffer[16384];
  for (;;) {
    if (absl::Status s = Wait(socket.fd_, POLLIN, deadline, e); !s.ok()) return s;
    ssize_t n = ::recv(socket.fd_, buffer, sizeof(buffer), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0)
      return absl::UnavailableError(absl::StrFormat("%s: %s", e.url, std::strerror(errno)));
    if (n == 0) break;
    reply.append(buffer, static_cast<size_t>(n));
    if (reply.size() > kMaxReply) {
      return absl::ResourceExhaustedError(absl::StrFormat("%s: reply too large", e.url));
    }
  }
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody" (sluice answers with Content-Length and closes).
  size_t head_end = reply.find("\r\n\r\n");
  int status = 0;
  if (head_end == std::string::npos || reply.size() < 12 || !reply.starts_with("HTTP/1.") ||
      !ParseInteger(std::string_view(reply).substr(9, 3), &status)) {
    return absl::UnavailableError(absl::StrFormat("%s: not an HTTP reply", e.url));
  }
  HttpReply r;
  r.status = status;
  r.body = reply.substr(head_end + 4);
  return r;
}

}  // namespace sluice
