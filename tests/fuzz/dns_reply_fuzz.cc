// Fuzzes what sluice reads from the authoritative DNS server (proxy/dns/dns_message.h): the
// parser of replies, and the TSIG check of a signed reply, on the same bytes.
// Invariants: no crash, no sanitizer report; every refusal says why; the answers a reply
// yields are canonical records (they canonicalize to themselves) of the answer's own names;
// a reply that verifies is one the parser reads as signed.
#include <cstdlib>
#include <string>

#include "proxy/dns/dns_message.h"

namespace {

// The key and request MAC the seeds' signed reply was made with (corpus/dns_reply/).
const sluice::TsigKey& FuzzKey() {
  static const sluice::TsigKey key = [] {
    sluice::TsigKey k;
    k.name = "sluice-update.";
    k.secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    return k;
  }();
  return key;
}

// The request MAC as ldns gives it: its 2-byte length, then the 32 bytes of HMAC-SHA256.
const std::string& FuzzRequestMac() {
  static const std::string mac = std::string("\0\x20", 2) + std::string(32, '\x5a');
  return mac;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view wire(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sluice::DnsReply> reply = sluice::ParseDnsReply(wire);
  if (!reply.ok()) {
    if (reply.status().message().empty()) std::abort();
  } else {
    for (const sluice::DnsRecord& r : reply->answers) {
      absl::StatusOr<sluice::DnsRecord> again =
          sluice::CanonicalDnsRecord(".", r.name, r.type, r.data);
      if (!again.ok() || !(*again == r)) std::abort();
      if (sluice::RRsetIn(*reply, r.name, r.type).count(r.data) != 1) std::abort();
    }
    if (sluice::DnsRcodeName(reply->rcode).empty()) std::abort();
    if (sluice::TsigErrorName(reply->tsig_error).empty()) std::abort();
  }
  if (sluice::VerifyDnsReply(wire, FuzzKey(), FuzzRequestMac())) {
    if (!reply.ok() || !reply->signed_reply) std::abort();
  }
  return 0;
}
