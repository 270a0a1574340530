#include "proxy/net/inherited_sockets.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "common/socket_address.h"
#include "common/strings.h"

namespace sluice {
namespace {

constexpr std::string_view kAdminPrefix = "admin ";

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(separator, start);
    parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

// What `fd` is bound to, when it is a listening TCP socket; an error saying what it is not.
absl::StatusOr<std::string> ListeningAddress(int fd) {
  if (fcntl(fd, F_GETFD) < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("descriptor %d is not open", fd));
  }
  int type = 0;
  int listening = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    return absl::InvalidArgumentError(absl::StrFormat("descriptor %d is not a TCP socket", fd));
  }
  len = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
    return absl::InvalidArgumentError(absl::StrFormat("descriptor %d is not listening", fd));
  }
  sockaddr_storage address{};
  len = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len) != 0 ||
      (address.ss_family != AF_INET && address.ss_family != AF_INET6)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("descriptor %d is not bound to an IP address", fd));
  }
  return SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&address)).ToString();
}

}  // namespace

std::string AdminSocketKey(const std::string& address) {
  return std::string(kAdminPrefix) + address;
}

InheritedSockets& InheritedSockets::operator=(InheritedSockets&& other) noexcept {
  if (this != &other) {
    CloseRest();
    sockets_ = std::move(other.sockets_);
    other.sockets_.clear();
  }
  return *this;
}

absl::StatusOr<InheritedSockets::Map> InheritedSockets::Parse(std::string_view text) {
  Map sockets;
  for (std::string_view entry : Split(text, ';')) {
    if (entry.empty()) continue;
    size_t eq = entry.rfind('=');
    if (eq == std::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrFormat("%s: \"%s\" is not ADDRESS=FD[,FD...]",
                                                        kInheritedSocketsVariable, entry));
    }
    std::string key(entry.substr(0, eq));
    if (sockets.count(key)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: \"%s\" is listed twice", kInheritedSocketsVariable, key));
    }
    std::vector<int>& fds = sockets[key];
    for (std::string_view number : Split(entry.substr(eq + 1), ',')) {
      int fd = -1;
      if (!ParseInteger(number, &fd) || fd < 3 || fd > 1 << 20) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: \"%s\" under %s is not a descriptor number above 2",
                            kInheritedSocketsVariable, number, key));
      }
      fds.push_back(fd);
    }
  }
  return sockets;
}

std::string InheritedSockets::Encode(const Map& sockets) {
  std::string text;
  for (const auto& [key, fds] : sockets) {
    if (fds.empty()) continue;
    if (!text.empty()) text += ';';
    text += key + '=';
    for (size_t i = 0; i < fds.size(); ++i) {
      if (i > 0) text += ',';
      text += std::to_string(fds[i]);
    }
  }
  return text;
}

absl::StatusOr<InheritedSockets> InheritedSockets::Adopt(const Map& sockets) {
  for (const auto& [key, fds] : sockets) {
    std::string expected = key;
    if (key.compare(0, kAdminPrefix.size(), kAdminPrefix) == 0)
      expected = key.substr(kAdminPrefix.size());
    for (int fd : fds) {
      absl::StatusOr<std::string> bound = ListeningAddress(fd);
      if (!bound.ok()) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: %s (listed under %s)", kInheritedSocketsVariable, bound.status().message(), key));
      }
      // A listener configured on port 0 got whatever port the kernel picked: same address.
      const bool any_port =
          expected.size() > 2 && expected.compare(expected.size() - 2, 2, ":0") == 0;
      const std::string bound_host = bound->substr(0, bound->rfind(':'));
      if (any_port ? bound_host != expected.substr(0, expected.size() - 2) : *bound != expected) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: descriptor %d is bound to %s, not %s", kInheritedSocketsVariable,
                            fd, *bound, expected));
      }
    }
  }
  InheritedSockets inherited;
  for (const auto& [key, fds] : sockets) {
    for (int fd : fds) fcntl(fd, F_SETFD, FD_CLOEXEC);  // never to a process it did not pick
  }
  inherited.sockets_ = sockets;
  return inherited;
}

absl::StatusOr<InheritedSockets> InheritedSockets::FromEnvironment() {
  const char* text = std::getenv(kInheritedSocketsVariable);
  if (!text) return InheritedSockets();
  std::string copy(text);
  unsetenv(kInheritedSocketsVariable);
  absl::StatusOr<Map> parsed = Parse(copy);
  if (!parsed.ok()) return parsed.status();
  return Adopt(*parsed);
}

std::vector<int> InheritedSockets::Take(const std::string& key) {
  auto it = sockets_.find(key);
  if (it == sockets_.end()) return {};
  std::vector<int> fds = std::move(it->second);
  sockets_.erase(it);
  return fds;
}

void InheritedSockets::CloseRest() {
  for (const auto& [key, fds] : sockets_) {
    for (int fd : fds) ::close(fd);
  }
  sockets_.clear();
}

}  // namespace sluice
