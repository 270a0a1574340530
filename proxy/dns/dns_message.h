// DNS messages for the DNS step: queries for the record sets it manages, RFC 2136 updates
// signed with TSIG (HMAC-SHA256), and the parser of what the server answers. Built, signed and
// parsed with libldns (Debian's libldns3): no DNS wire code of sluice's own. No I/O here
// (proxy/dns/dns_exchange.h sends them).
#ifndef SLUICE_PROXY_DNS_DNS_MESSAGE_H_
#define SLUICE_PROXY_DNS_DNS_MESSAGE_H_

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "steering/dns_change.h"

namespace sluice {

// A TSIG key (RFC 8945) as configured.
struct TsigKey {
  std::string name;                       // absolute, lower case: "sluice-update."
  std::string algorithm = "hmac-sha256";  // the only one accepted
  std::string secret;                     // base64
};

// A key file: BIND's format (`key "name" { algorithm hmac-sha256; secret "..."; };`, what
// tsig-keygen and knot's keymgr -t print) or one line `hmac-sha256:name:secret` (kdig -y).
absl::StatusOr<TsigKey> ParseTsigKey(std::string_view text);

// A query for one record set (no recursion).
absl::StatusOr<std::string> BuildDnsQuery(uint16_t id, const std::string& name,
                                          const std::string& type);

// An update of `zone` that holds the change's prerequisites (each record set exactly as read;
// an empty one must not exist), removes and adds its records (adds with `ttl` seconds),
// signed with `key` when given. `request_mac` receives the request's MAC (the response's TSIG
// covers it).
absl::StatusOr<std::string> BuildDnsUpdate(uint16_t id, const std::string& zone,
                                           const DnsChange& change, uint32_t ttl,
                                           const TsigKey* key, std::string* request_mac);

// What a server answered.
struct DnsReply {
  uint16_t id = 0;
  int rcode = 0;  // 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED, 8 NXRRSET, ...
  bool truncated = false;
  std::vector<DnsRecord> answers;  // A and AAAA records of the answer section (class IN)
  bool signed_reply = false;       // it carries a TSIG record
  int tsig_error = 0;              // that record's error (16 BADSIG, 17 BADKEY, 18 BADTIME)
};
absl::StatusOr<DnsReply> ParseDnsReply(std::string_view wire);

// Whether `wire` (a reply to a request whose MAC was `request_mac`) is signed by `key`.
bool VerifyDnsReply(std::string_view wire, const TsigKey& key, const std::string& request_mac);

// "NOERROR", "SERVFAIL", "NXRRSET", ...; "RCODE 23" for others. And TSIG errors ("BADSIG").
std::string DnsRcodeName(int rcode);
std::string TsigErrorName(int error);

// The record set of `name` and `type` in a reply (data only).
std::set<std::string> RRsetIn(const DnsReply& reply, const std::string& name,
                              const std::string& type);

}  // namespace sluice

#endif  // SLUICE_PROXY_DNS_DNS_MESSAGE_H_
