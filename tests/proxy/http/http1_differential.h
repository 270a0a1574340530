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
#include <type_traits>
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

// Where sluice's rules changed on purpose, the old parser's head is brought to the new rule
// before the two are compared: a chunked request with Expect: 100-continue gets its 100 (its
// length is unknown, not zero), and in HTTP/1.0 close wins over keep-alive (RFC 9112 9.3), as
// does Transfer-Encoding in a response (section 6.1).
inline bool ListsClose(const HeaderMap& headers) {
  bool close = false;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (headers.kind(i) != HeaderKind::kConnection &&
        headers.kind(i) != HeaderKind::kProxyConnection &&
        headers.kind(i) != HeaderKind::kConnectionListed) {
      continue;
    }
    if (!EqualsIgnoreCase(headers.name(i), "connection") &&
        !EqualsIgnoreCase(headers.name(i), "proxy-connection")) {
      continue;
    }
    ForEachListElement(headers.value(i), [&](std::string_view token) {
      if (EqualsIgnoreCase(token, "close")) close = true;
    });
  }
  return close;
}

inline void AdjustReference(RequestHead& h) {
  if (h.framing == BodyFraming::kChunked && h.version == HttpVersion::kHttp11) {
    auto expect = h.headers.GetKind(HeaderKind::kExpect);
    if (expect && EqualsIgnoreCase(*expect, "100-continue")) h.expect_continue = true;
  }
  if (h.version == HttpVersion::kHttp10 && ListsClose(h.headers)) h.keep_alive = false;
}

inline void AdjustReference(ResponseHead& h) {
  if (h.version == HttpVersion::kHttp10 &&
      (ListsClose(h.headers) || h.headers.CountKind(HeaderKind::kTransferEncoding) > 0)) {
    h.keep_alive = false;
  }
}

template <typename Parser>
class Recorder : public Http1Parser::Handler {
  static constexpr bool kReference = !std::is_same_v<Parser, Http1Parser>;

 public:
  Recorder(Http1Parser::Mode mode, const Http1Limits& limits) : parser_(mode, limits, this) {}

  void OnHead() override {
    Flush();
    if (auto request = parser_.TakeRequest()) {
      if constexpr (kReference) AdjustReference(*request);
      const RequestHead& h = *request;
      absl::StrAppendFormat(&run_.log, "REQ %s %s v%d f%d cl%u ka%d ec%d up%d [%s]\n",
                            h.method_text, h.target, static_cast<int>(h.version),
                            static_cast<int>(h.framing), h.content_length, h.keep_alive,
                            h.expect_continue, h.upgrade, Describe(h.headers));
    } else if (auto response = parser_.TakeResponse()) {
      if constexpr (kReference) AdjustReference(*response);
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

// The input's lines (split at LF, CR kept), for the checks below.
inline std::vector<std::string_view> Lines(std::string_view input) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < input.size();) {
    size_t end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    lines.push_back(input.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

inline bool IsFieldNamed(std::string_view line, std::string_view name) {
  return line.size() > name.size() && line[name.size()] == ':' &&
         EqualsIgnoreCase(line.substr(0, name.size()), name);
}

inline bool IsHex(char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

// Whether the bytes hold something the parsers judge differently on purpose, and what: each
// check looks at the line or the message it is about.
inline std::string AllowedDifference(std::string_view input, Http1Parser::Mode mode) {
  const std::vector<std::string_view> lines = Lines(input);
  const bool response = mode == Http1Parser::Mode::kResponse;
  // The message a line belongs to: its start line's facts, carried until the next one.
  bool http10 = false, bodiless_status = false, close = false, keep_alive = false;
  for (std::string_view line : lines) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    // A status line may follow a body on the same line of the input (the body has no LF).
    if (response && line.find("HTTP/") != std::string_view::npos) {
      line = line.substr(line.find("HTTP/"));
    }
    const bool status_line = response && line.substr(0, 5) == "HTTP/";
    const bool request_line = !response && line.find(" HTTP/1.") != std::string_view::npos;
    if (status_line || request_line) {
      http10 = line.find("HTTP/1.0") != std::string_view::npos;
      bodiless_status = false;
      close = keep_alive = false;
    }
    if (status_line) {
      for (char c : line) {
        const unsigned char u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) return "control character in a status line";
      }
      if (line.find("  ") != std::string_view::npos) return "double space in a status line";
      if (line.size() > 12 && line[8] == ' ' && line[12] != ' ') {
        return "status code of more than three digits";
      }
      // llhttp reads a body after a 1xx, 204 or 304 head that announces one; RFC 9112 says
      // they have none, and so does sluice.
      std::string_view code = line.substr(9, 3);
      bodiless_status = code.size() == 3 && (code[0] == '1' || code == "204" || code == "304");
      continue;
    }
    const bool framing_field =
        IsFieldNamed(line, "transfer-encoding") || IsFieldNamed(line, "content-length");
    if (bodiless_status && framing_field) return "a body announced by a response that has none";
    if (IsFieldNamed(line, "transfer-encoding")) {
      // A coding list ending in an empty element ("chunked , "): llhttp did not take it as
      // chunked, and the parser before read such a response's body until close. sluice
      // refuses it.
      std::string_view value = line.substr(line.find(':') + 1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      if (!value.empty() && value.back() == ',') return "a coding list ending in an empty element";
      // An HTTP/1.0 response with Transfer-Encoding ends its connection (RFC 9112 6.1).
      if (response && http10) return "Transfer-Encoding in an HTTP/1.0 response";
    }
    // HTAB in a framing value's whitespace: llhttp refuses it, RFC 9110 calls it whitespace
    // to trim, and so does sluice.
    if (framing_field && line.find('\t') != std::string_view::npos) {
      return "HTAB in a framing value's whitespace";
    }
    // A Content-Length of 19 or more digits: llhttp takes it when it fits 64 bits.
    if (IsFieldNamed(line, "content-length")) {
      size_t digits = 0;
      for (char c : line) {
        digits = (c >= '0' && c <= '9') ? digits + 1 : 0;
        if (digits >= 19) return "a Content-Length of 19 digits or more";
      }
    }
    // HTTP/1.0 with both keep-alive and close: close wins for sluice (RFC 9112 9.3), llhttp
    // kept the connection.
    if (IsFieldNamed(line, "connection") || IsFieldNamed(line, "proxy-connection")) {
      std::string_view value = line.substr(line.find(':') + 1);
      ForEachListElement(value, [&](std::string_view token) {
        if (EqualsIgnoreCase(token, "close")) close = true;
        if (EqualsIgnoreCase(token, "keep-alive")) keep_alive = true;
      });
      if (http10 && close && keep_alive) return "close and keep-alive in HTTP/1.0";
    }
    // A field line without a name: both refuse it in a head; in a trailer section the old
    // parser let it through (its empty-name check looked at heads only).
    if (!line.empty() && line[0] == ':') return "a trailer field without a name";
    // A chunk-size line with an extension: RFC 9112's grammar, which llhttp 8.1 follows only
    // in part.
    size_t hex = 0;
    while (hex < line.size() && IsHex(line[hex])) ++hex;
    if (hex > 0 && hex < line.size() && line[hex] == ';') return "chunk extension";
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
