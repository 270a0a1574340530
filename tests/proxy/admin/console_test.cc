#include "proxy/admin/console.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

std::string Header(const ConsoleAnswer& a, const std::string& name) {
  for (const auto& [n, v] : a.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(Console, ServesItsFilesWithTypesAndSecurityHeaders) {
  Console console;
  ConsoleAnswer page = console.Serve("/ui/", "");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("<script src=\"console.js\""), std::string_view::npos);
  // No inline script: every <script> of the page has a src.
  for (size_t at = page.body.find("<script"); at != std::string_view::npos;
       at = page.body.find("<script", at + 1)) {
    size_t end = page.body.find('>', at);
    EXPECT_NE(page.body.substr(at, end - at).find(" src="), std::string_view::npos);
  }
  const std::string csp = Header(page, "Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe"), std::string::npos);
  EXPECT_NE(csp.find("require-trusted-types-for 'script'"), std::string::npos);
  EXPECT_EQ(Header(page, "X-Frame-Options"), "DENY");
  EXPECT_EQ(Header(page, "X-Content-Type-Options"), "nosniff");

  ConsoleAnswer js = console.Serve("/ui/console.js", "");
  EXPECT_EQ(js.status, 200);
  EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
  EXPECT_NE(js.body.find("'use strict'"), std::string_view::npos);
  EXPECT_EQ(js.body.find("innerHTML"), std::string_view::npos);  // text only, never markup
  EXPECT_EQ(console.Serve("/ui/console.css", "").content_type, "text/css; charset=utf-8");
  // The page's weight target (< 300 KB with its charts).
  EXPECT_LT(console.total_bytes(), 300u * 1024);
}

TEST(Console, RevalidatesWithItsEtag) {
  Console console;
  ConsoleAnswer first = console.Serve("/ui/console.js", "");
  const std::string etag = Header(first, "ETag");
  ASSERT_EQ(etag.size(), 34u);
  EXPECT_EQ(Header(first, "Cache-Control"), "no-cache");
  ConsoleAnswer again = console.Serve("/ui/console.js", etag);
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(console.Serve("/ui/console.js", "\"other\", W/" + etag).status, 304);
  EXPECT_EQ(console.Serve("/ui/console.js", "*").status, 304);
  EXPECT_EQ(console.Serve("/ui/console.js", "\"other\"").status, 200);
  EXPECT_NE(Header(console.Serve("/ui/", ""), "ETag"), etag);  // one per file
}

TEST(Console, RedirectsAndRefusesWhatItDoesNotHave) {
  Console console;
  ConsoleAnswer r = console.Serve("/ui", "");
  EXPECT_EQ(r.status, 308);
  EXPECT_EQ(Header(r, "Location"), "/ui/");
  EXPECT_EQ(console.Serve("/ui/../etc/passwd", "").status, 404);
  EXPECT_EQ(console.Serve("/ui/index.html.bak", "").status, 404);
  EXPECT_FALSE(Header(console.Serve("/ui/nothing", ""), "Content-Security-Policy").empty());
  EXPECT_TRUE(Console::Owns("/ui"));
  EXPECT_TRUE(Console::Owns("/ui/x"));
  EXPECT_FALSE(Console::Owns("/uix"));
  EXPECT_FALSE(Console::Owns("/v1/ui"));
}

}  // namespace
}  // namespace sluice
