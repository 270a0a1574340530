// Fuzzes the response side of the HTTP/1.1 parser, as the upstream codec uses it. The first
// byte after the split byte also chooses the request method (HEAD or not) and whether an
// upgrade was requested.
#include <cstdlib>
#include <string>

#include "proxy/http/http1_parser.h"
#include "tests/fuzz/fuzz_input.h"

namespace sluice {
namespace {

class Handler : public Http1Parser::Handler {
 public:
  Http1Parser* parser = nullptr;
  void OnHead() override {
    ResponseHeadPtr head = parser->TakeResponse();
    if (head->status < 101 || head->status > 599) std::abort();
  }
  void OnBody(std::string_view) override {}
  void OnMessageComplete() override {}
};

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sluice::Http1Parser;
  if (size < 2) return 0;
  sluice::Handler handler;
  Http1Parser parser(Http1Parser::Mode::kResponse, sluice::Http1Limits{}, &handler);
  handler.parser = &parser;
  parser.ExpectResponse((data[0] & 1) ? sluice::HttpMethod::kHead : sluice::HttpMethod::kGet,
                        (data[0] & 2) != 0);
  std::string pending;
  sluice::FuzzInput(data + 1, size - 1).ForEachRead([&](std::string_view read) {
    pending.append(read);
    while (!pending.empty()) {
      Http1Parser::Result r = parser.Execute(pending.data(), pending.size());
      pending.erase(0, r.consumed);
      switch (r.outcome) {
        case Http1Parser::Outcome::kNeedMore:
          return true;
        case Http1Parser::Outcome::kMessageComplete:
          parser.ResumeAfterMessage();
          continue;
        case Http1Parser::Outcome::kUpgrade:
        case Http1Parser::Outcome::kStopped:
          return false;
        case Http1Parser::Outcome::kError:
          if (r.status != 502) std::abort();
          return false;
      }
    }
    return true;
  });
  parser.Finish();
  return 0;
}
