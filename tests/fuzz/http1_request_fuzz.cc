// Fuzzes the request side of the HTTP/1.1 parser (llhttp + HeadScanner + validation) and the
// request normalizer, with input split into arbitrary reads. Invariants: no crash, no
// sanitizer report, and an error always carries a 4xx/5xx status.
#include <cstdlib>
#include <string>

#include "proxy/forward/request_normalizer.h"
#include "proxy/http/http1_parser.h"
#include "tests/fuzz/fuzz_input.h"

namespace sluice {
namespace {

class Handler : public Http1Parser::Handler {
 public:
  Http1Parser* parser = nullptr;
  void OnHead() override {
    RequestHeadPtr head = parser->TakeRequest();
    RequestVerdict verdict = NormalizeRequest(head.get(), PathNormalizerOptions{});
    if (!verdict.ok() && (verdict.status < 400 || verdict.status > 599)) std::abort();
  }
  void OnBody(std::string_view) override {}
  void OnMessageComplete() override {}
};

}  // namespace
}  // namespace sluice

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sluice::Http1Parser;
  sluice::Handler handler;
  sluice::Http1Limits limits;
  limits.max_head_bytes = 4096;
  limits.max_headers = 32;
  limits.max_target_bytes = 1024;
  limits.max_body_bytes = 1 << 20;
  Http1Parser parser(Http1Parser::Mode::kRequest, limits, &handler);
  handler.parser = &parser;
  std::string pending;
  sluice::FuzzInput(data, size).ForEachRead([&](std::string_view read) {
    pending.append(read);
    while (!pending.empty()) {
      Http1Parser::Result r = parser.Execute(pending.data(), pending.size());
      if (r.consumed > pending.size()) std::abort();
      pending.erase(0, r.consumed);
      switch (r.outcome) {
        case Http1Parser::Outcome::kNeedMore:
          return true;
        case Http1Parser::Outcome::kMessageComplete:
          parser.ResumeAfterMessage();
          continue;
        case Http1Parser::Outcome::kUpgrade:
          parser.ResumeAfterRefusedUpgrade();
          continue;
        case Http1Parser::Outcome::kStopped:
          return false;
        case Http1Parser::Outcome::kError:
          if (r.status < 400 || r.status > 599) std::abort();
          return false;
      }
    }
    return true;
  });
  parser.Finish();
  return 0;
}
