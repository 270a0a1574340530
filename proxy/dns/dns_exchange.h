// One DNS message exchanged with a server over TCP (RFC 1035 4.2.2: a two-byte length before
// each message; RFC 7766): connect, send, read one whole reply, close. TCP so an update and its
// TSIG never meet UDP's size limit or a lost datagram; the caller retries. Frees itself after
// reporting. Control thread only.
#ifndef SLUICE_PROXY_DNS_DNS_EXCHANGE_H_
#define SLUICE_PROXY_DNS_DNS_EXCHANGE_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/socket_address.h"
#include "proxy/event/loop_context.h"

namespace sluice {

// The reply's bytes, or why there is none (Unavailable: connect, reset, timeout).
using DnsExchangeCallback = std::function<void(absl::StatusOr<std::string> reply)>;

class DnsExchange;
// `callback` runs exactly once, on the loop, never from inside this call.
DnsExchange* StartDnsExchange(LoopContext* context, const SocketAddress& server,
                              std::string message, absl::Duration timeout,
                              DnsExchangeCallback callback);
// The callback will not run; the exchange frees itself.
void CancelDnsExchange(DnsExchange* exchange);

}  // namespace sluice

#endif  // SLUICE_PROXY_DNS_DNS_EXCHANGE_H_
