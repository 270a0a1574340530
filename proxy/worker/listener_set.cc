#include "proxy/worker/listener_set.h"

#include <unistd.h>

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
    // The workers share the port among themselves, with no other process.
    if (absl::Status free = CheckPortFree(listener.address); !free.ok()) {
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
