#include "filters/auth/jwt.h"

#include "gtest/gtest.h"
#include "tests/filters/auth/jwt_test_util.h"

namespace sluice {
namespace {

constexpr int64_t kNow = 1800000000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-hs256";

class JwtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rsa_ = NewRsaKey();
    ec_ = NewEcKey();
    other_rsa_ = NewRsaKey();
    auto keys = JsonWebKeySet::Parse(
        Jwks({RsaJwk(rsa_.get(), "rsa1"), EcJwk(ec_.get(), "ec1"), OctJwk(kSecret, "hs1")}));
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = *keys;
    policy_.issuer = "https://login.example";
    policy_.audiences = {"sluice"};
  }
  static std::string Claims(int64_t exp = kNow + 600, const std::string& extra = "") {
    return "{\"sub\":\"member-42\",\"iss\":\"https://"
           "login.example\",\"aud\":[\"other\",\"sluice\"],"
           "\"exp\":" +
           std::to_string(exp) + ",\"home_region\":\"eu-west-1\",\"tier\":\"gold\"" + extra + "}";
  }
  JwtResult Verify(const std::string& token) { return VerifyJwt(token, *keys_, policy_, kNow); }

  Pkey rsa_, ec_, other_rsa_;
  std::shared_ptr<const JsonWebKeySet> keys_;
  JwtPolicy policy_;
};

TEST_F(JwtTest, EachAlgorithmVerifies) {
  for (auto [alg, kid, key] :
       {std::tuple{"RS256", "rsa1", rsa_.get()}, std::tuple{"ES256", "ec1", ec_.get()},
        std::tuple<const char*, const char*, EVP_PKEY*>{"HS256", "hs1", nullptr}}) {
    std::string header =
        std::string("{\"alg\":\"") + alg + "\",\"kid\":\"" + kid + "\",\"typ\":\"JWT\"}";
    JwtResult r = Verify(SignJwt(header, Claims(), key, kSecret));
    ASSERT_TRUE(r.ok()) << alg << ": " << JwtErrorText(r.error);
    EXPECT_EQ(r.token.member_id, "member-42");
    EXPECT_EQ(r.token.home_region, "eu-west-1");
    EXPECT_EQ(r.token.tier, "gold");
    EXPECT_EQ(r.token.valid_until, kNow + 600 + policy_.leeway_seconds);
  }
}

TEST_F(JwtTest, Rejections) {
  const std::string rs = "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}";
  std::string good = SignJwt(rs, Claims(), rsa_.get());
  std::string tampered = good;
  // Swap the payload for another one, keeping the signature.
  size_t dot1 = good.find('.'), dot2 = good.rfind('.');
  tampered.replace(dot1 + 1, dot2 - dot1 - 1, B64Url(Claims(kNow + 600, ",\"admin\":true")));
  struct Case {
    const char* name;
    std::string token;
    JwtError error;
  };
  std::vector<Case> cases = {
      {"expired", SignJwt(rs, Claims(kNow - 3600), rsa_.get()), JwtError::kExpired},
      {"not_yet_valid",
       SignJwt(rs, Claims(kNow + 600, ",\"nbf\":" + std::to_string(kNow + 3600)), rsa_.get()),
       JwtError::kNotYetValid},
      {"wrong_key", SignJwt(rs, Claims(), other_rsa_.get()), JwtError::kBadSignature},
      {"alg_none", B64Url("{\"alg\":\"none\",\"kid\":\"rsa1\"}") + "." + B64Url(Claims()) + ".",
       JwtError::kUnsupportedAlgorithm},
      // The classic confusion: HS256 "signed" with the RSA key's public modulus as secret.
      {"hs256_with_rsa_kid",
       SignJwt("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", Claims(), nullptr,
               "n-of-the-rsa-key-as-secret!!!!!!"),
       JwtError::kUnsupportedAlgorithm},
      {"es256_claims_rsa", SignJwt("{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", Claims(), ec_.get()),
       JwtError::kUnsupportedAlgorithm},
      {"tampered_payload", tampered, JwtError::kBadSignature},
      {"unknown_kid", SignJwt("{\"alg\":\"RS256\",\"kid\":\"nope\"}", Claims(), rsa_.get()),
       JwtError::kUnknownKey},
      {"no_kid_with_several_keys", SignJwt("{\"alg\":\"RS256\"}", Claims(), rsa_.get()),
       JwtError::kUnknownKey},
      {"wrong_issuer",
       SignJwt(rs,
               "{\"sub\":\"m\",\"iss\":\"evil\",\"aud\":\"sluice\",\"exp\":" +
                   std::to_string(kNow + 60) + "}",
               rsa_.get()),
       JwtError::kWrongIssuer},
      {"wrong_audience",
       SignJwt(rs,
               "{\"sub\":\"m\",\"iss\":\"https://login.example\",\"aud\":\"x\",\"exp\":" +
                   std::to_string(kNow + 60) + "}",
               rsa_.get()),
       JwtError::kWrongAudience},
      {"no_exp",
       SignJwt(rs, "{\"sub\":\"m\",\"iss\":\"https://login.example\",\"aud\":\"sluice\"}",
               rsa_.get()),
       JwtError::kMissingClaim},
      {"no_subject",
       SignJwt(rs,
               "{\"iss\":\"https://login.example\",\"aud\":\"sluice\",\"exp\":" +
                   std::to_string(kNow + 60) + "}",
               rsa_.get()),
       JwtError::kMissingClaim},
      {"two_parts", "abc.def", JwtError::kMalformed},
      {"bad_base64", "a*c.def.ghi", JwtError::kMalformed},
      {"header_not_json", B64Url("nope") + "." + B64Url("{}") + ".", JwtError::kMalformed},
      {"crit_header",
       SignJwt("{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"x\"]}", Claims(), rsa_.get()),
       JwtError::kUnsupportedAlgorithm},
      {"truncated_signature", good.substr(0, good.size() - 10), JwtError::kBadSignature},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Verify(c.token).error, c.error)
        << c.name << ": " << JwtErrorText(Verify(c.token).error);
  }
}

