#include "proxy/forward/router.h"

#include "gtest/gtest.h"

namespace sluice {
namespace {

RouteConfig Route(std::string host, std::string prefix, std::string cluster) {
  RouteConfig r;
  r.host = std::move(host);
  r.path_prefix = std::move(prefix);
  r.cluster = std::move(cluster);
  return r;
}

TEST(RouterTest, FirstMatchWins) {
  std::vector<RouteConfig> routes = {Route("api.example.com", "/v1", "v1"),
                                     Route("*.example.com", "/", "sub"),
                                     Route("*", "/static/", "static"), Route("*", "/", "default")};
  Router router(routes);
  EXPECT_EQ(router.Match("api.example.com", "/v1/users")->cluster, "v1");
  EXPECT_EQ(router.Match("api.example.com", "/v1")->cluster, "v1");
  EXPECT_EQ(router.Match("api.example.com", "/v10")->cluster, "sub");
  EXPECT_EQ(router.Match("www.example.com", "/x")->cluster, "sub");
  EXPECT_EQ(router.Match("example.com", "/static/a.css")->cluster, "static");
  EXPECT_EQ(router.Match("example.com", "/x")->cluster, "default");
  EXPECT_EQ(router.Match("", "/x")->cluster, "default");
}

TEST(RouterTest, NoMatch) {
  std::vector<RouteConfig> routes = {Route("a.com", "/", "a")};
  Router router(routes);
  EXPECT_EQ(router.Match("b.com", "/"), nullptr);
  EXPECT_NE(router.Match("a.com.", "/"), nullptr);
}

TEST(RouterTest, SegmentPrefix) {
  EXPECT_TRUE(Router::PathMatches("/api", "/api"));
  EXPECT_TRUE(Router::PathMatches("/api", "/api/x"));
  EXPECT_FALSE(Router::PathMatches("/api", "/apiary"));
  EXPECT_TRUE(Router::PathMatches("/api/", "/api/x"));
  EXPECT_FALSE(Router::PathMatches("/api/", "/api"));
  EXPECT_TRUE(Router::PathMatches("/", "/anything"));
  EXPECT_FALSE(Router::HostMatches("*.example.com", "example.com"));
}

}  // namespace
}  // namespace sluice
