#include "proxy/http/http1_parser.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

// Records what the parser reports, resuming after each message like the codec does.
class Recorder : public Http1Parser::Handler {
 public:
  explicit Recorder(Http1Parser::Mode mode, Http1Limits limits = {})
      : mode_(mode), parser(mode, limits, this) {}

  void OnHead() override {
    if (parser_mode() == Http1Parser::Mode::kRequest) {
      requests.push_back(parser.TakeRequest());
    } else {
      responses.push_back(parser.TakeResponse());
    }
    bodies.emplace_back();
  }
  void OnBody(std::string_view data) override { bodies.back().append(data); }
  void OnMessageComplete() override { ++completed; }

  // Feeds `input` in pieces of `step` bytes (0: all at once). Returns the final result.
  Http1Parser::Result Feed(std::string_view input, size_t step = 0) {
    Http1Parser::Result last;
    std::string pending;
    size_t pos = 0;
    while (pos < input.size() || !pending.empty()) {
      size_t n = step == 0 ? input.size() - pos : std::min(step, input.size() - pos);
      pending.append(input.substr(pos, n));
      pos += n;
      last = parser.Execute(pending.data(), pending.size());
      pending.erase(0, last.consumed);
      if (last.outcome == Http1Parser::Outcome::kMessageComplete) {
        parser.ResumeAfterMessage();
        continue;
      }
      if (last.outcome != Http1Parser::Outcome::kNeedMore) return last;
      if (pos >= input.size()) break;
    }
    return last;
  }

  Http1Parser::Mode parser_mode() const { return mode_; }

  Http1Parser::Mode mode_;
  Http1Parser parser;
  std::vector<RequestHeadPtr> requests;
  std::vector<ResponseHeadPtr> responses;
  std::vector<std::string> bodies;
  int completed = 0;
};

Http1Parser::Result ParseRequest(std::string_view input, Recorder* r = nullptr, size_t step = 0) {
  Recorder local(Http1Parser::Mode::kRequest);
  return (r ? r : &local)->Feed(input, step);
}

TEST(Http1ParserTest, SimpleGet) {
  Recorder r(Http1Parser::Mode::kRequest);
  auto result = r.Feed("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-Y:  z \r\n\r\n");
  EXPECT_NE(result.outcome, Http1Parser::Outcome::kError);
  ASSERT_EQ(r.requests.size(), 1u);
  const RequestHead& head = *r.requests[0];
  EXPECT_EQ(head.method, HttpMethod::kGet);
  EXPECT_EQ(head.method_text, "GET");
  EXPECT_EQ(head.target, "/a?b=1");
  EXPECT_EQ(head.version, HttpVersion::kHttp11);
  EXPECT_EQ(head.framing, BodyFraming::kNone);
  EXPECT_TRUE(head.keep_alive);
  ASSERT_EQ(head.headers.size(), 2u);
  EXPECT_EQ(head.headers.name(1), "X-Y");
  EXPECT_EQ(head.headers.value(1), "z");  // leading and trailing whitespace trimmed
  EXPECT_EQ(r.completed, 1);
}

TEST(Http1ParserTest, EverySplitPointGivesTheSameResult) {
  const std::string input =
      "POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer-A: 1\r\n\r\n"
      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t step = 1; step <= input.size(); ++step) {
    Recorder r(Http1Parser::Mode::kRequest);
    auto result = r.Feed(input, step);
    ASSERT_NE(result.outcome, Http1Parser::Outcome::kError)
        << "step " << step << ": " << result.reason;
    ASSERT_EQ(r.requests.size(), 2u) << "step " << step;
    EXPECT_EQ(r.bodies[0], "hello world") << "step " << step;
    EXPECT_EQ(r.requests[0]->framing, BodyFraming::kChunked);
    EXPECT_EQ(r.requests[1]->target, "/next");
    EXPECT_EQ(r.completed, 2);
  }
}

