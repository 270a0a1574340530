// Normalizes the path of a request target before routing and filters see it, so that no route
// or auth rule can be bypassed by spelling the same path differently (RFC 3986 section 6.2.2).
// The normalized path is also what sluice forwards, so the origin serves what was matched.
//
// Pure function; any thread.
#ifndef SLUICE_PROXY_HTTP_PATH_NORMALIZER_H_
#define SLUICE_PROXY_HTTP_PATH_NORMALIZER_H_

#include <string>
#include <string_view>

namespace sluice {

struct PathNormalizerOptions {
  bool merge_slashes = true;         // "/a//b" -> "/a/b"
  bool reject_encoded_slash = true;  // "%2F", "%5C" and a raw "\" are refused
  bool reject_encoded_nul = true;    // "%00" is refused
};

// Normalizes `path` (the part of an origin-form target before '?') into `out`:
//  - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are decoded, other escapes
//    keep their encoding with upper-case hex digits;
//  - "." and ".." segments are removed (RFC 3986 section 5.2.4), never climbing above "/";
//  - repeated slashes are merged when configured;
//  - a dot segment with path parameters ("..;x", ".;x") is refused: servlet containers read it
//    as the dot segment, so the origin would serve another path than the one routed.
// Returns nullptr on success, or a short reason when the path must be refused (400).
const char* NormalizePath(std::string_view path, const PathNormalizerOptions& options,
                          std::string* out);

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_PATH_NORMALIZER_H_
