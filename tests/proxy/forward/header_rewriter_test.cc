#include "proxy/forward/header_rewriter.h"

#include "gtest/gtest.h"

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
}

}  // namespace
}  // namespace sluice
