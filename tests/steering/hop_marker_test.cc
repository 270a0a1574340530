#include "steering/hop_marker.h"

#include <map>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "steering/steering_table.h"

namespace sluice {
namespace {

const std::string kKey(32, 'k');
const std::string kOtherKey(32, 'o');
constexpr int64_t kNow = 1763790000;
constexpr int64_t kSkew = 30;
constexpr uint64_t kNonce = 0xff;
const HopRequest kRequest{"GET", "/api/items", "page=2", "shop.example", "203.0.113.7", "12"};

HopVerdict Check(const HopSigner& signer, const std::string& value,
                 const HopRequest& request = kRequest, std::string_view to = "eu-west-1",
                 int64_t now = kNow) {
  HopMarker marker;
  return signer.Verify(value, to, now, kSkew, request, &marker);
}

std::string SignOne(const HopSigner& signer, std::string_view id = "req-1",
                    const HopRequest& request = kRequest) {
  return signer.Sign("us-east-1", "eu-west-1", kNow, kNonce, id, request);
}

TEST(HopMarkerTest, SignedMarkerVerifiesAtItsRegion) {
  HopSigner signer({kKey});
  std::string value = SignOne(signer);
  EXPECT_EQ(value.rfind("v2;from=us-east-1;ts=1763790000;nonce=00000000000000ff;id=req-1;mac=", 0),
            0u)
      << value;
  HopMarker marker;
  ASSERT_EQ(signer.Verify(value, "eu-west-1", kNow + 5, kSkew, kRequest, &marker),
            HopVerdict::kValid);
  EXPECT_EQ(marker.from, "us-east-1");
  EXPECT_EQ(marker.timestamp, kNow);
  EXPECT_EQ(marker.nonce, kNonce);
  EXPECT_EQ(marker.request_id, "req-1");
}

TEST(HopMarkerTest, TheMacIsTheDocumentedOne) {
  // Python's hmac module over the message the header comment defines.
  HopSigner signer({kKey});
  EXPECT_EQ(SignOne(signer),
            "v2;from=us-east-1;ts=1763790000;nonce=00000000000000ff;id=req-1;"
            "mac=bcf43b3f2a32e7a1574a49e60bf645e2afcff4e8fa230d637465ac3966d73ead");
  EXPECT_EQ(signer.MacHex(HealthReplyMessage("us-west-2", "us-east-1", kNonce, "{\"ok\":1}")),
            "ca4c18e089f56b9b799df7d79244be84b1f0ea5669062a5e2c0bb24690340a9e");
}

// The MAC is a wire format between regions: nodes of different versions verify each other's
// markers. Values from the first implementation (HMAC through EVP_MAC, before the MAC was
// computed from precomputed SHA-256 states), which Python's hmac module agrees with, for keys
// shorter than, equal to and longer than SHA-256's 64-byte block (hashed first), and messages
// across the padding boundaries (55, 56, 64 bytes) and several blocks.
TEST(HopMarkerTest, TheMacBytesStayTheSameForEveryKeyAndMessageLength) {
  std::string key100;
  for (int i = 0; i < 100; ++i) key100.push_back(static_cast<char>(i * 37 + 1));
  std::string long_path = "/";
  for (int i = 0; i < 300; ++i) long_path.push_back("abcdefghij"[i % 10]);
  const HopRequest long_request{
      "POST", long_path, "", "shop.example", "198.51.100.1, 203.0.113.7", "chunked"};
  struct Expected {
    std::string key;
    const char* short_mac;               // SignOne's
    const char* long_mac;                // long_request's: six blocks
    std::map<int, const char*> mac_hex;  // MacHex of that many 'm's
  };
  const Expected expected[] = {
      {"x",
       "719f318b1e4f645c57ea0c2414db5edc6bbc064ca46407dbe7c6ae638980ef76",
       "e4ae34d38bb2b69b1ccd1eab6529721e00e17eb6cc75bffb8d43f15fc8903254",
       {{0, "f27e6527d6b8408430a666b746070c307f542bb54ee7e6dcb303f3e52c0b09fb"},
        {64, "f6030d56a9d156babcc042769d6c8282d5c17d7d7ff895011d351b62b2d8fa42"}}},
      {kKey,
       "bcf43b3f2a32e7a1574a49e60bf645e2afcff4e8fa230d637465ac3966d73ead",
       "0467d6b5701868793dbb7cd9495e7732f9824f70add1c67447f4889adf0b69d8",
       {{55, "cc33de8b329d5713c3541191508a526db5bccc1bebf18194e2f9e9a9842b6525"},
        {56, "ee17926ac908587eddbfd1462deac8835a8985074a85f18c7e636767f32d69f4"}}},
      {std::string(64, 'k'),
       "a806b95a0bbde195bba66f272f45746f9315094e192a4f970c8280210ce1f21b",
       "bea0adc803c3603e54d12bdb6987634f664c49a261b9fa54de65af15e0898a11",
       {{0, "83026a325aaee70e36cfe607536aa1054104ad1077c36134810d4ccded1ccd3b"},
        {55, "6d801b7bd389318c9618b37fb94c6ae3eaf1d2701f58706fe8e8342188f228fe"},
        {56, "62954b00cd56d4c95c6f80b8099009976316bcffc52eada7829bd724402693a1"},
        {63, "525abb1f5960dd24f1f4d9f8af926876f4e5834a47da99d75e5241d69e965905"},
        {64, "6c5d941ffa5c767ab48ab913e070f40807115a8478907ad61bee6f2283c72966"},
        {65, "8d2bba5a4384f74df6cc410b12c3bcaa11216283a874e20c3e003489f55d495c"},
        {119, "bc8c2eb187d7c549f5d952e4f7cb15922dd6de1c1a4cffc87bfabb8e10e0edff"},
        {120, "3150db690599786d0b8fd0c85e5dae1dbc781d489ea554c7b956ea346eaa8b75"}}},
      {key100,
       "fc1c9fd6eeae061785f8a4f015617031bdc99cb45995d54d54200927539dabf1",
       "7aa93039cddf6a1756d69b9b122c203ac13ea1edf979fd995255d8c35c67bd03",
       {{0, "44a736a437e93138195fbca5c3c14bb64dc675aac25274e4c1043b2cc55be2b2"},
        {56, "1d757ec4fdbed0e88cc5baa6796fb0dac9d878ef87a6727a668ef4e6b305e783"},
        {64, "e6c04d4225c58e4fd17fe300a9fe62b64b960eff5a4d1971c533aea0bc2234d8"},
        {120, "112303cc90f4d6f180f752ce90ef315bb5e3b165b770fd4951db70188045c774"}}},
  };
  for (const Expected& e : expected) {
    HopSigner signer({e.key});
    const std::string short_value = SignOne(signer);
    EXPECT_EQ(short_value.substr(short_value.size() - 64), e.short_mac) << e.key.size();
    const std::string long_value =
        signer.Sign("us-east-1", "eu-west-1", kNow, 0x0123456789abcdefULL,
                    "3f2a9c1e-77aa-4d2b-9a61-0c1b2d3e4f50", long_request);
    EXPECT_EQ(long_value.substr(long_value.size() - 64), e.long_mac) << e.key.size();
    EXPECT_EQ(Check(signer, long_value, long_request), HopVerdict::kValid) << e.key.size();
    // A node holding this key second (a rotation) verifies it too.
    EXPECT_EQ(Check(HopSigner({kOtherKey, e.key}), long_value, long_request), HopVerdict::kValid);
    for (const auto& [length, mac] : e.mac_hex) {
      const std::string message(static_cast<size_t>(length), 'm');
      EXPECT_EQ(signer.MacHex(message), mac) << e.key.size() << " " << length;
      EXPECT_TRUE(signer.VerifyMacHex(message, mac));
    }
  }
}

TEST(HopMarkerTest, ForgedStaleAndWrongKeyMarkersFail) {
  HopSigner signer({kKey});
  std::string value = SignOne(signer);
  // A client making one up.
  EXPECT_EQ(Check(signer, "v2;from=us-east-1;ts=1763790000;nonce=00000000000000ff;id=req-1;mac=" +
                              std::string(64, 'a')),
            HopVerdict::kBadMac);
  // Out of the skew window, either way.
  EXPECT_EQ(Check(signer, value, kRequest, "eu-west-1", kNow + kSkew + 1), HopVerdict::kStale);
  EXPECT_EQ(Check(signer, value, kRequest, "eu-west-1", kNow - kSkew - 1), HopVerdict::kStale);
  EXPECT_EQ(Check(signer, value, kRequest, "eu-west-1", kNow + kSkew), HopVerdict::kValid);
  // Another key.
  EXPECT_EQ(Check(HopSigner({kOtherKey}), value), HopVerdict::kBadMac);
  // Another region.
  EXPECT_EQ(Check(signer, value, kRequest, "us-west-2"), HopVerdict::kBadMac);
  // Another request: each bound piece changed in turn.
  HopRequest other = kRequest;
  other.method = "POST";
  EXPECT_EQ(Check(signer, value, other), HopVerdict::kBadMac);
  other = kRequest;
  other.path = "/api/other";
  EXPECT_EQ(Check(signer, value, other), HopVerdict::kBadMac);
  other = kRequest;
  other.query = "page=3";
  EXPECT_EQ(Check(signer, value, other), HopVerdict::kBadMac);
  other = kRequest;
  other.query = "";
  EXPECT_EQ(Check(signer, value, other), HopVerdict::kBadMac);
  other = kRequest;
  other.authority = "admin.example";  // re-targeted at another Host
  EXPECT_EQ(Check(signer, value, other), HopVerdict::kBadMac);
  other = kRequest;
  other.forwarded_for = "198.51.100.1, 203.0.113.7";  // a forged address put first
  EXPECT_EQ(Check(signer, value, other), HopVerdict::kBadMac);
  other = kRequest;
  other.forwarded_for = "";
  EXPECT_EQ(Check(signer, value, other), HopVerdict::kBadMac);
  other = kRequest;
  other.body = "13";  // another body
  EXPECT_EQ(Check(signer, value, other), HopVerdict::kBadMac);
  other = kRequest;
  other.body = "chunked";
  EXPECT_EQ(Check(signer, value, other), HopVerdict::kBadMac);
  // Any field altered.
  std::string altered = value;
  altered.replace(altered.find("us-east-1"), 9, "us-west-2");
  EXPECT_EQ(Check(signer, altered), HopVerdict::kBadMac);
  altered = value;
  altered.replace(altered.find("req-1"), 5, "req-2");
  EXPECT_EQ(Check(signer, altered), HopVerdict::kBadMac);
  altered = value;
  altered.replace(altered.find("00ff"), 4, "00fe");  // another nonce: a replay in disguise
  EXPECT_EQ(Check(signer, altered), HopVerdict::kBadMac);
  altered = value;
  altered[altered.size() - 1] = altered.back() == '0' ? '1' : '0';
  EXPECT_EQ(Check(signer, altered), HopVerdict::kBadMac);
}

// Every digit of the MAC counts: another hex digit anywhere in it fails, as does the MAC of
// the health replies' check.
TEST(HopMarkerTest, EveryDigitOfTheMacCounts) {
  HopSigner signer({kKey});
  const std::string value = SignOne(signer);
  ASSERT_EQ(Check(signer, value), HopVerdict::kValid);
  const std::string mac = signer.MacHex("message");
  ASSERT_TRUE(signer.VerifyMacHex("message", mac));
  for (size_t i = 0; i < 64; ++i) {
    for (char other : {'0', '9', 'a', 'f'}) {
      std::string changed = value;
      char& digit = changed[changed.size() - 64 + i];
      if (digit == other) continue;
      digit = other;
      EXPECT_EQ(Check(signer, changed), HopVerdict::kBadMac) << i;
      std::string changed_mac = mac;
      if (changed_mac[i] == other) continue;
      changed_mac[i] = other;
      EXPECT_FALSE(signer.VerifyMacHex("message", changed_mac)) << i;
    }
  }
}

TEST(HopMarkerTest, MalformedMarkers) {
  HopSigner signer({kKey});
  std::string value = SignOne(signer);
  std::string mac = value.substr(value.size() - 64);
  const std::string n = "nonce=00000000000000ff;";
  const std::string bad[] = {
      "",
      // The first version, without a nonce: no longer accepted.
      "v1;from=us-east-1;ts=1763790000;id=req-1;mac=" + mac,
      "v2;from=us-east-1;ts=1763790000;id=req-1;mac=" + mac,
      "v2;from=us-east-1;ts=1763790000;" + n + "id=req-1",
      "v2;from=us-east-1;ts=1763790000;" + n + "id=req-1;mac=" + mac + ";extra=1",
      "v2;ts=1763790000;from=us-east-1;" + n + "id=req-1;mac=" + mac,
      "v2;from=US-EAST-1;ts=1763790000;" + n + "id=req-1;mac=" + mac,
      "v2;from=;ts=1763790000;" + n + "id=req-1;mac=" + mac,
      "v2;from=us-east-1;ts=01763790000;" + n + "id=req-1;mac=" + mac,
      "v2;from=us-east-1;ts=-5;" + n + "id=req-1;mac=" + mac,
      "v2;from=us-east-1;ts=9999999999999;" + n + "id=req-1;mac=" + mac,
      "v2;from=us-east-1;ts=1763790000;nonce=ff;id=req-1;mac=" + mac,
      "v2;from=us-east-1;ts=1763790000;nonce=00000000000000FF;id=req-1;mac=" + mac,
      "v2;from=us-east-1;ts=1763790000;nonce=000000000000000ff;id=req-1;mac=" + mac,
      "v2;from=us-east-1;ts=1763790000;" + n + "id=;mac=" + mac,
      "v2;from=us-east-1;ts=1763790000;" + n + "id=a b;mac=" + mac,
      "v2;from=us-east-1;ts=1763790000;" + n + "id=" + std::string(129, 'i') + ";mac=" + mac,
      "v2;from=us-east-1;ts=1763790000;" + n + "id=req-1;mac=" + mac.substr(1),
      "v2;from=us-east-1;ts=1763790000;" + n + "id=req-1;mac=" + std::string(64, 'A'),
      " v2;from=us-east-1;ts=1763790000;" + n + "id=req-1;mac=" + mac,
  };
  for (const std::string& value_text : bad) {
    HopMarker marker;
    EXPECT_FALSE(ParseHopMarker(value_text, &marker)) << value_text;
    EXPECT_EQ(Check(signer, value_text), HopVerdict::kMalformed) << value_text;
  }
}

TEST(HopMarkerTest, RotationVerifiesTheOldKeyAndSignsWithTheNew) {
  HopSigner old_signer({kOtherKey});
  HopSigner rotating({kKey, kOtherKey});
  std::string from_old = SignOne(old_signer, "r");
  EXPECT_EQ(Check(rotating, from_old), HopVerdict::kValid);
  std::string from_new = SignOne(rotating, "r");
  EXPECT_EQ(Check(HopSigner({kKey}), from_new), HopVerdict::kValid);
  EXPECT_EQ(Check(old_signer, from_new), HopVerdict::kBadMac);
  // Health replies too.
  std::string message = HealthReplyMessage("us-west-2", "us-east-1", 7, "{}");
  EXPECT_TRUE(rotating.VerifyMacHex(message, old_signer.MacHex(message)));
  EXPECT_FALSE(HopSigner({kKey}).VerifyMacHex(message, old_signer.MacHex(message)));
  EXPECT_FALSE(rotating.VerifyMacHex(message, ""));
  EXPECT_FALSE(rotating.VerifyMacHex(HealthReplyMessage("us-west-2", "us-east-1", 8, "{}"),
                                     rotating.MacHex(message)));  // signed for another poll
}

TEST(HopMarkerTest, AMarkerIsAcceptedOnce) {
  HopReplayCache cache;
  EXPECT_TRUE(cache.FirstUse(kNonce, kNow, kNow, kSkew));
  EXPECT_FALSE(cache.FirstUse(kNonce, kNow, kNow + 1, kSkew));
  EXPECT_TRUE(cache.FirstUse(kNonce + 1, kNow + 1, kNow + 1, kSkew));
  // Remembered while its marker still verifies (until its timestamp plus the skew)...
  EXPECT_FALSE(cache.FirstUse(kNonce, kNow, kNow + kSkew, kSkew));
  // ...and a marker stamped ahead of this node's clock as long as that one verifies.
  EXPECT_TRUE(cache.FirstUse(kNonce + 2, kNow + kSkew, kNow, kSkew));
  EXPECT_FALSE(cache.FirstUse(kNonce + 2, kNow + kSkew, kNow + 2 * kSkew, kSkew));
  // Forgotten once no marker with it could verify.
  EXPECT_TRUE(cache.FirstUse(kNonce, kNow, kNow + kSkew + 1, kSkew));
  EXPECT_EQ(cache.live_evictions(), 0u);
}

TEST(HopMarkerTest, AFullReplayCacheForgetsItsOldestNonces) {
  HopReplayCache cache(16 * 4);  // four per shard
  for (uint64_t n = 0; n < 16 * 8; ++n) EXPECT_TRUE(cache.FirstUse(n, kNow, kNow, kSkew));
  // Per shard, the last four stay; the first ones were let go to make room, and counted.
  for (uint64_t n = 16 * 4; n < 16 * 8; ++n) {
    EXPECT_FALSE(cache.FirstUse(n, kNow, kNow, kSkew)) << n;
  }
  EXPECT_EQ(cache.live_evictions(), 16u * 4);
  EXPECT_TRUE(cache.FirstUse(0, kNow, kNow, kSkew));
}

TEST(HopMarkerTest, RequestIdsThatCannotTravelBecomeADash) {
  EXPECT_EQ(HopRequestId("3f2a-11"), "3f2a-11");
  EXPECT_EQ(HopRequestId(""), "-");
  EXPECT_EQ(HopRequestId("has space"), "-");
  EXPECT_EQ(HopRequestId("a;b"), "-");
  EXPECT_EQ(HopRequestId(std::string(200, 'x')), "-");
  HopSigner signer({kKey});
  std::string value = SignOne(signer, "bad id");
  EXPECT_NE(value.find(";id=-;"), std::string::npos);
  EXPECT_EQ(Check(signer, value), HopVerdict::kValid);
}

// The parser before it was made to search less and check 16 bytes at a time: a field at a
// time, up to each ';', every character looked up. Kept to hold the new one to its verdicts.
bool ReferenceParse(std::string_view value, HopMarker* out) {
  auto consume = [](std::string_view* text, std::string_view prefix) {
    if (text->substr(0, prefix.size()) != prefix) return false;
    text->remove_prefix(prefix.size());
    return true;
  };
  auto take = [](std::string_view* text, bool last, std::string_view* field) {
    size_t end = text->find(';');
    if (last) {
      if (end != std::string_view::npos) return false;
      *field = *text;
      text->remove_prefix(text->size());
      return true;
    }
    if (end == std::string_view::npos) return false;
    *field = text->substr(0, end);
    text->remove_prefix(end + 1);
    return true;
  };
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); };
  auto id_char = [](char c) { return c > 0x20 && c < 0x7f && c != ';' && c != ','; };
  std::string_view rest = value;
  std::string_view from, ts, nonce, id, mac;
  if (!consume(&rest, "v2;from=") || !take(&rest, false, &from) || !consume(&rest, "ts=") ||
      !take(&rest, false, &ts) || !consume(&rest, "nonce=") || !take(&rest, false, &nonce) ||
      !consume(&rest, "id=") || !take(&rest, false, &id) || !consume(&rest, "mac=") ||
      !take(&rest, true, &mac)) {
    return false;
  }
  if (!ValidRegionName(from)) return false;
  if (ts.empty() || ts.size() > 12 || (ts.size() > 1 && ts[0] == '0')) return false;
  int64_t timestamp = 0;
  for (char c : ts) {
    if (c < '0' || c > '9') return false;
    timestamp = timestamp * 10 + (c - '0');
  }
  if (nonce.size() != 16) return false;
  uint64_t nonce_value = 0;
  for (char c : nonce) {
    if (!hex(c)) return false;
    nonce_value = nonce_value << 4 | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!id_char(c)) return false;
  }
  if (mac.size() != 64) return false;
  for (char c : mac) {
    if (!hex(c)) return false;
  }
  out->from = from;
  out->timestamp = timestamp;
  out->timestamp_text = ts;
  out->nonce = nonce_value;
  out->nonce_text = nonce;
  out->request_id = id;
  out->mac_hex = mac;
  return true;
}

