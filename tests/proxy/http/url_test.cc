#include "proxy/http/url.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(HttpOriginTest, AddressesAndNames) {
  absl::StatusOr<HttpOrigin> ip = ParseHttpOrigin("http://127.0.0.1:2379");
  ASSERT_TRUE(ip.ok()) << ip.status();
  EXPECT_FALSE(ip->tls);
  EXPECT_FALSE(ip->named);
  EXPECT_EQ(ip->address.ToString(), "127.0.0.1:2379");
  EXPECT_EQ(ip->host, "127.0.0.1");

  absl::StatusOr<HttpOrigin> v6 = ParseHttpOrigin("https://[::1]:2379/");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_TRUE(v6->tls);
  EXPECT_EQ(v6->host, "::1");  // what its certificate must name
  EXPECT_EQ(v6->port, 2379);

  absl::StatusOr<HttpOrigin> named = ParseHttpOrigin("HTTPS://etcd-1.prod.internal:2379");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_TRUE(named->tls);
  EXPECT_TRUE(named->named);
  EXPECT_EQ(named->host, "etcd-1.prod.internal");
  EXPECT_EQ(named->port, 2379);
}

TEST(HttpOriginTest, Refusals) {
  for (const char* bad :
       {"127.0.0.1:2379", "ftp://127.0.0.1:2379", "http://etcd", "http://:2379", "http://etcd:0",
        "http://etcd:65536", "http://et cd:2379", "http://etcd:2379/v3", "http://"}) {
    absl::StatusOr<HttpOrigin> e = ParseHttpOrigin(bad);
    EXPECT_FALSE(e.ok()) << bad;
    if (!e.ok()) {
      EXPECT_NE(e.status().message().find(bad), std::string::npos) << e.status();
    }
  }
}

TEST(HttpUrlTest, OriginAndTarget) {
  absl::StatusOr<HttpUrl> url = ParseHttpUrl("http://127.0.0.1:8000/scale?fast=1");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->origin.address.ToString(), "127.0.0.1:8000");
  EXPECT_EQ(url->origin.url, "http://127.0.0.1:8000/scale?fast=1");
  EXPECT_EQ(url->target, "/scale?fast=1");

  url = ParseHttpUrl("https://hooks.internal:8443");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->origin.tls);
  EXPECT_TRUE(url->origin.named);
  EXPECT_EQ(url->target, "/");

  url = ParseHttpUrl("http://[::1]:80/a/b");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->origin.host, "::1");
  EXPECT_EQ(url->target, "/a/b");

  for (const char* bad : {"127.0.0.1:80/x", "http://hooks/x", "http://u@h:80/x", "http://h:80/a b",
                          "http://h:80/a#b", "http://h:80/\x01"}) {
    absl::StatusOr<HttpUrl> e = ParseHttpUrl(bad);
    EXPECT_FALSE(e.ok()) << bad;
  }
}

}  // namespace
}  // namespace sluice
