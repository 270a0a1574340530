#include "common/units.h"
#include "common/strings.h"

#include <string>

#include "absl/strings/str_format.h"

namespace sluice {

absl::StatusOr<uint64_t> ParseByteSize(std::string_view text) {
  std::string_view t = StripWhitespace(text);
  size_t digits = 0;
  while (digits < t.size() && IsAsciiDigit(static_cast<unsigned char>(t[digits]))) {
    ++digits;
  }
  uint64_t number = 0;
  if (digits == 0 || !ParseInteger(t.substr(0, digits), &number)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("expected a size such as 65536, 64KiB or 1MiB, got \"%s\"", text));
  }
  std::string unit = AsciiLower(StripWhitespace(t.substr(digits)));
  uint64_t multiplier = 0;
  if (unit.empty() || unit == "b") {
    multiplier = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    multiplier = uint64_t{1} << 10;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    multiplier = uint64_t{1} << 20;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    multiplier = uint64_t{1} << 30;
  } else {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown size unit \"%s\" in \"%s\" (use B, KiB, MiB or GiB)", unit, text));
  }
  if (number > UINT64_MAX / multiplier) {
    return absl::InvalidArgumentError(absl::StrFormat("size \"%s\" is too large", text));
  }
  return number * multiplier;
}

absl::StatusOr<absl::Duration> ParseDurationText(std::string_view text) {
  std::string t(StripWhitespace(text));
  absl::Duration d;
  bool has_unit = !t.empty() && !IsAsciiDigit(static_cast<unsigned char>(t.back()));
  if (t == "0") {
    return absl::ZeroDuration();
  }
  if (!has_unit || !absl::ParseDuration(t, &d)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("expected a duration such as 250ms, 10s or 2m, got \"%s\"", text));
  }
  if (d < absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("duration must be finite and not negative, got \"%s\"", text));
  }
  return d;
}

}  // namespace sluice
