#include "proxy/net/name_lookup.h"

#include <netdb.h>

#include <algorithm>
#include <memory>

namespace sluice {

NameLookup* NameLookup::Start(uv_loop_t* loop, const std::string& host, uint16_t port, Done done,
                              int* error) {
  auto lookup = std::unique_ptr<NameLookup>(new NameLookup(std::move(done)));
  lookup->request_.data = lookup.get();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const std::string service = std::to_string(port);
  *error = uv_getaddrinfo(loop, &lookup->request_, &NameLookup::OnResolved, host.c_str(),
                          service.c_str(), &hints);
  if (*error != 0) return nullptr;
  return lookup.release();  // freed in OnResolved
}

void NameLookup::Cancel() {
  done_ = nullptr;
  uv_cancel(reinterpret_cast<uv_req_t*>(&request_));  // if it has not started; fine if it has
}

void NameLookup::OnResolved(uv_getaddrinfo_t* request, int status, addrinfo* result) {
  std::unique_ptr<NameLookup> self(static_cast<NameLookup*>(request->data));
  std::vector<SocketAddress> addresses;
  for (addrinfo* a = status == 0 ? result : nullptr; a; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    SocketAddress address = SocketAddress::FromSockaddr(a->ai_addr);
    if (std::find(addresses.begin(), addresses.end(), address) == addresses.end()) {
      addresses.push_back(address);
    }
  }
  uv_freeaddrinfo(result);
  if (!self->done_) return;  // cancelled
  if (addresses.empty()) {
    self->done_(absl::UnavailableError(status != 0 ? uv_strerror(status) : "no address"));
    return;
  }
  self->done_(std::move(addresses));
}

}  // namespace sluice
