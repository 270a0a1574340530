// The one-pass parser against the llhttp-based one it replaced, on messages generated from the
// grammar (every framing, pipelining, 1xx, upgrades) and then broken at random (a byte
// replaced, inserted or deleted: CR, LF, SP, HTAB, NUL, DEL, obs-text, ':'), each fed in random
// read sizes. Every input must get the same heads, bodies, message ends and verdict from both,
// or differ in one of the ways http1_differential.h lists.
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/proxy/http/http1_differential.h"

namespace sluice {
namespace {

using differential::Compare;
using differential::Verdict;

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  template <typename T>
  const T& Pick(const std::vector<T>& options) {
    return options[Below(options.size())];
  }
  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Chance(int percent) { return Below(100) < static_cast<size_t>(percent); }

  std::string Fields(bool request, std::string* framing) {
    static const std::vector<std::string> kNames = {"Host",
                                                    "Content-Length",
                                                    "Transfer-Encoding",
                                                    "Connection",
                                                    "Upgrade",
                                                    "Expect",
                                                    "X-Forwarded-For",
                                                    "Proxy-Connection",
                                                    "Keep-Alive",
                                                    "TE",
                                                    "Trailer",
                                                    "X-Custom",
                                                    "content-length",
                                                    "transfer-encoding",
                                                    "Via",
                                                    "Accept",
                                                    "Cookie",
                                                    "x-a"};
    static const std::vector<std::string> kValues = {
        "example.com", "",          " spaced ", "a, b",         "\tx\t",
        "caf\xc3\xa9", "v",         "1",        "close",        "keep-alive",
        "upgrade",     "websocket", "h2c",      "100-continue", "chunked",
        "gzip",        "x-custom",  "Host",     "a=b; c=\"d\"", std::string(40, 'q')};
    static const std::vector<std::string> kLengths = {
        "0", "5", "12", "007", " 3 ", "-1", "1, 1", "abc", "", "99999999999999999999", "+4"};
    static const std::vector<std::string> kCodings = {"chunked", "gzip, chunked", "chunked, gzip",
                                                      "Chunked", "identity",      "chunked , ",
                                                      ",chunked"};
    static const std::vector<std::string> kConnections = {
        "close",           "keep-alive", "Upgrade", "upgrade, close", "x-custom",
        "close, x-custom", "Keep-Alive", "closex",  "close foo",      "TE, Trailer"};
    std::string out;
    size_t n = Below(7);
    for (size_t i = 0; i < n; ++i) {
      const std::string& name = Pick(kNames);
      std::string value;
      if (name == "Content-Length" || name == "content-length") {
        value = Chance(70) ? std::to_string(Below(30)) : Pick(kLengths);
        *framing = "cl:" + value;
      } else if (name == "Transfer-Encoding" || name == "transfer-encoding") {
        value = Chance(70) ? "chunked" : Pick(kCodings);
        *framing = "chunked";
      } else if (name == "Connection" || name == "Proxy-Connection") {
        value = Pick(kConnections);
      } else if (name == "Upgrade") {
        value = Chance(70) ? "websocket" : "h2c";
      } else if (name == "Expect") {
        value = Chance(70) ? "100-continue" : "102-maybe";
      } else {
        value = Pick(kValues);
      }
      out += name + ":" + (Chance(80) ? " " : "") + value + "\r\n";
    }
    if (request && Chance(80)) out = "Host: h\r\n" + out;
    return out;
  }

  // A request without framing has no body: bytes after it are the next message.
  std::string Body(const std::string& framing, bool request) {
    std::string out;
    if (framing == "chunked") {
      size_t chunks = Below(4);
      for (size_t i = 0; i < chunks; ++i) {
        size_t size = 1 + Below(40);
        absl::StrAppendFormat(&out, Chance(20) ? "%X" : "%x", size);
        if (Chance(10)) out += ";ext=val";
        out += "\r\n" + std::string(size, static_cast<char>('a' + i)) + "\r\n";
      }
      out += Chance(90) ? "0\r\n" : "00\r\n";
      if (Chance(20)) out += "Trailer-Field: t\r\n";
      out += "\r\n";
    } else if (framing.rfind("cl:", 0) == 0) {
      // Mostly the announced length; sometimes another (a body cut short or running over).
      std::string_view value = std::string_view(framing).substr(3);
      size_t n = Below(30);
      if (!value.empty() && value.size() < 3 && Chance(85) &&
          value.find_first_not_of("0123456789") == std::string_view::npos) {
        n = static_cast<size_t>(std::stoi(std::string(value)));
      }
      out = std::string(n, 'b');
    } else if (!request && Chance(30)) {
      out = "until close";
    }
    return out;
  }

