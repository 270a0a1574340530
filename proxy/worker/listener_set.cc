#include "proxy/worker/listener_set.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "proxy/net/listen_socket.h"

namespace sluice {
namespace {

ListenerOptions OptionsOf(const ListenerConfig& listener) {
  return {listener.proxy_protocol, listener.http2, listener.tls_context};
}

}  // namespace

absl::StatusOr<ListenerSet::Change> ListenerSet::Apply(const Config& config, size_t workers) {
  Change change;
  change.added.assign(workers, {});
  std::vector<int> opened;
  std::map<std::string, Open> next;
  for (const ListenerConfig& listener : config.listeners) {
    std::string key = listener.address.ToString();
    next[key] = {listener.address, listener.backlog};
    if (open_.count(key)) {
      change.kept[key] = OptionsOf(listener);
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
    if (!free.ok()) {
      for (int f : opened) ::close(f);
      return absl::Status(free.code(), absl::StrFormat("listener \"%s\": %s", listener.name,
                                                       std::string(free.message())));
    }
    for (auto& sockets : change.added) {
      absl::StatusOr<int> fd = BindListenSocket(listener.address, listener.backlog);
      if (!fd.ok()) {
        for (int f : opened) ::close(f);
        return absl::Status(fd.status().code(),
                            absl::StrFormat("listener \"%s\": %s", listener.name,
                                            std::string(fd.status().message())));
      }
      opened.push_back(*fd);
      sockets.push_back({key, *fd, listener.backlog, OptionsOf(listener)});
    }
  }
  open_ = std::move(next);
  return change;
}

std::map<std::string, ListenerOptions> ListenerSet::Options(const Config& config) {
  std::map<std::string, ListenerOptions> options;
  for (const ListenerConfig& listener : config.listeners) {
    options[listener.address.ToString()] = OptionsOf(listener);
  }
  return options;
}

}  // namespace sluice
