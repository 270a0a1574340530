#include "proxy/http/path_normalizer.h"

#include "common/strings.h"

namespace sluice {
namespace {

bool IsUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Removes the last segment (and its leading slash) from `out`, staying at or above "/".
void PopSegment(std::string* out) {
  size_t slash = out->rfind('/');
  out->resize(slash == std::string::npos ? 0 : slash);
}

}  // namespace

const char* NormalizePath(std::string_view path, const PathNormalizerOptions& options,
                          std::string* out) {
  out->clear();
  if (path.empty() || path.front() != '/') return "path must start with /";

  // Pass 1: decode unreserved escapes, canonicalize the others, refuse what is configured.
  std::string decoded;
  decoded.reserve(path.size());
  bool needs_segments = false;
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {
      if (i + 2 >= path.size()) return "truncated percent-encoding";
      int hi = HexValue(path[i + 1]);
      int lo = HexValue(path[i + 2]);
      if (hi < 0 || lo < 0) return "invalid percent-encoding";
      unsigned char byte = static_cast<unsigned char>(hi * 16 + lo);
      if (byte == 0 && options.reject_encoded_nul) return "encoded NUL in path";
      if ((byte == '/' || byte == '\\') && options.reject_encoded_slash) {
        return "encoded slash in path";
      }
      if (IsUnreserved(byte)) {
        decoded.push_back(static_cast<char>(byte));
        if (byte == '.') needs_segments = true;
      } else {
        static constexpr char kHex[] = "0123456789ABCDEF";
        decoded.push_back('%');
        decoded.push_back(kHex[byte >> 4]);
        decoded.push_back(kHex[byte & 15]);
      }
      i += 2;
      continue;
    }
    if (c == '\\' && options.reject_encoded_slash) return "backslash in path";
    if (c == '#') return "fragment in request target";
    if (c == '.') needs_segments = true;
    decoded.push_back(c);
  }

  // Pass 2: merge slashes and remove dot segments, one segment at a time.
  if (!needs_segments && (!options.merge_slashes || decoded.find("//") == std::string::npos)) {
    *out = std::move(decoded);
    return nullptr;
  }
  out->reserve(decoded.size());
  size_t i = 0;
  while (i < decoded.size()) {
    // decoded[i] == '/' here: every segment starts after a slash.
    size_t end = decoded.find('/', i + 1);
    if (end == std::string::npos) end = decoded.size();
    std::string_view segment(decoded.data() + i + 1, end - i - 1);
    // "..;x" and ".;x": servlet containers (Tomcat, Jetty, Spring) drop the parameters and
    // climb, so a route matched on the spelled path would not be the one the origin serves.
    if (segment.starts_with(".;") || segment.starts_with("..;")) {
      return "path parameter on a dot segment";
    }
    bool last = end == decoded.size();
    if (segment == ".") {
      if (last) out->push_back('/');
    } else if (segment == "..") {
      PopSegment(out);
      if (last) out->push_back('/');
    } else if (segment.empty() && options.merge_slashes && !last) {
      // "//": drop the empty segment.
    } else {
      out->push_back('/');
      out->append(segment);
    }
    i = end;
  }
  if (out->empty()) out->push_back('/');
  return nullptr;
}

}  // namespace sluice
