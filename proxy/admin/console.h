// The steering console: one page for the browser at /ui/ on the admin listener (what traffic
// engineers look at during an incident). Its files (proxy/admin/console/) are compiled into the
// binary by cmake/embed_files.cmake: nothing is fetched from anywhere at run time. The page
// itself holds no data: it asks the admin API with the bearer token typed into it, so the files
// are served without a token, to a Host the API answers (no DNS rebinding), with a strict
// Content-Security-Policy (no inline script, nothing from elsewhere) and no framing.
#ifndef SLUICE_PROXY_ADMIN_CONSOLE_H_
#define SLUICE_PROXY_ADMIN_CONSOLE_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {

struct EmbeddedFile {
  std::string_view url;    // "/ui/console.js"
  std::string_view bytes;  // the file as built
};

// Generated at build time (console_files.cc): the page, its script and its style sheet.
const std::vector<EmbeddedFile>& ConsoleFiles();

struct ConsoleAnswer {
  int status = 200;
  std::string content_type;
  std::string_view body;  // the embedded bytes (static), or a short message
  std::vector<std::pair<std::string, std::string>> headers;
};

class Console {
 public:
  Console();
  // Whether `path` is the console's: "/ui" or anything under "/ui/".
  static bool Owns(std::string_view path);
  // GET or HEAD of `path`: the file (200, or 304 when `if_none_match` names its ETag), a
  // redirect from "/ui" to "/ui/", or 404. Every answer carries the security headers.
  ConsoleAnswer Serve(std::string_view path, std::string_view if_none_match) const;
  // The headers every console answer carries (also what tests check).
  static std::vector<std::pair<std::string, std::string>> SecurityHeaders();
  // Bytes of all files together (the page's weight without its data).
  size_t total_bytes() const;

 private:
  struct File {
    std::string_view url;
    std::string_view bytes;
    std::string content_type;
    std::string etag;  // a quoted digest of the bytes
  };
  std::vector<File> files_;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_ADMIN_CONSOLE_H_
