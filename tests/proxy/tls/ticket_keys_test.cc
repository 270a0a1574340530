#include "proxy/tls/ticket_keys.h"

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace sluice {
namespace {

constexpr absl::Duration kRotation = absl::Hours(1);
const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

// Keys numbered in the order they are made, so a test can say which is which.
class Maker {
 public:
  absl::StatusOr<TicketKey> operator()(absl::Time not_before) {
    if (fail) return absl::InternalError("no randomness");
    TicketKey key;
    key.name.fill(static_cast<unsigned char>(++made));
    key.hmac.fill(0x11);
    key.aes.fill(0x22);
    key.not_before = not_before;
    return key;
  }
  int made = 0;
  bool fail = false;
};

std::vector<int> Names(const std::vector<TicketKey>& keys) {
  std::vector<int> names;
  for (const TicketKey& key : keys) names.push_back(key.name[0]);
  return names;
}

TEST(AdvanceTicketKeysTest, MakesOneThatEncryptsNowAndTheNextARotationAhead) {
  Maker maker;
  auto fresh = [&](absl::Time at) { return maker(at); };
  std::vector<TicketKey> keys;
  ASSERT_TRUE(AdvanceTicketKeys(&keys, kStart, kRotation, fresh));
  EXPECT_EQ(Names(keys), (std::vector<int>{2, 1}));  // newest first
  EXPECT_EQ(keys[1].not_before, kStart);
  EXPECT_EQ(keys[0].not_before, kStart + kRotation);
  EXPECT_EQ(EncryptingTicketKey(keys, kStart)->name[0], 1);
  // Nothing to do until the next one starts encrypting.
  EXPECT_FALSE(AdvanceTicketKeys(&keys, kStart + kRotation - absl::Seconds(1), kRotation, fresh));
  EXPECT_EQ(maker.made, 2);
}

TEST(AdvanceTicketKeysTest, EachKeyDecryptsOneRotationAfterItStoppedEncrypting) {
  Maker maker;
  auto fresh = [&](absl::Time at) { return maker(at); };
  std::vector<TicketKey> keys;
  AdvanceTicketKeys(&keys, kStart, kRotation, fresh);
  // Key 2 starts encrypting: key 3 is made a rotation ahead; key 1 still decrypts.
  ASSERT_TRUE(AdvanceTicketKeys(&keys, kStart + kRotation, kRotation, fresh));
  EXPECT_EQ(Names(keys), (std::vector<int>{3, 2, 1}));
  EXPECT_EQ(keys[0].not_before, kStart + 2 * kRotation);
  EXPECT_EQ(EncryptingTicketKey(keys, kStart + kRotation)->name[0], 2);
  // Key 3 starts: key 1 (replaced a rotation ago) goes, key 2 stays for one more.
  ASSERT_TRUE(AdvanceTicketKeys(&keys, kStart + 2 * kRotation, kRotation, fresh));
  EXPECT_EQ(Names(keys), (std::vector<int>{4, 3, 2}));
  // Late calls catch up: key 2 goes once key 3 has encrypted for a rotation.
  ASSERT_TRUE(AdvanceTicketKeys(&keys, kStart + 3 * kRotation, kRotation, fresh));
  EXPECT_EQ(Names(keys), (std::vector<int>{5, 4, 3}));
}

TEST(AdvanceTicketKeysTest, ALeaderThatWasAwayDoesNotRotateAtOnce) {
  Maker maker;
  auto fresh = [&](absl::Time at) { return maker(at); };
  std::vector<TicketKey> keys;
  AdvanceTicketKeys(&keys, kStart, kRotation, fresh);
  keys.erase(keys.begin());  // as if the next key were never made
  absl::Time late = kStart + 5 * kRotation;
  ASSERT_TRUE(AdvanceTicketKeys(&keys, late, kRotation, fresh));
  EXPECT_EQ(Names(keys), (std::vector<int>{3, 1}));
  EXPECT_EQ(keys[0].not_before, late + kRotation);  // reaches every node before it encrypts
  EXPECT_EQ(EncryptingTicketKey(keys, late)->name[0], 1);
}

TEST(AdvanceTicketKeysTest, WithoutRandomnessTheKeysStay) {
  Maker maker;
  auto fresh = [&](absl::Time at) { return maker(at); };
  std::vector<TicketKey> keys;
  maker.fail = true;
  EXPECT_FALSE(AdvanceTicketKeys(&keys, kStart, kRotation, fresh));
  EXPECT_TRUE(keys.empty());
  maker.fail = false;
  AdvanceTicketKeys(&keys, kStart, kRotation, fresh);
  std::vector<TicketKey> before = keys;
  maker.fail = true;
  EXPECT_FALSE(AdvanceTicketKeys(&keys, kStart + kRotation, kRotation, fresh));
  EXPECT_EQ(keys, before);
}

TEST(AdvanceTicketKeysTest, UnsortedKeysComeBackSortedAndBounded) {
  Maker maker;
  auto fresh = [&](absl::Time at) { return maker(at); };
  std::vector<TicketKey> keys;
  for (int i = 0; i < 12; ++i) keys.push_back(*maker(kStart + absl::Minutes(i)));
  std::swap(keys[0], keys[5]);
  ASSERT_TRUE(AdvanceTicketKeys(&keys, kStart + absl::Minutes(30), kRotation, fresh));
  EXPECT_LE(keys.size(), 8u);
  for (size_t i = 1; i < keys.size(); ++i) EXPECT_GT(keys[i - 1].not_before, keys[i].not_before);
}

TEST(TicketKeyFilesTest, EightyBytesAsNginxLaysThemOut) {
  std::string bytes;
  for (int i = 0; i < 80; ++i) bytes.push_back(static_cast<char>(i));
  absl::StatusOr<TicketKey> key = ParseTicketKeyFile(bytes, "/etc/k");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->name[0], 0);
  EXPECT_EQ(key->hmac[0], 16);
  EXPECT_EQ(key->aes[0], 48);
  EXPECT_EQ(key->aes[31], 79);
  absl::StatusOr<TicketKey> short_key = ParseTicketKeyFile(bytes.substr(0, 48), "/etc/k");
  ASSERT_FALSE(short_key.ok());
  EXPECT_NE(short_key.status().message().find("/etc/k"), std::string::npos);
  EXPECT_NE(short_key.status().message().find("openssl rand 80"), std::string::npos);
}

TEST(TicketSealTest, SealKeysAreSixtyFourHexDigits) {
  std::string hex(64, 'a');
  hex[0] = 'F';
  absl::StatusOr<TicketSealKey> key = ParseTicketSealKey(hex);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ((*key)[0], 0xfa);
  EXPECT_FALSE(ParseTicketSealKey(std::string(63, 'a')).ok());
  EXPECT_FALSE(ParseTicketSealKey(std::string(64, 'g')).ok());
}

class TicketSealTestKeys : public ::testing::Test {
 protected:
  void SetUp() override {
    seal_.fill(7);
    other_.fill(8);
    AdvanceTicketKeys(&keys_, kStart, kRotation, RandomTicketKey);
  }
  TicketSealKey seal_, other_;
  std::vector<TicketKey> keys_;
};

TEST_F(TicketSealTestKeys, OpensWhatItSealedAndNothingElse) {
  const std::string where = "/sluice/tickets/us-east-1";
  absl::StatusOr<std::string> doc = SealTicketKeys(keys_, seal_, where);
  ASSERT_TRUE(doc.ok());
  absl::StatusOr<std::vector<TicketKey>> opened = OpenTicketKeys(*doc, seal_, where);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(*opened, keys_);
  // Never a key in clear.
  for (const TicketKey& key : keys_) {
    std::string aes(reinterpret_cast<const char*>(key.aes.data()), key.aes.size());
    EXPECT_EQ(doc->find(absl::Base64Escape(aes)), std::string::npos);
    EXPECT_EQ(doc->find(aes), std::string::npos);
  }
  // Two seals of the same keys differ (a fresh nonce each time).
  EXPECT_NE(*SealTicketKeys(keys_, seal_, where), *doc);
  // Another seal key, another etcd key: refused.
  EXPECT_FALSE(OpenTicketKeys(*doc, other_, where).ok());
  EXPECT_FALSE(OpenTicketKeys(*doc, seal_, "/sluice/tickets/eu-west-1").ok());
}

TEST_F(TicketSealTestKeys, AlteredOrForeignDocumentsAreRefused) {
  const std::string where = "/sluice/tickets";
  std::string doc = *SealTicketKeys(keys_, seal_, where);
  nlohmann::json parsed = nlohmann::json::parse(doc);
  std::string sealed;
  ASSERT_TRUE(absl::Base64Unescape(parsed["sealed"].get<std::string>(), &sealed));
  for (size_t at : {size_t{0}, sealed.size() / 2, sealed.size() - 1}) {
    std::string flipped = sealed;
    flipped[at] ^= 1;
    nlohmann::json altered = parsed;
    altered["sealed"] = absl::Base64Escape(flipped);
    EXPECT_FALSE(OpenTicketKeys(altered.dump(), seal_, where).ok()) << at;
  }
  for (const char* bad : {"", "{", "[]", "{\"format\":\"sluice-ticket-keys/2\"}", "{\"format\":1}",
                          "{\"format\":null}", "{\"format\":[]}",
                          "{\"format\":\"sluice-ticket-keys/1\",\"nonce\":\"!!\",\"sealed\":\"\"}",
                          "{\"format\":\"sluice-ticket-keys/1\",\"nonce\":\"AAAAAAAAAAAAAAAA\"}"}) {
    absl::StatusOr<std::vector<TicketKey>> opened = OpenTicketKeys(bad, seal_, where);
    EXPECT_FALSE(opened.ok()) << bad;
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  // Sealed right but holding no keys: refused too.
  EXPECT_FALSE(OpenTicketKeys(*SealTicketKeys({}, seal_, where), seal_, where).ok());
}

}  // namespace
}  // namespace sluice
