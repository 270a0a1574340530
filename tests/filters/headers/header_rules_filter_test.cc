#include "filters/headers/header_rules_filter.h"

#include "gtest/gtest.h"
#include "tests/filters/filter_test_util.h"

namespace sluice {
namespace {

TEST(HeaderRulesFilterTest, RemoveSetAddOnBothHeads) {
  HeaderRulesConfig config;
  config.request.remove = {"X-Debug"};
  config.request.set = {{"X-Env", "prod"}};
  config.request.add = {{"X-Edge", "sluice"}};
  config.response.remove = {"Server"};
  config.response.set = {{"Cache-Control", "no-store"}};
  HeaderRulesFilter filter(config);
  TestRequest request({{"X-Debug", "1"}, {"x-env", "dev"}, {"X-Env", "test"}, {"X-Keep", "k"}});
  FilterSlot slot;
  EXPECT_EQ(filter.OnRequestHead(request.get(), slot), FilterStatus::kContinue);
  const HeaderMap& h = request.head().headers;
  EXPECT_FALSE(h.Get("x-debug").has_value());
  EXPECT_EQ(h.CountKind(HeaderKind::kOther), 3);
  EXPECT_EQ(*h.Get("x-env"), "prod");
  EXPECT_EQ(*h.Get("x-edge"), "sluice");
  EXPECT_EQ(*h.Get("x-keep"), "k");

  ResponseHeadPtr response = MakeResponseHead();
  response->headers.Add("Server", "nginx");
  response->headers.Add("Cache-Control", "max-age=60");
  EXPECT_EQ(filter.OnResponseHead(request.get(), *response, slot), FilterStatus::kContinue);
  EXPECT_FALSE(response->headers.Get("server").has_value());
  EXPECT_EQ(*response->headers.Get("cache-control"), "no-store");
}

}  // namespace
}  // namespace sluice
