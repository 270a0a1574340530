// Holds the one-pass HTTP/1.1 parser against the llhttp-based one it replaced
// (tests/proxy/http/http1_differential.h): the same heads, bodies, message ends and verdicts
// for any bytes, in any read sizes, or a difference the header lists. Byte 0: the read size;
// byte 1: request or response mode, HEAD or not, upgrade requested or not; the rest: the
// message bytes.
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "tests/proxy/http/http1_differential.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using sluice::Http1Parser;
  if (size < 3) return 0;
  const size_t step = data[0];
  const uint8_t flags = data[1];
  std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);
  const Http1Parser::Mode mode =
      (flags & 1) != 0 ? Http1Parser::Mode::kResponse : Http1Parser::Mode::kRequest;
  const sluice::Http1Limits limits{
      .max_head_bytes = 2048,
      .max_headers = 16,
      .max_target_bytes = 512,
      .max_body_bytes = mode == Http1Parser::Mode::kRequest ? 4096u : 0u};
  std::vector<size_t> cuts;
  if (step != 0) cuts.push_back(step);
  sluice::differential::Verdict v = sluice::differential::Compare(
      input, mode, limits, cuts,
      (flags & 2) != 0 ? sluice::HttpMethod::kHead : sluice::HttpMethod::kGet, (flags & 4) != 0);
  if (!v.same && !v.explained) {
    std::fprintf(stderr, "one-pass (%s %d %s):\n%s\nllhttp (%s %d %s):\n%s\n",
                 v.one_pass.failed ? "refused" : "accepted", v.one_pass.status,
                 v.one_pass.reason.c_str(), v.one_pass.log.c_str(),
                 v.reference.failed ? "refused" : "accepted", v.reference.status,
                 v.reference.reason.c_str(), v.reference.log.c_str());
    std::abort();
  }
  return 0;
}
