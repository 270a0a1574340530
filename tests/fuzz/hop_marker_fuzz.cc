// Fuzzes the tunnel hop marker (steering/hop_marker.h), which every sluice reads from any
// client's request. Invariants: no crash, no sanitizer report; a value that parses names a
// valid region, a canonical timestamp, a 16-hex nonce and a 64-hex MAC; a marker that verifies
// parses, and a freshly signed marker for the parsed fields verifies (the format round-trips).
#include <cstdlib>
#include <string>

#include "steering/hop_marker.h"
#include "steering/steering_table.h"

namespace {

const sluice::HopSigner& Signer() {
  static const sluice::HopSigner signer({std::string(32, 'k')});
  return signer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view value(reinterpret_cast<const char*>(data), size);
  const sluice::HopRequest line{"GET", "/x", "", "example.com", "192.0.2.1", "-"};
  sluice::HopMarker marker;
  const bool parsed = sluice::ParseHopMarker(value, &marker);
  if (parsed) {
    if (!sluice::ValidRegionName(marker.from) || marker.mac_hex.size() != 64 ||
        marker.timestamp < 0 || marker.request_id.empty()) {
      std::abort();
    }
    // What the parser accepted, signed properly, must verify at the same time.
    std::string signed_value = Signer().Sign(marker.from, "eu-west-1", marker.timestamp,
                                             marker.nonce, marker.request_id, line);
    sluice::HopMarker again;
    if (Signer().Verify(signed_value, "eu-west-1", marker.timestamp, 30, line, &again) !=
            sluice::HopVerdict::kValid ||
        again.from != marker.from || again.request_id != marker.request_id ||
        again.nonce != marker.nonce) {
      std::abort();
    }
  }
  sluice::HopMarker verified;
  sluice::HopVerdict verdict = Signer().Verify(value, "eu-west-1", 1763790000, 30, line, &verified);
  if (verdict == sluice::HopVerdict::kValid && !parsed) std::abort();
  if (verdict == sluice::HopVerdict::kMalformed && parsed) std::abort();
  return 0;
}
