// Feeds the same bytes to the one-pass Http1Parser and to the llhttp-based parser it replaced
// (tests/proxy/http/reference/) and says whether they agree: the same heads, the same body
// bytes, the same message ends, and the same verdict. Used by the differential unit test and
// the differential fuzz target.
//
// Where the two are allowed to differ, Differ() says so by name (Explained()): the one-pass
// parser is stricter about a response's status line (control characters, double spaces),
// accepts every chunk extension RFC 9112 allows (llhttp 8.1 refuses some), refuses a
// Content-Length of more than 18 digits, and answers an unknown method 501 whatever it looks
// like (llhttp answered RTSP's and PRI 400). Two refusals of one input may name different
// statuses when the input has more than one fault.
#ifndef SLUICE_TESTS_PROXY_HTTP_HTTP1_DIFFERENTIAL_H_
#define SLUICE_TESTS_PROXY_HTTP_HTTP1_DIFFERENTIAL_H_

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "proxy/http/http1_parser.h"
#include "tests/proxy/http/reference/llhttp_parser.h"

namespace sluice::differential {

struct Run {
  std::string log;  // heads, bodies and ends as the handler saw them
  bool failed = false;
  int status = 0;
  std::string reason;
};

inline std::string Describe(const HeaderMap& headers) {
  std::string out;
  for (size_t i = 0; i < headers.size(); ++i) {
    out.append(headers.name(i)).append("=").append(headers.value(i));
    out += "/" + std::to_string(static_cast<int>(headers.kind(i))) + ";";
  }
  return out;
}

template <typename Parser>
class Recorder : public Http1Parser::Handler {
 public:
  Recorder(Http1Parser::Mode mode, const Http1Limits& limits) : parser_(mode, limits, this) {}

  void OnHead() override {
    Flush();
    if (auto request = parser_.TakeRequest()) {
      const RequestHead& h = *request;
      absl::StrAppendFormat(&run_.log, "REQ %s %s v%d f%d cl%u ka%d ec%d up%d [%s]\n",
                            h.method_text, h.target, static_cast<int>(h.version),
                            static_cast<int>(h.framing), h.content_length, h.keep_alive,
                            h.expect_continue, h.upgrade, Describe(h.headers));
    } else if (auto response = parser_.TakeResponse()) {
      const ResponseHead& h = *response;
      absl::StrAppendFormat(&run_.log, "RESP %d %s v%d f%d cl%u ka%d [%s]\n", h.status, h.reason,
                            static_cast<int>(h.version), static_cast<int>(h.framing),
                            h.content_length, h.keep_alive, Describe(h.headers));
    }
  }
  void OnBody(std::string_view data) override { body_.append(data); }
  void OnMessageComplete() override {
    Flush();
    run_.log += "END\n";
  }

  // Feeds `input` in reads of the sizes `cuts` gives (cycled), resuming as the codecs do.
  Run Feed(std::string_view input, const std::vector<size_t>& cuts, HttpMethod request_method,
           bool upgrade_requested) {
    std::string pending;
    size_t pos = 0;
    size_t cut = 0;
    parser_.ExpectResponse(request_method, upgrade_requested);
    bool ended = false;
    while (!ended && (pos < input.size() || !pending.empty())) {
      size_t n =
          std::min(input.size() - pos, cuts.empty() ? input.size() : cuts[cut++ % cuts.size()]);
      if (n == 0 && pos < input.size()) n = 1;
      pending.append(input.substr(pos, n));
      pos += n;
      while (true) {
        auto r = parser_.Execute(pending.data(), pending.size());
        pending.erase(0, r.consumed);
        if (r.outcome == Http1Parser::Outcome::kMessageComplete) {
          parser_.ResumeAfterMessage();
          parser_.ExpectResponse(request_method, upgrade_requested);
          if (pending.empty()) break;
          continue;
        }
        if (r.outcome == Http1Parser::Outcome::kUpgrade) {
          run_.log += "UPGRADE\n";
          ended = true;
          break;
        }
        if (r.outcome == Http1Parser::Outcome::kError) {
          run_.failed = true;
          run_.status = r.status;
          run_.reason = r.reason;
          ended = true;
          break;
        }
        break;  // kNeedMore (kStopped never: no handler stops)
      }
      if (pos >= input.size() && !ended && !pending.empty()) {
        // Bytes a message cannot take yet (none are left unconsumed otherwise).
        break;
      }
    }
    if (!ended) {
      auto r = parser_.Finish();
      if (r.outcome == Http1Parser::Outcome::kError) {
        run_.failed = true;
        run_.status = r.status;
        run_.reason = r.reason;
      }
    }
    Flush();
    return run_;
  }

