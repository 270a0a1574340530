#include "proxy/forward/header_rewriter.h"

#include <string>

#include "bench/allocation_counter.h"
#include "gtest/gtest.h"
#include "proxy/http/http1_parser.h"
#include "proxy/http/http1_serializer.h"

namespace sluice {
namespace {

RequestHeadPtr Request(std::vector<std::pair<std::string, std::string>> fields) {
  RequestHeadPtr head = MakeRequestHead();
  head->method_text = "GET";
  head->path = "/p";
  head->query = "?q=1";
  head->authority = "example.com";
  for (auto& [n, v] : fields) head->headers.Add(n, v);
  return head;
}

DownstreamInfo Client(const char* ip) {
  DownstreamInfo info;
  info.client = *SocketAddress::Parse(std::string(ip) + ":5000");
  return info;
}

TEST(HeaderRewriterTest, UpstreamRequest) {
  auto head = Request({{"Host", "example.com"},
                       {"Connection", "keep-alive"},
                       {"Keep-Alive", "timeout=5"},
                       {"X-Forwarded-For", "1.1.1.1"},
                       {"Sluice-Hop", "x"},
                       {"Expect", "100-continue"},
                       {"X-App", "a"}});
  PrepareUpstreamRequest(*head, ProxyOptions{}, Client("192.0.2.1"), 1, 2);
  std::string out;
  SerializeUpstreamRequest(*head, "10.0.0.1:80", &out);
  EXPECT_EQ(out,
            "GET /p?q=1 HTTP/1.1\r\nHost: example.com\r\nX-App: a\r\n"
            "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: http\r\nVia: 1.1 sluice\r\n"
            "x-request-id: " +
                FormatRequestId(1, 2) + "\r\n\r\n");
}

TEST(HeaderRewriterTest, AppendModeAndTrustedPeers) {
  ProxyOptions options;
  options.forwarded_for = ForwardedForMode::kAppend;
  auto head = Request({{"X-Forwarded-For", "1.1.1.1"}, {"x-forwarded-for", "2.2.2.2"}});
  PrepareUpstreamRequest(*head, options, Client("192.0.2.1"), 1, 2);
  EXPECT_EQ(*head->headers.Get("x-forwarded-for"), "1.1.1.1, 2.2.2.2, 192.0.2.1");
  EXPECT_EQ(head->headers.CountKind(HeaderKind::kXForwardedFor), 1);
}

TEST(HeaderRewriterTest, WhereAnUntrustedClientSaysItCameFromIsDropped) {
  const std::vector<std::pair<std::string, std::string>> claims = {
      {"X-Forwarded-Host", "admin.internal"},
      {"X-Forwarded-Port", "8443"},
      {"Forwarded", "for=10.0.0.1;proto=https"},
      {"X-Real-IP", "10.0.0.1"},
      {"X-Forwarded-Proto", "https"}};
  auto head = Request(claims);
  PrepareUpstreamRequest(*head, ProxyOptions{}, Client("192.0.2.1"), 1, 2);
  for (const auto& [name, value] : claims) {
    if (name == "X-Forwarded-Proto") {
      EXPECT_EQ(head->headers.Get(name), "http");  // sluice's own
    } else {
      EXPECT_FALSE(head->headers.Get(name).has_value()) << name;
    }
  }
  // From a trusted proxy (or a verified tunnel) they pass.
  ProxyOptions trusting;
  trusting.trusted_proxies.Add(*CidrRange::Parse("192.0.2.0/24"));
  head = Request(claims);
  PrepareUpstreamRequest(*head, trusting, Client("192.0.2.1"), 1, 2);
  for (const auto& [name, value] : claims) EXPECT_EQ(head->headers.Get(name), value) << name;
}

TEST(HeaderRewriterTest, FramingAndUpgradeAreReEmitted) {
  auto head = Request({{"Content-Length", "5"}, {"Upgrade", "websocket"}});
  head->framing = BodyFraming::kChunked;
  PrepareUpstreamRequest(*head, ProxyOptions{}, Client("127.0.0.1"), 1, 2);
  std::string out;
  SerializeUpstreamRequest(*head, "h", &out);
  EXPECT_EQ(out.find("Content-Length"), std::string::npos);
  EXPECT_NE(out.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(out.find("Upgrade"), std::string::npos);                // not an accepted upgrade
  EXPECT_NE(out.find("Host: example.com\r\n"), std::string::npos);  // from the authority

  auto ws = Request({{"Host", "a"}, {"Upgrade", "websocket"}});
  ws->upgrade = true;
  PrepareUpstreamRequest(*ws, ProxyOptions{}, Client("127.0.0.1"), 1, 2);
  out.clear();
  SerializeUpstreamRequest(*ws, "h", &out);
  EXPECT_NE(out.find("Upgrade: websocket\r\n"), std::string::npos);
  EXPECT_NE(out.find("Connection: upgrade\r\n"), std::string::npos);
}

TEST(HeaderRewriterTest, DownstreamResponse) {
  ResponseHeadPtr head = MakeResponseHead();
  head->headers.Add("Content-Length", "10");
  head->headers.Add("Transfer-Encoding", "chunked");
  head->headers.Add("Connection", "close");
  head->headers.Add("sluice-secret", "x");
  head->headers.Add("Set-Cookie", "a=b");
  head->framing = BodyFraming::kContentLength;
  PrepareDownstreamResponse(*head, ProxyOptions{});
  ASSERT_EQ(head->headers.size(), 2u);
  EXPECT_EQ(head->headers.name(0), "Set-Cookie");
  EXPECT_EQ(*head->headers.Get("via"), "1.1 sluice");

  ResponseHeadPtr head_response = MakeResponseHead();
  head_response->headers.Add("Content-Length", "10");
  head_response->framing = BodyFraming::kNone;  // HEAD: the length describes the GET body
  PrepareDownstreamResponse(*head_response, ProxyOptions{});
  EXPECT_EQ(*head_response->headers.Get("content-length"), "10");
}

TEST(HeaderRewriterTest, RequestIdIsAVersion4Uuid) {
  std::string id = FormatRequestId(0xffffffffffffffffULL, 0);
  EXPECT_EQ(id, "ffffffff-ffff-4fff-8000-000000000000");
  // Every hex digit in its place: the most significant byte of `hi` first.
  EXPECT_EQ(FormatRequestId(0x0123456789abcdefULL, 0xfedcba9876543210ULL),
            "01234567-89ab-4def-bedc-ba9876543210");
  char out[kRequestIdLength];
  FormatRequestId(0, 0xffffffffffffffffULL, out);
  EXPECT_EQ(std::string_view(out, sizeof(out)), "00000000-0000-4000-bfff-ffffffffffff");
}

class CountingHandler : public Http1Parser::Handler {
 public:
  void OnHead() override { ++heads; }
  void OnBody(std::string_view data) override { body_bytes += data.size(); }
  void OnMessageComplete() override { ++messages; }
  int heads = 0;
  int messages = 0;
  size_t body_bytes = 0;
};

// A proxied request's head work, as the worker does it: the request head parsed, rewritten and
// serialized for the origin; the response head parsed, rewritten and serialized for the
// client. Once the pooled heads and the reused buffers have grown, none of it allocates.
TEST(HeaderRewriterTest, ParsingAndSerializingHeadsAllocatesNothingOnceWarm) {
  const std::string request =
      "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: h2load nghttp2/1.52.0\r\n"
      "Accept: */*\r\nX-Forwarded-For: 203.0.113.9, 198.51.100.7\r\nConnection: keep-alive\r\n"
      "Cookie: session=0123456789abcdef0123456789abcdef\r\n\r\n";
  const std::string response =
      "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 03 Dec 2026 00:00:00 GMT\r\n"
      "Content-Type: text/html\r\nContent-Length: 5\r\n"
      "Last-Modified: Wed, 02 Dec 2026 00:00:00 GMT\r\nConnection: keep-alive\r\n"
      "ETag: \"6769a2f0-5\"\r\nAccept-Ranges: bytes\r\n\r\nhello";
  CountingHandler handler;
  Http1Parser requests(Http1Parser::Mode::kRequest, Http1Limits{}, &handler);
  Http1Parser responses(Http1Parser::Mode::kResponse, Http1Limits{}, &handler);
  ProxyOptions options;
  options.forwarded_for = ForwardedForMode::kAppend;  // the longer way: old hops kept
  const DownstreamInfo downstream = Client("192.0.2.1");
  std::string upstream_head;
  std::string downstream_head;
  bool all_parsed = true;

  auto proxy_one = [&](uint64_t n) {
    Http1Parser::Result r = requests.Execute(request.data(), request.size());
    all_parsed &=
        r.outcome == Http1Parser::Outcome::kMessageComplete && r.consumed == request.size();
    requests.ResumeAfterMessage();
    RequestHeadPtr head = requests.TakeRequest();
    // What the request normalizer would have set, into the pooled head's strings.
    head->path.assign("/index.html");
    head->query.assign("?x=1");
    head->authority.assign("example.com");
    PrepareUpstreamRequest(*head, options, downstream, n, n * 7);
    upstream_head.clear();
    SerializeUpstreamRequest(*head, "10.0.0.1:80", &upstream_head);

    responses.ExpectResponse(head->method, false);
    r = responses.Execute(response.data(), response.size());
    all_parsed &=
        r.outcome == Http1Parser::Outcome::kMessageComplete && r.consumed == response.size();
    responses.ResumeAfterMessage();
    ResponseHeadPtr response_head = responses.TakeResponse();
    PrepareDownstreamResponse(*response_head, options);
    downstream_head.clear();
    AppendStatusLine(&downstream_head, response_head->status, response_head->reason);
    AppendFields(&downstream_head, response_head->headers);
    downstream_head.append("\r\n");
  };

  for (uint64_t n = 0; n < 8; ++n) proxy_one(n);
  const uint64_t before = AllocationCount();
  constexpr int kHeads = 1000;
  for (uint64_t n = 0; n < kHeads; ++n) proxy_one(n);
  const uint64_t allocations = AllocationCount() - before;

  EXPECT_TRUE(all_parsed);
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(handler.heads, 2 * (kHeads + 8));
  EXPECT_EQ(handler.body_bytes, 5u * (kHeads + 8));
  // What the last round wrote, to show the work was done.
  EXPECT_NE(upstream_head.find("X-Forwarded-For: 203.0.113.9, 198.51.100.7, 192.0.2.1\r\n"),
            std::string::npos)
      << upstream_head;
  EXPECT_NE(upstream_head.find("x-request-id: "), std::string::npos) << upstream_head;
  EXPECT_EQ(downstream_head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << downstream_head;
  EXPECT_NE(downstream_head.find("Via: 1.1 sluice\r\n"), std::string::npos) << downstream_head;
}

}  // namespace
}  // namespace sluice