  std::string Request() {
    static const std::vector<std::string> kMethods = {
        "GET",      "GET",      "POST", "PUT", "HEAD", "DELETE",   "OPTIONS", "PATCH",
        "M-SEARCH", "PROPFIND", "FOO",  "get", "PRI",  "DESCRIBE", "CONNECT"};
    static const std::vector<std::string> kTargets = {
        "/",
        "/a/b?c=d",
        "*",
        "http://h/x",
        "/%2F",
        "/a#frag",
        "/\"<>{}|\\^`",
        "a",
        "/LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL"};
    static const std::vector<std::string> kVersions = {
        "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "http/1.1"};
    std::string out;
    if (Chance(10)) out += "\r\n";
    std::string framing;
    out.append(Chance(60) ? "GET" : Pick(kMethods)).append(" ");
    out.append(Chance(50) ? "/" : Pick(kTargets)).append(" ");
    out.append(Chance(70) ? "HTTP/1.1" : Pick(kVersions)).append("\r\n");
    out.append(Fields(true, &framing)).append("\r\n");
    out.append(Body(framing, true));
    return out;
  }

  std::string Response(bool* head, bool* upgrade) {
    static const std::vector<std::string> kStatus = {
        "200 OK",        "200 OK",       "204 No Content", "304 Not Modified",
        "101 Switching", "100 Continue", "103 Early",      "404",
        "500 Oops  x",   "999 X",        "099 X",          "200 \t"};
    static const std::vector<std::string> kVersions = {"HTTP/1.1", "HTTP/1.1", "HTTP/1.0",
                                                       "HTTP/2.0", "HTTP/1.2"};
    *head = Chance(15);
    *upgrade = Chance(15);
    std::string out;
    std::string framing;
    out.append(Chance(70) ? "HTTP/1.1" : Pick(kVersions)).append(" ");
    out.append(Chance(50) ? "200 OK" : Pick(kStatus)).append("\r\n");
    out.append(Fields(false, &framing)).append("\r\n");
    out.append(Body(framing, false));
    return out;
  }

  void Mutate(std::string* s) {
    static const std::vector<char> kBytes = {'\r',   '\n', ' ', '\t',   '\0', '\x7f',
                                             '\x80', ':',  'a', '\x01', ',',  '0'};
    size_t n = 1 + Below(3);
    for (size_t i = 0; i < n && !s->empty(); ++i) {
      size_t at = Below(s->size());
      switch (Below(3)) {
        case 0:
          (*s)[at] = Pick(kBytes);
          break;
        case 1:
          s->insert(s->begin() + static_cast<std::ptrdiff_t>(at), Pick(kBytes));
          break;
        default:
          s->erase(at, 1);
          break;
      }
    }
  }

  std::vector<size_t> Cuts() {
    if (Chance(40)) return {};  // all at once
    std::vector<size_t> cuts;
    size_t n = 1 + Below(4);
    for (size_t i = 0; i < n; ++i) cuts.push_back(1 + Below(Chance(50) ? 3 : 40));
    return cuts;
  }

 private:
  std::mt19937_64 rng_;
};

void RunMany(Http1Parser::Mode mode, int count, uint64_t seed) {
  Generator gen(seed);
  int same = 0, explained = 0, refused = 0, status_differs = 0;
  int failures = 0;
  std::map<std::string, int> whys;
  const Http1Limits limits{.max_head_bytes = 400,
                           .max_headers = 6,
                           .max_target_bytes = 64,
                           .max_body_bytes = mode == Http1Parser::Mode::kRequest ? 100u : 0u};
  for (int i = 0; i < count; ++i) {
    bool head = false, upgrade = false;
    std::string input;
    size_t messages = 1 + (gen.Chance(25) ? 1 : 0);
    for (size_t m = 0; m < messages; ++m) {
      input += mode == Http1Parser::Mode::kRequest ? gen.Request() : gen.Response(&head, &upgrade);
    }
    if (gen.Chance(50)) gen.Mutate(&input);
    Verdict v = Compare(input, mode, limits, gen.Cuts(),
                        head ? HttpMethod::kHead : HttpMethod::kGet, upgrade);
    if (v.one_pass.failed && v.reference.failed) {
      ++refused;
      if (v.one_pass.status != v.reference.status) ++status_differs;
    }
    if (v.same) {
      ++same;
      continue;
    }
    if (v.explained) {
      ++explained;
      ++whys[v.why];
      continue;
    }
    if (++failures <= 10) {
      ADD_FAILURE() << "input " << i << ": " << testing::PrintToString(input) << "\none-pass ("
                    << (v.one_pass.failed ? "refused " : "accepted ") << v.one_pass.status << " "
                    << v.one_pass.reason << "):\n"
                    << v.one_pass.log << "llhttp ("
                    << (v.reference.failed ? "refused " : "accepted ") << v.reference.status << " "
                    << v.reference.reason << "):\n"
                    << v.reference.log;
    }
  }
  EXPECT_EQ(failures, 0);
  // The generator must reach both kinds of input, or the comparison means little.
  EXPECT_GT(refused, count / 10);
  EXPECT_GT(same - refused, count / 10);
  std::printf(
      "%s: %d inputs, %d alike (%d refused by both, %d of those with another status), "
      "%d differ as allowed\n",
      mode == Http1Parser::Mode::kRequest ? "requests" : "responses", count, same, refused,
      status_differs, explained);
  for (const auto& [why, n] : whys) std::printf("  %6d %s\n", n, why.c_str());
}

TEST(Http1ParserDifferentialTest, RequestsAgreeWithLlhttp) {
  RunMany(Http1Parser::Mode::kRequest, 150000, 1);
}

TEST(Http1ParserDifferentialTest, ResponsesAgreeWithLlhttp) {
  RunMany(Http1Parser::Mode::kResponse, 150000, 2);
}

}  // namespace
}  // namespace sluice