 private:
  void Flush() {
    if (body_.empty()) return;
    run_.log += "BODY " + std::to_string(body_.size()) + " " + body_ + "\n";
    body_.clear();
  }

  Parser parser_;
  Run run_;
  std::string body_;
};

struct Verdict {
  Run one_pass;
  Run reference;
  bool same = false;       // the same log and the same verdict
  bool explained = false;  // different, in a way listed above
  std::string why;         // which allowed difference
};

// Whether the bytes hold something the parsers may judge differently on purpose.
inline std::string AllowedDifference(std::string_view input, Http1Parser::Mode mode) {
  if (mode == Http1Parser::Mode::kResponse) {
    // Every line that starts like a status line.
    for (size_t start = 0; start < input.size();) {
      size_t end = input.find('\n', start);
      if (end == std::string_view::npos) end = input.size();
      std::string_view line = input.substr(start, end - start);
      start = end + 1;
      if (line.substr(0, 5) != "HTTP/") continue;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      for (char c : line) {
        const unsigned char u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) return "control character in a status line";
      }
      if (line.find("  ") != std::string_view::npos) return "double space in a status line";
      if (line.size() > 12 && line[8] == ' ' && line[12] != ' ') {
        return "status code of more than three digits";
      }
    }
  }
  // llhttp reads a body after a 1xx, 204 or 304 head that announces one; RFC 9112 says they
  // have none, and so does sluice.
  if (mode == Http1Parser::Mode::kResponse) {
    for (const char* status : {" 100 ", " 101 ", " 103 ", " 204 ", " 304 "}) {
      if (input.find(status) != std::string_view::npos &&
          (ContainsIgnoreCase(input, "content-length") ||
           ContainsIgnoreCase(input, "transfer-encoding"))) {
        return "a body announced by a response that has none";
      }
    }
  }
  // A Transfer-Encoding that ends in an empty element ("chunked , "): llhttp did not take it
  // as chunked, and the parser before took a response's chunked body as one read until close.
  // sluice refuses it.
  for (size_t at = input.find("chunked"); at != std::string_view::npos;
       at = input.find("chunked", at + 1)) {
    std::string_view rest = input.substr(at + 7);
    while (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t')) rest.remove_prefix(1);
    if (!rest.empty() && rest[0] == ',') return "a coding list ending in an empty element";
  }
  // HTAB in a Transfer-Encoding or Content-Length value's whitespace: llhttp refuses it, RFC
  // 9110 calls it whitespace to trim, and so does sluice.
  for (size_t at = input.find('\t'); at != std::string_view::npos; at = input.find('\t', at + 1)) {
    std::string_view line = input.substr(0, at);
    line = line.substr(line.rfind('\n') + 1);
    if (ContainsIgnoreCase(line, "transfer-encoding") ||
        ContainsIgnoreCase(line, "content-length")) {
      return "HTAB in a framing value's whitespace";
    }
  }
  // A chunk-size line with an extension: ';' right after a hex digit.
  for (size_t i = 1; i < input.size(); ++i) {
    const char c = input[i - 1];
    if (input[i] == ';' && ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))) {
      return "chunk extension";
    }
  }
  // A run of 19 or more digits (a Content-Length llhttp takes and sluice does not).
  size_t digits = 0;
  for (char c : input) {
    digits = (c >= '0' && c <= '9') ? digits + 1 : 0;
    if (digits >= 19) return "19-digit number";
  }
  return "";
}

inline Verdict Compare(std::string_view input, Http1Parser::Mode mode, const Http1Limits& limits,
                       const std::vector<size_t>& cuts, HttpMethod request_method,
                       bool upgrade_requested) {
  Verdict v;
  v.one_pass =
      Recorder<Http1Parser>(mode, limits).Feed(input, cuts, request_method, upgrade_requested);
  v.reference = Recorder<reference::LlhttpParser>(mode, limits)
                    .Feed(input, cuts, request_method, upgrade_requested);
  v.same = v.one_pass.failed == v.reference.failed && v.one_pass.log == v.reference.log;
  if (!v.same) {
    v.why = AllowedDifference(input, mode);
    v.explained = !v.why.empty();
  }
  return v;
}

}  // namespace sluice::differential

#endif  // SLUICE_TESTS_PROXY_HTTP_HTTP1_DIFFERENTIAL_H_
