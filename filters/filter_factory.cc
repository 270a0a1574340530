#include "filters/filter_factory.h"

namespace sluice {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

std::string_view FilterSpecName(const FilterSpec& spec) {
  return std::visit(
      Overloaded{[](const AuthConfig&) { return std::string_view("auth"); },
                 [](const HeaderRulesConfig&) { return std::string_view("headers"); },
                 [](const RateLimitConfig&) { return std::string_view("rate_limit"); },
                 [](const RetryConfig&) { return std::string_view("retry"); },
                 [](const ShedConfig&) { return std::string_view("shed"); }},
      spec);
}

std::unique_ptr<Filter> CreateFilter(const FilterSpec& spec, const FilterEnvironment& env) {
  const Clock& clock = env.clock ? *env.clock : SystemClock();
  return std::visit(Overloaded{
                        [&](const AuthConfig& c) -> std::unique_ptr<Filter> {
                          KeySlot* slot = nullptr;
                          if (!c.jwks_file.empty() && env.key_slots) {
                            slot = env.key_slots->Get(c.jwks_file);
                            slot->Install(c.jwks);
                          }
                          return std::make_unique<AuthFilter>(c, slot, clock);
                        },
                        [&](const HeaderRulesConfig& c) -> std::unique_ptr<Filter> {
                          return std::make_unique<HeaderRulesFilter>(c);
                        },
                        [&](const RateLimitConfig& c) -> std::unique_ptr<Filter> {
                          return std::make_unique<RateLimitFilter>(c, env.workers, clock);
                        },
                        [&](const RetryConfig& c) -> std::unique_ptr<Filter> {
                          return std::make_unique<RetryFilter>(c, clock);
                        },
                        [&](const ShedConfig& c) -> std::unique_ptr<Filter> {
                          return std::make_unique<ShedFilter>(c, env.limiter, clock);
                        },
                    },
                    spec);
}

}  // namespace sluice
