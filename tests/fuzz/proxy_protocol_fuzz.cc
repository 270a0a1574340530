// Fuzzes the PROXY protocol v1/v2 parser. Invariants: a parsed header never claims more bytes
// than it was given, and parsing a prefix never reports an error that the whole would not.
#include <cstdlib>
#include <string_view>

#include "proxy/net/proxy_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  sluice::ProxyParseResult whole = sluice::ParseProxyHeader(input);
  if (whole.status == sluice::ProxyParseResult::Status::kDone && whole.consumed > size)
    std::abort();
  if (whole.status == sluice::ProxyParseResult::Status::kDone) {
    // The same header followed by anything parses to the same length.
    sluice::ProxyParseResult prefix = sluice::ParseProxyHeader(input.substr(0, whole.consumed));
    if (prefix.status != whole.status || prefix.consumed != whole.consumed) std::abort();
  }
  return 0;
}
