// Parsing of the human-friendly quantities used in configuration files and flags.
#ifndef SLUICE_COMMON_UNITS_H_
#define SLUICE_COMMON_UNITS_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sluice {

// "65536", "512B", "64KiB", "16MiB", "1GiB" (binary units; "KB"/"MB"/"GB" are accepted as
// the same binary multiples, as nginx does). Fails on overflow, negatives and junk.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

// "250ms", "10s", "2m", "1h30m" (absl::ParseDuration syntax). A unit is required, and the
// duration must not be negative or infinite.
absl::StatusOr<absl::Duration> ParseDurationText(std::string_view text);

}  // namespace sluice

#endif  // SLUICE_COMMON_UNITS_H_