// Signed markers with ids of every length, then cut, grown and changed at random places with
// the bytes that matter (separators, hex, the first bytes that are not allowed): the parser
// and the reference agree on every one, fields included.
TEST(HopMarkerTest, TheParserAgreesWithTheReference) {
  HopSigner signer({kKey});
  std::mt19937_64 random(24);
  const std::string alphabet = ";,=0123456789abcdefABF \x7f\x80\xff\x20\x21-mactsidnoncefromv2";
  auto pick = [&](size_t n) { return static_cast<size_t>(random() % n); };
  size_t valid = 0;
  size_t cases = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string id;
    const size_t id_length = 1 + pick(140);
    for (size_t i = 0; i < id_length; ++i) id += static_cast<char>('!' + pick(94));
    const std::string marker =
        signer.Sign(pick(2) ? "us-east-1" : "eu-west-1", "x", kNow, random(), id, kRequest);
    for (int change = 0; change < 60; ++change) {
      std::string text = marker;
      for (size_t edits = 1 + pick(3); edits > 0 && !text.empty(); --edits) {
        const size_t at = pick(text.size());
        switch (pick(change == 0 ? 1 : 5)) {
          case 0:
            break;  // as signed (the first of each round)
          case 1:
            text[at] = alphabet[pick(alphabet.size())];
            break;
          case 2:
            text.insert(at, 1, alphabet[pick(alphabet.size())]);
            break;
          case 3:
            text.erase(at, 1 + pick(4));
            break;
          default:
            text.resize(at);
            break;
        }
      }
      HopMarker got, want;
      const bool parsed = ParseHopMarker(text, &got);
      ASSERT_EQ(parsed, ReferenceParse(text, &want)) << text;
      ++cases;
      if (!parsed) continue;
      ++valid;
      EXPECT_EQ(got.from, want.from);
      EXPECT_EQ(got.timestamp, want.timestamp);
      EXPECT_EQ(got.timestamp_text, want.timestamp_text);
      EXPECT_EQ(got.nonce, want.nonce);
      EXPECT_EQ(got.nonce_text, want.nonce_text);
      EXPECT_EQ(got.request_id, want.request_id);
      EXPECT_EQ(got.mac_hex, want.mac_hex);
    }
  }
  // Both sides of the verdict were exercised.
  EXPECT_GT(valid, 3000u);
  EXPECT_LT(valid, cases / 2);
}

}  // namespace
}  // namespace sluice
