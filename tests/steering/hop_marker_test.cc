#include "steering/hop_marker.h"

#include <string>

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace sluice
