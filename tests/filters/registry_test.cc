#include "filters/registry.h"

#include <set>
#include <string>

#include "common/yaml_field.h"
#include "filters/shed/concurrency_config.h"
#include "filters/shed/concurrency_limiter.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

// The smallest valid configuration of each built-in filter.
const char* MinimalBody(std::string_view name) {
  if (name == "auth")
    return "{api_keys: [{name: a, sha256: "
           "0000000000000000000000000000000000000000000000000000000000000000}]}";
  if (name == "rate_limit") return "{rate: 10/s}";
  return "{}";
}

TEST(FilterRegistryTest, NamesAreUniqueAndListed) {
  std::set<std::string_view> names;
  for (const FilterRegistration* r : FilterRegistry()) {
    EXPECT_TRUE(names.insert(r->name).second) << r->name;
    EXPECT_EQ(FindFilter(r->name), r);
    EXPECT_NE(r->parse, nullptr);
    EXPECT_NE(r->create, nullptr);
  }
  EXPECT_EQ(FindFilter("nope"), nullptr);
  EXPECT_EQ(FilterNames(), "auth, headers, rate_limit, retry or shed");
}

// Each registration parses its own YAML and builds a filter that carries the same name, so the
// name is written once per filter (its kName) and everything else reads it from the registry.
TEST(FilterRegistryTest, EachFilterParsesAndBuildsThroughItsRegistration) {
  ConcurrencyConfig concurrency;
  ConcurrencyLimiter limiter(concurrency, 1, SystemClock());
  FilterParseContext context;
  context.concurrency = &concurrency;
  FilterEnvironment env;
  env.limiter = &limiter;
  const std::string source = "test.yaml";
  for (const FilterRegistration* r : FilterRegistry()) {
    SCOPED_TRACE(std::string(r->name));
    Field body(YAML::Load(MinimalBody(r->name)), std::string(r->name), &source, 1);
    absl::StatusOr<std::shared_ptr<const FilterConfig>> config = r->parse(body, context);
    ASSERT_TRUE(config.ok()) << config.status();
    FilterSpec spec{r, *config};
    EXPECT_EQ(spec.name(), r->name);
    std::unique_ptr<Filter> filter = CreateFilter(spec, env);
    ASSERT_NE(filter, nullptr);
    EXPECT_EQ(filter->name(), r->name);
  }
}

TEST(FilterRegistryTest, ShedAndRateLimitAnswersCountAsSheds) {
  std::set<std::string_view> sheds;
  for (const FilterRegistration* r : FilterRegistry()) {
    if (r->counts_as_shed) sheds.insert(r->name);
  }
  EXPECT_EQ(sheds, (std::set<std::string_view>{"rate_limit", "shed"}));
}

TEST(FilterRegistryTest, AParseErrorNamesTheFileLineAndKey) {
  const std::string source = "conf/x.yaml";
  const FilterRegistration* rate = FindFilter("rate_limit");
  ASSERT_NE(rate, nullptr);
  Field body(YAML::Load("{rate: fast}"), "routes[0].filters[0].rate_limit", &source, 7);
  absl::StatusOr<std::shared_ptr<const FilterConfig>> config = rate->parse(body, {});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(std::string(config.status().message())
                .find("conf/x.yaml:1: routes[0].filters[0].rate_limit.rate:"),
            std::string::npos)
      << config.status();
}

}  // namespace
}  // namespace sluice
