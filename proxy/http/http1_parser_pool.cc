#include "proxy/http/http1_parser_pool.h"

#include <vector>

namespace sluice {
namespace {

constexpr size_t kMaxFreeParsers = 256;

struct ParserFreeLists {
  std::vector<std::unique_ptr<Http1Parser>> request;
  std::vector<std::unique_ptr<Http1Parser>> response;

  std::vector<std::unique_ptr<Http1Parser>>& For(Http1Parser::Mode mode) {
    return mode == Http1Parser::Mode::kRequest ? request : response;
  }
};

ParserFreeLists& FreeParsers() {
  thread_local ParserFreeLists lists;
  return lists;
}

}  // namespace

std::unique_ptr<Http1Parser> TakeHttp1Parser(Http1Parser::Mode mode, const Http1Limits& limits,
                                             Http1Parser::Handler* handler) {
  std::vector<std::unique_ptr<Http1Parser>>& free = FreeParsers().For(mode);
  if (free.empty()) return std::make_unique<Http1Parser>(mode, limits, handler);
  std::unique_ptr<Http1Parser> parser = std::move(free.back());
  free.pop_back();
  parser->Reinit(limits, handler);
  return parser;
}

void GiveHttp1Parser(Http1Parser::Mode mode, std::unique_ptr<Http1Parser> parser) {
  if (!parser) return;
  // A pooled parser holds no head: heads go back to their own pool now, while it exists.
  parser->TakeRequest().reset();
  parser->TakeResponse().reset();
  std::vector<std::unique_ptr<Http1Parser>>& free = FreeParsers().For(mode);
  if (free.size() < kMaxFreeParsers) free.push_back(std::move(parser));
}

}  // namespace sluice
