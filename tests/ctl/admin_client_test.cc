#include "ctl/admin_client.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

TEST(ParseAdminUrlTest, HttpAndHttps) {
  absl::StatusOr<AdminEndpoint> e = ParseAdminUrl("http://127.0.0.1:9901/");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->tls);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, "9901");
  EXPECT_EQ(e->url, "http://127.0.0.1:9901");
  e = ParseAdminUrl("https://admin.example.internal:9901");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->tls);
  EXPECT_EQ(e->host, "admin.example.internal");
  EXPECT_EQ(e->url, "https://admin.example.internal:9901");
  e = ParseAdminUrl("https://[::1]");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, "443");
  EXPECT_EQ(ParseAdminUrl("http://h")->port, "80");
}

TEST(ParseAdminUrlTest, Refusals) {
  for (const char* url : {"ftp://h:1", "127.0.0.1:9901", "https://", "https://h:0",
                          "https://h:9901/v1", "https://[::1:9901"}) {
    EXPECT_FALSE(ParseAdminUrl(url).ok()) << url;
  }
}

}  // namespace
}  // namespace sluice
