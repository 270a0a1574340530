#include "ctl/admin_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "proxy/tls/client_tls.h"

namespace sluice {
namespace {

// Largest reply read (the metrics of a big node fit easily).
constexpr size_t kMaxReply = 16 * 1024 * 1024;

class Socket {
 public:
  ~Socket() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  int fd_ = -1;
  SSL* ssl_ = nullptr;  // https: TLS over fd_
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

// After an SSL call returned `rc`: waits for what OpenSSL asked for (true), or false on an error.
bool WaitForTls(const Socket& s, int rc, absl::Time deadline, const AdminEndpoint& e,
                absl::Status* status) {
  switch (SSL_get_error(s.ssl_, rc)) {
    case SSL_ERROR_WANT_READ:
      *status = Wait(s.fd_, POLLIN, deadline, e);
      return status->ok();
    case SSL_ERROR_WANT_WRITE:
      *status = Wait(s.fd_, POLLOUT, deadline, e);
      return status->ok();
    default:
      *status = absl::UnavailableError(absl::StrFormat("%s: TLS: %s", e.url, OpenSslErrors()));
      return false;
  }
}

// The TLS handshake on a connected socket; the server's certificate must chain to the CA
// bundle and name the URL's host (a DNS name, or an IP address in its subjectAltName).
absl::Status Handshake(const AdminEndpoint& e, absl::Time deadline, Socket* s) {
  ClientTlsFiles files;
  files.ca_file = e.ca_file;
  absl::StatusOr<ClientTlsContext> context = MakeClientTlsContext(files);
  if (!context.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: %s", e.ca_file.empty() ? e.url : "--cacert", context.status().message()));
  }
  // sluice may close without a close_notify; the Content-Length check below catches a reply
  // cut short.
  SSL_CTX_set_options(context->get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  s->ssl_ = NewClientSsl(context->get(), e.host);
  if (!s->ssl_ || SSL_set_fd(s->ssl_, s->fd_) != 1) {
    return absl::InternalError(absl::StrFormat("%s: TLS: %s", e.url, OpenSslErrors()));
  }
  for (;;) {
    ERR_clear_error();
    int rc = SSL_connect(s->ssl_);
    if (rc == 1) return absl::OkStatus();
    if (long verify = SSL_get_verify_result(s->ssl_); verify != X509_V_OK) {
      ERR_clear_error();
      return absl::UnavailableError(absl::StrFormat(
          "%s: the server's certificate does not verify: %s (checked against %s for \"%s\")", e.url,
          X509_verify_cert_error_string(verify),
          e.ca_file.empty() ? "the system's CA bundle; --cacert FILE names another" : e.ca_file,
          e.host));
    }
    absl::Status status;
    if (!WaitForTls(*s, rc, deadline, e, &status)) {
      return absl::Status(status.code(), absl::StrCat(status.message(),
                                                      " (the TLS handshake failed: is the admin "
                                                      "listener plain http?)"));
    }
  }
}

// Writes all of `data` (through TLS on https).
absl::Status SendAll(const AdminEndpoint& e, std::string_view data, absl::Time deadline,
                     const Socket& s) {
  while (!data.empty()) {
    if (s.ssl_) {
      ERR_clear_error();
      int n = SSL_write(s.ssl_, data.data(), static_cast<int>(data.size()));
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      absl::Status status;
      if (!WaitForTls(s, n, deadline, e, &status)) return status;
      continue;
    }
    if (absl::Status st = Wait(s.fd_, POLLOUT, deadline, e); !st.ok()) return st;
    ssize_t n = ::send(s.fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) {
      return absl::UnavailableError(absl::StrFormat("%s: %s", e.url, std::strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// Reads until the server closes.
absl::Status ReceiveAll(const AdminEndpoint& e, absl::Time deadline, const Socket& s,
                        std::string* reply) {
  char buffer[16384];
  for (;;) {
    ssize_t n = 0;
    if (s.ssl_) {
      ERR_clear_error();
      int rc = SSL_read(s.ssl_, buffer, sizeof(buffer));
      if (rc <= 0) {
        if (SSL_get_error(s.ssl_, rc) == SSL_ERROR_ZERO_RETURN) return absl::OkStatus();
        absl::Status status;
        if (!WaitForTls(s, rc, deadline, e, &status)) return status;
        continue;
      }
      n = rc;
    } else {
      if (absl::Status st = Wait(s.fd_, POLLIN, deadline, e); !st.ok()) return st;
      n = ::recv(s.fd_, buffer, sizeof(buffer), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n < 0) {
        return absl::UnavailableError(absl::StrFormat("%s: %s", e.url, std::strerror(errno)));
      }
      if (n == 0) return absl::OkStatus();
    }
    reply->append(buffer, static_cast<size_t>(n));
    if (reply->size() > kMaxReply) {
      return absl::ResourceExhaustedError(absl::StrFormat("%s: reply too large", e.url));
    }
  }
}

// The Content-Length field of a reply head, or -1 without one.
int64_t ContentLength(std::string_view head) {
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    std::string_view line = head.substr(pos, head.find("\r\n", pos) - pos);
    if (StartsWithIgnoreCase(line, "content-length:")) {
      int64_t n = -1;
      return ParseInteger(StripWhitespace(line.substr(15)), &n) ? n : -1;
    }
  }
  return -1;
}

}  // namespace

absl::StatusOr<AdminEndpoint> ParseAdminUrl(std::string_view url) {
  AdminEndpoint e;
  e.url = std::string(url);
  e.name = e.url;
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    e.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "admin URL \"%s\": must start with http:// or https:// (http://127.0.0.1:9901)", url));
  }
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
  e.port = colon == std::string_view::npos ? (e.tls ? "443" : "80")
                                           : std::string(rest.substr(colon + 1));
  int port = 0;
  if (e.host.empty() || !ParseInteger(e.port, &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("admin URL \"%s\": needs a host and a port 1..65535", url));
  }
  e.url = absl::StrFormat("%s://%s", e.tls ? "https" : "http", rest);
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
  if (e.tls) {
    if (absl::Status s = Handshake(e, deadline, &socket); !s.ok()) return s;
  }
  if (absl::Status s = SendAll(e, request, deadline, socket); !s.ok()) return s;
  std::string reply;
  if (absl::Status s = ReceiveAll(e, deadline, socket, &reply); !s.ok()) return s;
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody" (sluice answers with Content-Length and closes).
  size_t head_end = reply.find("\r\n\r\n");
  int status = 0;
  if (head_end == std::string::npos || reply.size() < 12 || !reply.starts_with("HTTP/1.") ||
      !ParseInteger(std::string_view(reply).substr(9, 3), &status)) {
    // A TLS listener answers plain HTTP with a TLS alert, or nothing.
    return absl::UnavailableError(absl::StrFormat("%s: not an HTTP reply%s", e.url,
                                                  e.tls ? "" : " (is the admin listener https?)"));
  }
  const int64_t length = ContentLength(std::string_view(reply).substr(0, head_end));
  if (length >= 0 && reply.size() - head_end - 4 < static_cast<uint64_t>(length)) {
    return absl::UnavailableError(absl::StrFormat("%s: the reply was cut short", e.url));
  }
  HttpReply r;
  r.status = status;
  r.body = reply.substr(head_end + 4);
  return r;
}

}  // namespace sluice
