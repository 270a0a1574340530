// Fuzzes path normalization. Invariants: the output starts with '/', contains no "." or ".."
// segment and, with slashes merged, no "//"; and normalizing it again changes nothing
// (idempotence: what was matched is exactly what is forwarded).
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/http/path_normalizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  sluice::PathNormalizerOptions options;
  options.merge_slashes = data[0] & 1;
  options.reject_encoded_slash = data[0] & 2;
  options.reject_encoded_nul = data[0] & 4;
  std::string_view path(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string once;
  if (sluice::NormalizePath(path, options, &once) != nullptr) return 0;
  if (once.empty() || once.front() != '/') std::abort();
  if (once.find("/./") != std::string::npos || once.find("/../") != std::string::npos) std::abort();
  if (once.size() >= 2 && (once.ends_with("/.") || once.ends_with("/.."))) std::abort();
  if (options.merge_slashes && once.find("//") != std::string::npos) std::abort();
  std::string twice;
  if (sluice::NormalizePath(once, options, &twice) != nullptr) std::abort();
  if (twice != once) std::abort();
  return 0;
}