TEST(Http1ParserTest, PipelinedRequestsStopAtEachMessage) {
  Recorder r(Http1Parser::Mode::kRequest);
  std::string input = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
  auto result = r.parser.Execute(input.data(), input.size());
  EXPECT_EQ(result.outcome, Http1Parser::Outcome::kMessageComplete);
  EXPECT_EQ(result.consumed, input.size() / 2);
  EXPECT_EQ(r.requests.size(), 1u);
  // Nothing more is parsed until the caller resumes.
  auto again = r.parser.Execute(input.data() + result.consumed, input.size() - result.consumed);
  EXPECT_EQ(again.outcome, Http1Parser::Outcome::kMessageComplete);
  EXPECT_EQ(again.consumed, 0u);
  r.parser.ResumeAfterMessage();
  again = r.parser.Execute(input.data() + result.consumed, input.size() - result.consumed);
  EXPECT_EQ(again.outcome, Http1Parser::Outcome::kMessageComplete);
  EXPECT_EQ(r.requests.size(), 2u);
  EXPECT_EQ(r.requests[1]->target, "/2");
}

TEST(Http1ParserTest, ContentLengthBody) {
  Recorder r(Http1Parser::Mode::kRequest);
  r.Feed("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabcde", 3);
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_EQ(r.requests[0]->framing, BodyFraming::kContentLength);
  EXPECT_EQ(r.requests[0]->content_length, 5u);
  EXPECT_EQ(r.bodies[0], "abcde");
  EXPECT_EQ(r.completed, 1);
}

