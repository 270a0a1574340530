#include "proxy/admin/console.h"

#include "absl/strings/str_format.h"
#include "common/sha256.h"
#include "common/strings.h"

namespace sluice {
namespace {

std::string ContentTypeOf(std::string_view url) {
  auto ends = [url](std::string_view suffix) {
    return url.size() >= suffix.size() && url.substr(url.size() - suffix.size()) == suffix;
  };
  if (ends(".html") || ends("/")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

// A strong validator: the first 16 bytes of the file's SHA-256, in hex, quoted.
std::string EtagOf(std::string_view bytes) {
  const Sha256Digest d = Sha256(bytes);
  std::string hex = "\"";
  for (size_t i = 0; i < 16; ++i) hex += absl::StrFormat("%02x", d[i]);
  return hex + "\"";
}

// If-None-Match: "*" or a list of (possibly weak) entity tags.
bool EtagMatches(std::string_view if_none_match, std::string_view etag) {
  if_none_match = StripWhitespace(if_none_match);
  if (if_none_match == "*") return true;
  while (!if_none_match.empty()) {
    size_t comma = if_none_match.find(',');
    std::string_view one = StripWhitespace(if_none_match.substr(0, comma));
    if (one.substr(0, 2) == "W/") one.remove_prefix(2);
    if (one == etag) return true;
    if (comma == std::string_view::npos) break;
    if_none_match.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

Console::Console() {
  for (const EmbeddedFile& f : ConsoleFiles()) {
    files_.push_back(File{f.url, f.bytes, ContentTypeOf(f.url), EtagOf(f.bytes)});
  }
}

bool Console::Owns(std::string_view path) { return path == "/ui" || path.substr(0, 4) == "/ui/"; }

std::vector<std::pair<std::string, std::string>> Console::SecurityHeaders() {
  return {
      // Scripts, styles and requests only from this listener; no inline script or style, no
      // plug-ins, no forms posted anywhere, no page may frame this one, and the browser
      // refuses any string that would be parsed as markup or script (Trusted Types with no
      // policy: the page only ever sets text).
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
       "require-trusted-types-for 'script'; trusted-types 'none'"},
      {"X-Frame-Options", "DENY"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
  };
}

size_t Console::total_bytes() const {
  size_t n = 0;
  for (const File& f : files_) n += f.bytes.size();
  return n;
}

ConsoleAnswer Console::Serve(std::string_view path, std::string_view if_none_match) const {
  ConsoleAnswer a;
  a.headers = SecurityHeaders();
  if (path == "/ui") {
    a.status = 308;
    a.content_type = "text/plain; charset=utf-8";
    a.body = "the console is at /ui/\n";
    a.headers.emplace_back("Location", "/ui/");
    return a;
  }
  for (const File& f : files_) {
    if (f.url != path) continue;
    a.content_type = f.content_type;
    // Revalidated on every load: a new binary's console is never mixed with an old one's.
    a.headers.emplace_back("Cache-Control", "no-cache");
    a.headers.emplace_back("ETag", f.etag);
    if (!if_none_match.empty() && EtagMatches(if_none_match, f.etag)) {
      a.status = 304;
      return a;
    }
    a.body = f.bytes;
    return a;
  }
  a.status = 404;
  a.content_type = "text/plain; charset=utf-8";
  a.body = "no such file in the console\n";
  return a;
}

}  // namespace sluice