TEST_F(JwtTest, LeewayAllowsSmallClockSkew) {
  std::string token =
      SignJwt("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", Claims(kNow - 10), nullptr, kSecret);
  EXPECT_TRUE(Verify(token).ok());  // 10 s late, within 30 s of leeway
  policy_.leeway_seconds = 0;
  EXPECT_EQ(Verify(token).error, JwtError::kExpired);
}

TEST(JwksTest, ParseErrors) {
  EXPECT_FALSE(JsonWebKeySet::Parse("not json").ok());
  EXPECT_FALSE(JsonWebKeySet::Parse("{}").ok());
  EXPECT_FALSE(JsonWebKeySet::Parse("{\"keys\":[]}").ok());
  EXPECT_FALSE(
      JsonWebKeySet::Parse("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"k\":\"c2hvcnQ\"}]}").ok());
  EXPECT_FALSE(JsonWebKeySet::Parse(
                   "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"a\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}")
                   .ok());
  EXPECT_FALSE(JsonWebKeySet::Parse(
                   "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}]}")
                   .ok());
  std::string secret(32, 's');
  EXPECT_FALSE(JsonWebKeySet::Parse(Jwks({OctJwk(secret, "a"), OctJwk(secret, "a")})).ok());
  EXPECT_FALSE(
      JsonWebKeySet::Parse("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"a\",\"alg\":\"RS256\",\"k\":\"" +
                           B64Url(secret) + "\"}]}")
          .ok());
  // An unsupported key type next to a good one is skipped.
  auto mixed =
      JsonWebKeySet::Parse("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}," +
                           OctJwk(secret, "a") + "]}");
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_EQ((*mixed)->size(), 1u);
  EXPECT_NE((*mixed)->Find(""), nullptr);  // the only key also serves tokens without a kid
  EXPECT_GT((*JsonWebKeySet::Parse(Jwks({OctJwk(secret, "b")})))->version(), (*mixed)->version());
}

TEST(JwksTest, RsaKeysOfAnOddSizeOrExponentAreRefused) {
  Pkey rsa = NewRsaKey();
  const std::string n = B64Url(BnBytes(rsa.get(), OSSL_PKEY_PARAM_RSA_N));
  auto with_e = [&](const std::string& e_bytes) {
    return JsonWebKeySet::Parse("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"" + n +
                                "\",\"e\":\"" + B64Url(e_bytes) + "\"}]}");
  };
  EXPECT_TRUE(with_e(std::string("\x01\x00\x01", 3)).ok());  // 65537
  EXPECT_TRUE(with_e("\x03").ok());
  EXPECT_FALSE(with_e("\x01").ok());                          // 1: no signature check at all
  EXPECT_FALSE(with_e(std::string("\x01\x00\x00", 3)).ok());  // even
  EXPECT_FALSE(with_e(std::string("\x01\x00\x00\x00\x01", 5)).ok());  // over 32 bits
  auto too_big = JsonWebKeySet::Parse("{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"r\",\"n\":\"" +
                                      B64Url("\x80" + std::string(1024, '\x01')) +
                                      "\",\"e\":\"AQAB\"}]}");  // 8200 bits
  EXPECT_FALSE(too_big.ok());
}

TEST(Base64UrlTest, CanonicalOnly) {
  std::string out;
  EXPECT_TRUE(DecodeBase64Url("aGVsbG8", &out));
  EXPECT_EQ(out, "hello");
  EXPECT_FALSE(DecodeBase64Url("aGVsbG8=", &out));  // no padding in JWS
  EXPECT_FALSE(DecodeBase64Url("aGVsbG9", &out));   // non-zero leftover bits
  EXPECT_FALSE(DecodeBase64Url("a", &out));
  EXPECT_TRUE(DecodeBase64Url("", &out));
}

}  // namespace
}  // namespace sluice
