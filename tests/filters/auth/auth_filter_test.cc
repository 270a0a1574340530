#include "filters/auth/auth_filter.h"

#include "gtest/gtest.h"
#include "tests/filters/auth/jwt_test_util.h"
#include "tests/filters/filter_test_util.h"

namespace sluice {
namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef-hs256";

std::string Hex(const std::array<unsigned char, 32>& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

class AuthFilterTest : public ::testing::Test {
 protected:
  AuthFilterTest() {
    slot_.Install(*JsonWebKeySet::Parse(Jwks({OctJwk(kSecret, "k1")})));
    config_.policy.leeway_seconds = 0;
    config_.api_keys.push_back({"partner-a", Sha256("secret-key-a")});
    config_.api_keys.push_back({"partner-b", Sha256("secret-key-b")});
  }
  std::string Token(int64_t exp, const std::string& sub = "alice", const std::string& kid = "k1",
                    const std::string& secret = kSecret) {
    return SignJwt("{\"alg\":\"HS256\",\"kid\":\"" + kid + "\"}",
                   "{\"sub\":\"" + sub + "\",\"exp\":" + std::to_string(exp) +
                       ",\"tier\":\"gold\",\"home_region\":\"us-west-2\"}",
                   nullptr, secret);
  }
  FilterStatus Run(AuthFilter& filter, TestRequest& request) {
    FilterSlot slot;
    return filter.OnRequestHead(request.get(), slot);
  }

  FakeClock clock_;
  KeySlot slot_;
  AuthConfig config_;
};

TEST_F(AuthFilterTest, BearerTokenGivesAnIdentityAndIsCached) {
  AuthFilter filter(config_, &slot_, clock_);
  std::string token = Token(clock_.UnixSeconds() + 60);
  for (int i = 0; i < 3; ++i) {
    TestRequest request({{"Authorization", ("Bearer " + token).c_str()}});
    ASSERT_EQ(Run(filter, request), FilterStatus::kContinue);
    const Identity& id = request.get().context.identity;
    EXPECT_EQ(id.method, Identity::Method::kJwt);
    EXPECT_EQ(id.member_id, "alice");
    EXPECT_EQ(id.tier, "gold");
    EXPECT_EQ(id.home_region, "us-west-2");
  }
  EXPECT_EQ(filter.signature_checks(), 1u);  // verified once, then served from the cache
  clock_.AdvanceSeconds(61);                 // the cached token expires like any other
  TestRequest late({{"Authorization", ("Bearer " + token).c_str()}});
  EXPECT_EQ(Run(filter, late), FilterStatus::kRespond);
  EXPECT_EQ(late.get().reply.status, 401);
}

TEST_F(AuthFilterTest, KeyRotationEmptiesTheCache) {
  AuthFilter filter(config_, &slot_, clock_);
  std::string token = Token(clock_.UnixSeconds() + 60);
  TestRequest first({{"Authorization", ("Bearer " + token).c_str()}});
  ASSERT_EQ(Run(filter, first), FilterStatus::kContinue);
  std::string other(40, 'x');
  slot_.Install(*JsonWebKeySet::Parse(Jwks({OctJwk(other, "k2")})));  // k1 was revoked
  TestRequest again({{"Authorization", ("Bearer " + token).c_str()}});
  EXPECT_EQ(Run(filter, again), FilterStatus::kRespond);
  TestRequest fresh({{"Authorization",
                      ("Bearer " + Token(clock_.UnixSeconds() + 60, "bob", "k2", other)).c_str()}});
  EXPECT_EQ(Run(filter, fresh), FilterStatus::kContinue);
}

TEST_F(AuthFilterTest, Rejections401WithChallenges) {
  AuthFilter filter(config_, &slot_, clock_);
  TestRequest none;
  ASSERT_EQ(Run(filter, none), FilterStatus::kRespond);
  EXPECT_EQ(none.get().reply.status, 401);
  EXPECT_EQ(*none.get().reply.headers.Get("WWW-Authenticate"), "Bearer realm=\"sluice\"");

  std::string token = Token(clock_.UnixSeconds() + 60, "alice", "k1", std::string(40, 'w'));
  TestRequest forged({{"Authorization", ("Bearer " + token).c_str()}});
  ASSERT_EQ(Run(filter, forged), FilterStatus::kRespond);
  std::string challenge(*forged.get().reply.headers.Get("WWW-Authenticate"));
  EXPECT_EQ(
      challenge,
      "Bearer realm=\"sluice\", error=\"invalid_token\", error_description=\"invalid signature\"");
  EXPECT_EQ(forged.get().reply.body.find(token), std::string::npos);  // never echoed

  TestRequest basic({{"Authorization", "Basic dXNlcjpwYXNz"}});
  EXPECT_EQ(Run(filter, basic), FilterStatus::kRespond);
}

TEST_F(AuthFilterTest, ApiKeys) {
  AuthFilter filter(config_, &slot_, clock_);
  TestRequest good({{"X-Api-Key", "secret-key-b"}});
  ASSERT_EQ(Run(filter, good), FilterStatus::kContinue);
  EXPECT_EQ(good.get().context.identity.method, Identity::Method::kApiKey);
  EXPECT_EQ(good.get().context.identity.member_id, "partner-b");
  TestRequest scheme({{"Authorization", "ApiKey secret-key-a"}});
  ASSERT_EQ(Run(filter, scheme), FilterStatus::kContinue);
  EXPECT_EQ(scheme.get().context.identity.member_id, "partner-a");
  TestRequest bad({{"X-Api-Key", "secret-key-c"}});
  EXPECT_EQ(Run(filter, bad), FilterStatus::kRespond);
  EXPECT_EQ(Hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(AuthFilterTest, ASecondCredentialIsRefused) {
  AuthFilter filter(config_, &slot_, clock_);
  // The first would be checked; an origin might read the other one.
  TestRequest two_keys({{"X-Api-Key", "secret-key-b"}, {"x-api-key", "forged"}});
  EXPECT_EQ(Run(filter, two_keys), FilterStatus::kRespond);
  EXPECT_EQ(two_keys.get().reply.status, 401);
  TestRequest key_and_bearer({{"X-Api-Key", "secret-key-b"}, {"Authorization", "Bearer forged"}});
  EXPECT_EQ(Run(filter, key_and_bearer), FilterStatus::kRespond);
  EXPECT_NE(key_and_bearer.get().reply.body.find("more than one credential"), std::string::npos);
}

TEST_F(AuthFilterTest, OptionalLetsAnonymousThroughButNotBadCredentials) {
  config_.optional = true;
  AuthFilter filter(config_, &slot_, clock_);
  TestRequest anonymous;
  EXPECT_EQ(Run(filter, anonymous), FilterStatus::kContinue);
  EXPECT_FALSE(anonymous.get().context.identity.verified());
  TestRequest bad({{"Authorization", "Bearer not.a.token"}});
  EXPECT_EQ(Run(filter, bad), FilterStatus::kRespond);
}

TEST_F(AuthFilterTest, CacheIsBounded) {
  config_.cache_size = 8;
  AuthFilter filter(config_, &slot_, clock_);
  for (int i = 0; i < 50; ++i) {
    TestRequest r(
        {{"Authorization",
          ("Bearer " + Token(clock_.UnixSeconds() + 60, "m" + std::to_string(i))).c_str()}});
    ASSERT_EQ(Run(filter, r), FilterStatus::kContinue);
  }
  EXPECT_LE(filter.cached_tokens(), 8u);
  EXPECT_GE(filter.cached_tokens(), 6u);  // full of live tokens: a quarter goes, not all
}

}  // namespace
}  // namespace sluice