TEST(Http1ParserTest, Http10WithoutKeepAlive) {
  Recorder r(Http1Parser::Mode::kRequest);
  r.Feed("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_EQ(r.requests[0]->version, HttpVersion::kHttp10);
  EXPECT_FALSE(r.requests[0]->keep_alive);
  Recorder k(Http1Parser::Mode::kRequest);
  k.Feed("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_TRUE(k.requests[0]->keep_alive);
}

TEST(Http1ParserTest, ConnectionCloseAndListedHeaders) {
  Recorder r(Http1Parser::Mode::kRequest);
  r.Feed(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n"
      "X-Other: 2\r\n\r\n");
  ASSERT_EQ(r.requests.size(), 1u);
  const HeaderMap& h = r.requests[0]->headers;
  EXPECT_FALSE(r.requests[0]->keep_alive);
  EXPECT_EQ(h.kind(2), HeaderKind::kConnectionListed);
  EXPECT_EQ(h.kind(3), HeaderKind::kOther);
}

TEST(Http1ParserTest, ConnectionCannotListFramingOrHost) {
  Recorder r(Http1Parser::Mode::kRequest);
  r.Feed(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: host, content-length\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_EQ(r.requests[0]->headers.kind(0), HeaderKind::kHost);
  EXPECT_EQ(r.requests[0]->headers.kind(2), HeaderKind::kContentLength);
}

TEST(Http1ParserTest, ExpectContinue) {
  Recorder r(Http1Parser::Mode::kRequest);
  r.Feed("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_TRUE(r.requests[0]->expect_continue);
  auto bad =
      ParseRequest("POST / HTTP/1.1\r\nHost: h\r\nExpect: other\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(bad.outcome, Http1Parser::Outcome::kError);
  EXPECT_EQ(bad.status, 417);
}

TEST(Http1ParserTest, WebSocketUpgrade) {
  Recorder r(Http1Parser::Mode::kRequest);
  std::string input =
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nRAW";
  auto result = r.parser.Execute(input.data(), input.size());
  EXPECT_EQ(result.outcome, Http1Parser::Outcome::kUpgrade);
  EXPECT_EQ(input.substr(result.consumed), "RAW");
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_TRUE(r.requests[0]->upgrade);
  // The origin refuses: the bytes after the head are HTTP again.
  r.parser.ResumeAfterRefusedUpgrade();
  std::string next = "GET /after HTTP/1.1\r\nHost: h\r\n\r\n";
  auto again = r.parser.Execute(next.data(), next.size());
  EXPECT_EQ(again.outcome, Http1Parser::Outcome::kMessageComplete);
  EXPECT_EQ(r.requests.back()->target, "/after");
}

TEST(Http1ParserTest, UpgradeWithBodyIsAPlainRequest) {
  Recorder r(Http1Parser::Mode::kRequest);
  std::string input =
      "POST / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
      "Content-Length: 2\r\n\r\nab";
  auto result = r.parser.Execute(input.data(), input.size());
  EXPECT_EQ(result.outcome, Http1Parser::Outcome::kMessageComplete);
  EXPECT_FALSE(r.requests[0]->upgrade);
  EXPECT_EQ(r.bodies[0], "ab");
}

struct BadInput {
  const char* name;
  const char* bytes;
  int status;
};

class Http1ParserRejects : public ::testing::TestWithParam<BadInput> {};

TEST_P(Http1ParserRejects, Request) {
  const BadInput& bad = GetParam();
  Recorder r(Http1Parser::Mode::kRequest, Http1Limits{.max_head_bytes = 1024,
                                                      .max_headers = 10,
                                                      .max_target_bytes = 64,
                                                      .max_body_bytes = 100});
  auto result = r.Feed(bad.bytes);
  EXPECT_EQ(result.outcome, Http1Parser::Outcome::kError) << bad.name;
  EXPECT_EQ(result.status, bad.status) << bad.name << ": " << result.reason;
  // Nothing about an ambiguous message may reach the handler as a complete message.
  EXPECT_EQ(r.completed, 0) << bad.name;
  // The same verdict whatever the read sizes.
  Recorder slow(Http1Parser::Mode::kRequest, Http1Limits{.max_head_bytes = 1024,
                                                         .max_headers = 10,
                                                         .max_target_bytes = 64,
                                                         .max_body_bytes = 100});
  auto slow_result = slow.Feed(bad.bytes, 1);
  EXPECT_EQ(slow_result.status, bad.status) << bad.name << " byte by byte: " << slow_result.reason;
}

INSTANTIATE_TEST_SUITE_P(
    BadInput, Http1ParserRejects,
    ::testing::Values(
        BadInput{"cl_and_te",
                 "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: "
                 "chunked\r\n\r\n0\r\n\r\n",
                 400},
        BadInput{"te_and_cl",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: "
                 "3\r\n\r\n0\r\n\r\n",
                 400},
        BadInput{"duplicate_cl",
                 "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
                 400},
        BadInput{"cl_list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\na", 400},
        BadInput{"cl_plus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\na", 400},
        BadInput{"cl_hex", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x1\r\n\r\na", 400},
        BadInput{"cl_negative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
        BadInput{"te_not_chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
                 400},
        BadInput{"te_chunked_then_gzip",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        BadInput{"te_gzip_chunked",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                 501},
        BadInput{"te_two_fields",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
                 "chunked\r\n\r\n0\r\n\r\n",
                 400},
        BadInput{"te_http10",
                 "POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        BadInput{"obs_fold", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},
        BadInput{"obs_fold_tab", "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", 400},
        BadInput{"bare_lf_request_line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
        BadInput{"bare_lf_field", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400},
        BadInput{"bare_lf_end", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400},
        BadInput{"bare_cr", "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400},
        BadInput{"ctl_in_value",
                 "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01"
                 "b\r\n\r\n",
                 400},
        BadInput{"del_in_value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400},
        BadInput{"space_in_name", "GET / HTTP/1.1\r\nHo st: h\r\n\r\n", 400},
        BadInput{"space_before_colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
        BadInput{"ctl_in_name", "GET / HTTP/1.1\r\nX\x01: h\r\n\r\n", 400},
        BadInput{"double_space_request_line", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        BadInput{"trailing_space_request_line", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
        BadInput{"tab_request_line", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        BadInput{"space_in_target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
        BadInput{"leading_space_field", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
        BadInput{"http2_version", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
        BadInput{"http12_version", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 400},
        BadInput{"unknown_method", "FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 501},
        BadInput{"connect", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 405},
        BadInput{"chunk_size_junk",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
        BadInput{"chunk_size_overflow",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                 "chunked\r\n\r\nfffffffffffffffffff\r\n",
                 400},
        BadInput{"chunk_size_space",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 "
                 "\r\nhello\r\n0\r\n\r\n",
                 400},
        BadInput{
            "chunk_bare_lf",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
            400},
        BadInput{
            "chunk_data_no_crlf",
            "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX0\r\n\r\n",
            400},
        BadInput{"trailer_obs_fold",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n "
                 "b\r\n\r\n",
                 400},
        BadInput{"trailer_bare_lf_end",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n", 400},
        BadInput{"too_many_headers",
                 "GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: "
                 "1\r\nI: 1\r\nJ: 1\r\nK: 1\r\n\r\n",
                 431},
        BadInput{
            "target_too_long",
            "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
            "HTTP/1.1\r\nHost: h\r\n\r\n",
            414},
        BadInput{"body_too_large_cl", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n",
                 413},
        // A chunk size near 2^64 must not wrap the running total under the limit.
        BadInput{"chunk_size_wraps_the_total",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n"
                 "ffffffffffffffff\r\n",
                 413},
        BadInput{"body_too_large_chunked",
                 "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", 413}),
    [](const ::testing::TestParamInfo<BadInput>& param_info) { return param_info.param.name; });

TEST(Http1ParserTest, NulInsideTheRequestLine) {
  std::string input("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n", 28);
  auto result = ParseRequest(input);
  EXPECT_EQ(result.outcome, Http1Parser::Outcome::kError);
  EXPECT_EQ(result.status, 400);
}

TEST(Http1ParserTest, NulInAValue) {
  std::string input("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 33);
  auto result = ParseRequest(input);
  EXPECT_EQ(result.outcome, Http1Parser::Outcome::kError);
  EXPECT_EQ(result.status, 400);
}

TEST(Http1ParserTest, HeadOverTheLimitIs431) {
  Http1Limits limits;
  limits.max_head_bytes = 1024;
  for (size_t step : {size_t{0}, size_t{1}, size_t{100}}) {
    Recorder r(Http1Parser::Mode::kRequest, limits);
    auto result =
        r.Feed("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(1100, 'a') + "\r\n\r\n", step);
    EXPECT_EQ(result.outcome, Http1Parser::Outcome::kError);
    EXPECT_EQ(result.status, 431) << step;
    EXPECT_TRUE(r.requests.empty());
  }
}

TEST(Http1ParserTest, LeadingEmptyLineIsSkipped) {
  Recorder r(Http1Parser::Mode::kRequest);
  auto result = r.Feed("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_NE(result.outcome, Http1Parser::Outcome::kError);
  EXPECT_EQ(r.requests.size(), 1u);
}

TEST(Http1ParserTest, ObsTextInValueIsAllowed) {
  Recorder r(Http1Parser::Mode::kRequest);
  r.Feed("GET / HTTP/1.1\r\nHost: h\r\nX: caf\xc3\xa9\r\n\r\n");
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_EQ(r.requests[0]->headers.value(1), "caf\xc3\xa9");
}

TEST(Http1ParserTest, FinishMidHeadIsAnError) {
  Recorder r(Http1Parser::Mode::kRequest);
  r.Feed("GET / HTTP/1.1\r\nHo");
  EXPECT_TRUE(r.parser.in_head());
  EXPECT_EQ(r.parser.Finish().outcome, Http1Parser::Outcome::kError);
}

TEST(Http1ParserTest, FinishBetweenMessagesIsClean) {
  Recorder r(Http1Parser::Mode::kRequest);
  r.Feed("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_TRUE(r.parser.idle());
  EXPECT_EQ(r.parser.Finish().outcome, Http1Parser::Outcome::kNeedMore);
}

// --- Responses ---------------------------------------------------------------------------

class ResponseRecorder : public Recorder {
 public:
  ResponseRecorder() : Recorder(Http1Parser::Mode::kResponse) {}
};

TEST(Http1ParserResponseTest, ContentLength) {
  ResponseRecorder r;
  r.Feed("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0]->status, 200);
  EXPECT_EQ(r.responses[0]->reason, "OK");
  EXPECT_EQ(r.responses[0]->framing, BodyFraming::kContentLength);
  EXPECT_TRUE(r.responses[0]->keep_alive);
  EXPECT_EQ(r.bodies[0], "hi");
}

TEST(Http1ParserResponseTest, UntilCloseCompletesOnFinish) {
  ResponseRecorder r;
  r.Feed("HTTP/1.1 200 OK\r\n\r\nsome bytes");
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0]->framing, BodyFraming::kUntilClose);
  EXPECT_FALSE(r.responses[0]->keep_alive);
  EXPECT_EQ(r.completed, 0);
  EXPECT_EQ(r.parser.Finish().outcome, Http1Parser::Outcome::kMessageComplete);
  EXPECT_EQ(r.completed, 1);
  EXPECT_EQ(r.bodies[0], "some bytes");
}

TEST(Http1ParserResponseTest, HeadResponseHasNoBody) {
  ResponseRecorder r;
  r.parser.ExpectResponse(HttpMethod::kHead, false);
  auto result = r.Feed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
  EXPECT_NE(result.outcome, Http1Parser::Outcome::kError);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0]->framing, BodyFraming::kNone);
  EXPECT_EQ(r.responses[0]->content_length, 100u);
  EXPECT_EQ(r.completed, 1);
}

TEST(Http1ParserResponseTest, NoContentAndNotModified) {
  for (const char* input :
       {"HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\n\r\n"}) {
    ResponseRecorder r;
    r.Feed(input);
    ASSERT_EQ(r.responses.size(), 1u) << input;
    EXPECT_EQ(r.responses[0]->framing, BodyFraming::kNone);
    EXPECT_EQ(r.completed, 1);
  }
}

TEST(Http1ParserResponseTest, InformationalResponsesAreConsumed) {
  ResponseRecorder r;
  r.Feed(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
      7);
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0]->status, 201);
  EXPECT_EQ(r.completed, 1);
}

TEST(Http1ParserResponseTest, SwitchingProtocolsOnlyWhenAsked) {
  std::string input =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nRAW";
  ResponseRecorder asked;
  asked.parser.ExpectResponse(HttpMethod::kGet, true);
  auto result = asked.parser.Execute(input.data(), input.size());
  EXPECT_EQ(result.outcome, Http1Parser::Outcome::kUpgrade);
  EXPECT_EQ(input.substr(result.consumed), "RAW");

  ResponseRecorder not_asked;
  auto bad = not_asked.parser.Execute(input.data(), input.size());
  EXPECT_EQ(bad.outcome, Http1Parser::Outcome::kError);
  EXPECT_EQ(bad.status, 502);
}

TEST(Http1ParserResponseTest, BadResponsesAre502) {
  for (const char* input : {
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
           "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
           "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 999 Nope\r\n\r\n",
           "HTTP/2.0 200 OK\r\n\r\n",
           "garbage\r\n\r\n",
       }) {
    ResponseRecorder r;
    auto result = r.Feed(input);
    EXPECT_EQ(result.outcome, Http1Parser::Outcome::kError) << input;
    EXPECT_EQ(result.status, 502) << input;
    EXPECT_TRUE(r.responses.empty()) << input;
  }
}

TEST(Http1ParserTest, AConnectionListTooLongToHonourIsRefused) {
  // Sixteen names are each removed; a seventeenth would have reached the origin.
  std::string names;
  for (int i = 0; i < 16; ++i) names += "x-" + std::to_string(i) + ", ";
  Recorder ok(Http1Parser::Mode::kRequest);
  ok.Feed("GET / HTTP/1.1\r\nHost: h\r\nConnection: " + names + "keep-alive\r\n\r\n");
  EXPECT_EQ(ok.requests.size(), 1u);
  auto result = ParseRequest("GET / HTTP/1.1\r\nHost: h\r\nConnection: " + names +
                             "x-16\r\nX-16: forged\r\n\r\n");
  EXPECT_EQ(result.outcome, Http1Parser::Outcome::kError);
  EXPECT_EQ(result.status, 400);
  ResponseRecorder r;
  result = r.Feed("HTTP/1.1 200 OK\r\nConnection: " + names + "x-16\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(result.status, 502);
}

TEST(Http1ParserTest, AFieldNeedsAName) {
  for (const char* input :
       {"GET / HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\n:\r\n\r\n"}) {
    for (size_t step : {0, 1}) {
      Recorder r(Http1Parser::Mode::kRequest);
      auto result = r.Feed(input, step);
      EXPECT_EQ(result.outcome, Http1Parser::Outcome::kError) << input;
      EXPECT_EQ(result.status, 400) << input;
      EXPECT_TRUE(r.requests.empty()) << input;
    }
  }
  // A value fed a byte at a time is still one field with its name.
  Recorder split(Http1Parser::Mode::kRequest);
  split.Feed("GET / HTTP/1.1\r\nHost: h\r\nX-Long: abcdefgh\r\n\r\n", 1);
  ASSERT_EQ(split.requests.size(), 1u);
  EXPECT_EQ(split.requests[0]->headers.Get("x-long"), "abcdefgh");
  ResponseRecorder response;
  EXPECT_EQ(response.Feed("HTTP/1.1 200 OK\r\n: b\r\nContent-Length: 0\r\n\r\n").status, 502);
}

TEST(Http1ParserTest, CloseWinsOverKeepAliveInHttp10) {
  Recorder r(Http1Parser::Mode::kRequest);
  r.Feed("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n");
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_FALSE(r.requests[0]->keep_alive);
}

TEST(Http1ParserTest, AChunkedRequestWithExpectGetsItsContinue) {
  Recorder r(Http1Parser::Mode::kRequest);
  r.Feed(
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_TRUE(r.requests[0]->expect_continue);
  Recorder empty(Http1Parser::Mode::kRequest);
  empty.Feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n");
  ASSERT_EQ(empty.requests.size(), 1u);
  EXPECT_FALSE(empty.requests[0]->expect_continue);
}

TEST(Http1ParserTest, ACrWaitingForItsLfIsNotIdle) {
  // A leading empty line cut after its CR: the parser must not be pooled (and reset) then.
  Recorder r(Http1Parser::Mode::kRequest);
  auto first = r.parser.Execute("\r", 1);
  EXPECT_EQ(first.outcome, Http1Parser::Outcome::kNeedMore);
  EXPECT_FALSE(r.parser.idle());
  EXPECT_FALSE(r.parser.in_head());
  std::string rest = "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  auto second = r.parser.Execute(rest.data(), rest.size());
  EXPECT_EQ(second.outcome, Http1Parser::Outcome::kMessageComplete);
  EXPECT_EQ(r.requests.size(), 1u);
}

class StopsAtTheEnd : public Http1Parser::Handler {
 public:
  StopsAtTheEnd() : parser(Http1Parser::Mode::kRequest, Http1Limits{}, this) {}
  void OnHead() override { head = parser.TakeRequest(); }
  void OnBody(std::string_view data) override {
    body.append(data);
    if (stop_in_body) parser.Stop();
  }
  void OnMessageComplete() override {
    ++completed;
    parser.Stop();
  }
  Http1Parser parser;
  RequestHeadPtr head;
  std::string body;
  bool stop_in_body = false;
  int completed = 0;
};

TEST(Http1ParserTest, StopFromTheEndOfAMessageEndsExecute) {
  StopsAtTheEnd h;
  std::string input = "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\n";
  auto r = h.parser.Execute(input.data(), input.size());
  EXPECT_EQ(r.outcome, Http1Parser::Outcome::kStopped);
  EXPECT_EQ(h.completed, 1);
}

TEST(Http1ParserTest, FinishAfterAStopOnTheLastBodyByteEndsTheMessage) {
  StopsAtTheEnd h;
  h.stop_in_body = true;
  std::string input = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  auto r = h.parser.Execute(input.data(), input.size());
  EXPECT_EQ(r.outcome, Http1Parser::Outcome::kStopped);
  EXPECT_EQ(h.body, "abc");
  EXPECT_EQ(h.completed, 0);
  EXPECT_EQ(h.parser.Finish().outcome, Http1Parser::Outcome::kMessageComplete);
  EXPECT_EQ(h.completed, 1);
}

TEST(Http1ParserResponseTest, AChunkedHttp10ResponseEndsTheConnection) {
  Recorder r(Http1Parser::Mode::kResponse);
  r.parser.ExpectResponse(HttpMethod::kGet, false);
  r.Feed(
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
      "1\r\na\r\n0\r\n\r\n");
  ASSERT_EQ(r.responses.size(), 1u);
  EXPECT_EQ(r.responses[0]->framing, BodyFraming::kChunked);
  EXPECT_FALSE(r.responses[0]->keep_alive);
  EXPECT_EQ(r.bodies[0], "a");
}

}  // namespace
}  // namespace sluice
