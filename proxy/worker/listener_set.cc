#include "proxy/worker/listener_set.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "proxy/net/listen_socket.h"

namespace sluice {
namespace {

ListenerOptions OptionsOf(const ListenerConfig& listener) {
  return {listener.proxy_protocol, listener.http2, listener.tls_context};
}

}  // namespace

absl::StatusOr<ListenerSet::Change> ListenerSet::Apply(const Config& config, size_t workers,
                                                       InheritedSockets* inherited) {
  Change change;
  change.added.assign(workers, {});
  std::vector<int> opened;
  auto fail = [&](const ListenerConfig& listener, const absl::Status& status) {
    for (int f : opened) ::close(f);
    return absl::Status(status.code(), absl::StrFormat("listener \"%s\": %s", listener.name,
                                                       std::string(status.message())));
  };
  std::map<std::string, Open> next;
  for (const ListenerConfig& listener : config.listeners) {
    std::string key = listener.address.ToString();
    if (auto it = open_.find(key); it != open_.end()) {
      next[key] = it->second;
      next[key].backlog = listener.backlog;
      change.kept[key] = OptionsOf(listener);
      continue;
    }
    next[key] = {listener.address, listener.backlog, {}};
    std::vector<int> handed = inherited ? inherited->Take(key) : std::vector<int>{};
    if (!handed.empty()) {
      // Worker i takes sockets i, i + workers, ...; with fewer sockets than workers, the
      // rest share them (a duplicate descriptor of the same socket each).
      for (size_t i = 0; i < std::max(workers, handed.size()); ++i) {
        int fd = handed[i % handed.size()];
        if (i >= handed.size()) {
          fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
          if (fd < 0) return fail(listener, absl::InternalError(std::strerror(errno)));
        }
        opened.push_back(fd);
        next[key].fds.push_back(fd);
        change.added[i % workers].push_back({key, fd, listener.backlog, OptionsOf(listener)});
      }
      continue;
    }
    // The workers share the port among themselves, with no other process. A port this
    // process already listens on (another address of it: a wildcard and a specific one, or a
    // listener a reload replaces) is ours, and the check would only find our own sockets.
    const bool ours = std::any_of(next.begin(), next.end(),
                                  [&](const auto& entry) {
                                    return entry.first != key &&
                                           entry.second.address.port() == listener.address.port();
                                  }) ||
                      std::any_of(open_.begin(), open_.end(), [&](const auto& entry) {
                        return entry.second.address.port() == listener.address.port();
                      });
    absl::Status free = ours ? absl::OkStatus() : CheckPortFree(listener.address);
    if (!free.ok()) return fail(listener, free);
    for (auto& sockets : change.added) {
      absl::StatusOr<int> fd = BindListenSocket(listener.address, listener.backlog);
      if (!fd.ok()) return fail(listener, fd.status());
      opened.push_back(*fd);
      next[key].fds.push_back(*fd);
      sockets.push_back({key, *fd, listener.backlog, OptionsOf(listener)});
    }
  }
  open_ = std::move(next);
  return change;
}

InheritedSockets::Map ListenerSet::Descriptors() const {
  InheritedSockets::Map map;
  for (const auto& [key, open] : open_) map[key] = open.fds;
  return map;
}

std::map<std::string, ListenerOptions> ListenerSet::Options(const Config& config) {
  std::map<std::string, ListenerOptions> options;
  for (const ListenerConfig& listener : config.listeners) {
    options[listener.address.ToString()] = OptionsOf(listener);
  }
  return options;
}

}  // namespace sluice
