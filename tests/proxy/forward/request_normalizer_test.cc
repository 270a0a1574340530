#include "proxy/forward/request_normalizer.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

RequestHeadPtr Head(std::string target, std::vector<std::pair<std::string, std::string>> headers,
                    HttpVersion version = HttpVersion::kHttp11,
                    HttpMethod method = HttpMethod::kGet) {
  RequestHeadPtr head = MakeRequestHead();
  head->target = std::move(target);
  head->version = version;
  head->method = method;
  for (auto& [n, v] : headers) head->headers.Add(n, v);
  return head;
}

TEST(RequestNormalizerTest, OriginForm) {
  auto head = Head("/a/../b?x=1", {{"Host", "Example.COM:8080"}});
  RequestVerdict v = NormalizeRequest(head.get(), {});
  ASSERT_TRUE(v.ok()) << v.reason;
  EXPECT_EQ(head->authority, "Example.COM:8080");
  EXPECT_EQ(head->host, "example.com");
  EXPECT_EQ(head->path, "/b");
  EXPECT_EQ(head->query, "?x=1");
}

TEST(RequestNormalizerTest, HostRules) {
  EXPECT_EQ(NormalizeRequest(Head("/", {}).get(), {}).status, 400);
  EXPECT_EQ(NormalizeRequest(Head("/", {{"Host", "a"}, {"host", "a"}}).get(), {}).status, 400);
  EXPECT_EQ(NormalizeRequest(Head("/", {{"Host", "a b"}}).get(), {}).status, 400);
  EXPECT_EQ(NormalizeRequest(Head("/", {{"Host", "a:port"}}).get(), {}).status, 400);
  EXPECT_EQ(NormalizeRequest(Head("/", {{"Host", ""}}).get(), {}).status, 400);
  EXPECT_EQ(NormalizeRequest(Head("/", {{"Host", "a@b"}}).get(), {}).status, 400);
  EXPECT_TRUE(NormalizeRequest(Head("/", {{"Host", "[::1]:80"}}).get(), {}).ok());
  // HTTP/1.0 may omit Host.
  auto old = Head("/", {}, HttpVersion::kHttp10);
  EXPECT_TRUE(NormalizeRequest(old.get(), {}).ok());
  EXPECT_EQ(old->host, "");
}

TEST(RequestNormalizerTest, OneAuthorizationAtMost) {
  // A filter verifies one; an origin might read the other.
  RequestVerdict v = NormalizeRequest(
      Head("/",
           {{"Host", "a"}, {"Authorization", "Bearer good"}, {"authorization", "Bearer forged"}})
          .get(),
      {});
  EXPECT_EQ(v.status, 400);
  EXPECT_STREQ(v.reason, "duplicate Authorization");
  EXPECT_TRUE(
      NormalizeRequest(Head("/", {{"Host", "a"}, {"Authorization", "Bearer x"}}).get(), {}).ok());
}

TEST(RequestNormalizerTest, AbsoluteFormMustMatchHost) {
  auto head = Head("http://example.com/x?y", {{"Host", "example.com"}});
  ASSERT_TRUE(NormalizeRequest(head.get(), {}).ok());
  EXPECT_EQ(head->path, "/x");
  EXPECT_EQ(head->query, "?y");
  EXPECT_EQ(NormalizeRequest(Head("http://evil.com/x", {{"Host", "example.com"}}).get(), {}).status,
            400);
  EXPECT_EQ(
      NormalizeRequest(Head("ftp://example.com/x", {{"Host", "example.com"}}).get(), {}).status,
      400);
  EXPECT_EQ(
      NormalizeRequest(Head("http://u@example.com/x", {{"Host", "example.com"}}).get(), {}).status,
      400);
  auto bare = Head("http://example.com", {{"Host", "example.com"}});
  ASSERT_TRUE(NormalizeRequest(bare.get(), {}).ok());
  EXPECT_EQ(bare->path, "/");
}

TEST(RequestNormalizerTest, AsteriskOnlyForOptions) {
  auto options = Head("*", {{"Host", "a"}}, HttpVersion::kHttp11, HttpMethod::kOptions);
  EXPECT_TRUE(NormalizeRequest(options.get(), {}).ok());
  EXPECT_EQ(options->path, "*");
  EXPECT_EQ(NormalizeRequest(Head("*", {{"Host", "a"}}).get(), {}).status, 400);
}

TEST(RequestNormalizerTest, PathRefusalsAre400) {
  EXPECT_EQ(NormalizeRequest(Head("/a%2fb", {{"Host", "a"}}).get(), {}).status, 400);
  EXPECT_EQ(NormalizeRequest(Head("/a%00", {{"Host", "a"}}).get(), {}).status, 400);
}

}  // namespace
}  // namespace sluice
