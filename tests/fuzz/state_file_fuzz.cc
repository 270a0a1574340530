// Fuzzes the steering state file decoder (steering/state_file.h), which reads what a crash, a
// full disk or a hand edit left behind. Invariants: no crash, no sanitizer report; whatever
// decodes encodes to text that decodes to the same encoding (the format round-trips).
#include <cstdlib>
#include <string>

#include "steering/state_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<sluice::ControllerState> state = sluice::DecodeControllerState(text);
  if (!state.ok()) {
    if (state.status().message().empty()) std::abort();  // every refusal says why
    return 0;
  }
  std::string encoded = sluice::EncodeControllerState(*state);
  absl::StatusOr<sluice::ControllerState> again = sluice::DecodeControllerState(encoded);
  if (!again.ok() || sluice::EncodeControllerState(*again) != encoded) std::abort();
  return 0;
}
