#include "steering/hop_marker.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

const std::string kKey(32, 'k');
const std::string kOtherKey(32, 'o');
constexpr int64_t kNow = 1763790000;
constexpr int64_t kSkew = 30;
const HopRequestLine kLine{"GET", "/api/items", "page=2"};

HopVerdict Check(const HopSigner& signer, const std::string& value,
                 const HopRequestLine& line = kLine, std::string_view to = "eu-west-1",
                 int64_t now = kNow) {
  HopMarker marker;
  return signer.Verify(value, to, now, kSkew, line, &marker);
}

TEST(HopMarkerTest, SignedMarkerVerifiesAtItsRegion) {
  HopSigner signer({kKey});
  std::string value = signer.Sign("us-east-1", "eu-west-1", kNow, "req-1", kLine);
  EXPECT_EQ(value.rfind("v1;from=us-east-1;ts=1763790000;id=req-1;mac=", 0), 0u) << value;
  HopMarker marker;
  ASSERT_EQ(signer.Verify(value, "eu-west-1", kNow + 5, kSkew, kLine, &marker), HopVerdict::kValid);
  EXPECT_EQ(marker.from, "us-east-1");
  EXPECT_EQ(marker.timestamp, kNow);
  EXPECT_EQ(marker.request_id, "req-1");
}

TEST(HopMarkerTest, TheMacIsTheDocumentedOne) {
  // Python's hmac module over the message the header comment defines.
  HopSigner signer({kKey});
  EXPECT_EQ(signer.Sign("us-east-1", "eu-west-1", kNow, "req-1", kLine),
            "v1;from=us-east-1;ts=1763790000;id=req-1;"
            "mac=7e40b5a3d2711f4ae4d9a1a677b213d470a4f5d03117a1e4ef3426b27b545369");
}

TEST(HopMarkerTest, ForgedStaleAndWrongKeyMarkersFail) {
  HopSigner signer({kKey});
  std::string value = signer.Sign("us-east-1", "eu-west-1", kNow, "req-1", kLine);
  // A client making one up.
  EXPECT_EQ(Check(signer, "v1;from=us-east-1;ts=1763790000;id=req-1;mac=" + std::string(64, 'a')),
            HopVerdict::kBadMac);
  // Out of the skew window, either way.
  EXPECT_EQ(Check(signer, value, kLine, "eu-west-1", kNow + kSkew + 1), HopVerdict::kStale);
  EXPECT_EQ(Check(signer, value, kLine, "eu-west-1", kNow - kSkew - 1), HopVerdict::kStale);
  EXPECT_EQ(Check(signer, value, kLine, "eu-west-1", kNow + kSkew), HopVerdict::kValid);
  // Another key.
  EXPECT_EQ(Check(HopSigner({kOtherKey}), value), HopVerdict::kBadMac);
  // Another region, or another request.
  EXPECT_EQ(Check(signer, value, kLine, "us-west-2"), HopVerdict::kBadMac);
  EXPECT_EQ(Check(signer, value, {"POST", "/api/items", "page=2"}), HopVerdict::kBadMac);
  EXPECT_EQ(Check(signer, value, {"GET", "/api/other", "page=2"}), HopVerdict::kBadMac);
  EXPECT_EQ(Check(signer, value, {"GET", "/api/items", "page=3"}), HopVerdict::kBadMac);
  EXPECT_EQ(Check(signer, value, {"GET", "/api/items", ""}), HopVerdict::kBadMac);
  // Any field altered.
  std::string altered = value;
  altered.replace(altered.find("us-east-1"), 9, "us-west-2");
  EXPECT_EQ(Check(signer, altered), HopVerdict::kBadMac);
  altered = value;
  altered.replace(altered.find("req-1"), 5, "req-2");
  EXPECT_EQ(Check(signer, altered), HopVerdict::kBadMac);
  altered = value;
  altered[altered.size() - 1] = altered.back() == '0' ? '1' : '0';
  EXPECT_EQ(Check(signer, altered), HopVerdict::kBadMac);
}

TEST(HopMarkerTest, MalformedMarkers) {
  HopSigner signer({kKey});
  std::string value = signer.Sign("us-east-1", "eu-west-1", kNow, "req-1", kLine);
  std::string mac = value.substr(value.size() - 64);
  const std::string bad[] = {
      "",
      "v2;from=us-east-1;ts=1763790000;id=req-1;mac=" + mac,
      "v1;from=us-east-1;ts=1763790000;id=req-1",
      "v1;from=us-east-1;ts=1763790000;id=req-1;mac=" + mac + ";extra=1",
      "v1;ts=1763790000;from=us-east-1;id=req-1;mac=" + mac,
      "v1;from=US-EAST-1;ts=1763790000;id=req-1;mac=" + mac,
      "v1;from=;ts=1763790000;id=req-1;mac=" + mac,
      "v1;from=us-east-1;ts=01763790000;id=req-1;mac=" + mac,
      "v1;from=us-east-1;ts=-5;id=req-1;mac=" + mac,
      "v1;from=us-east-1;ts=9999999999999;id=req-1;mac=" + mac,
      "v1;from=us-east-1;ts=1763790000;id=;mac=" + mac,
      "v1;from=us-east-1;ts=1763790000;id=a b;mac=" + mac,
      "v1;from=us-east-1;ts=1763790000;id=" + std::string(129, 'i') + ";mac=" + mac,
      "v1;from=us-east-1;ts=1763790000;id=req-1;mac=" + mac.substr(1),
      "v1;from=us-east-1;ts=1763790000;id=req-1;mac=" + std::string(64, 'A'),
      " v1;from=us-east-1;ts=1763790000;id=req-1;mac=" + mac,
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
  std::string from_old = old_signer.Sign("us-east-1", "eu-west-1", kNow, "r", kLine);
  EXPECT_EQ(Check(rotating, from_old), HopVerdict::kValid);
  std::string from_new = rotating.Sign("us-east-1", "eu-west-1", kNow, "r", kLine);
  EXPECT_EQ(Check(HopSigner({kKey}), from_new), HopVerdict::kValid);
  EXPECT_EQ(Check(old_signer, from_new), HopVerdict::kBadMac);
}

TEST(HopMarkerTest, RequestIdsThatCannotTravelBecomeADash) {
  EXPECT_EQ(HopRequestId("3f2a-11"), "3f2a-11");
  EXPECT_EQ(HopRequestId(""), "-");
  EXPECT_EQ(HopRequestId("has space"), "-");
  EXPECT_EQ(HopRequestId("a;b"), "-");
  EXPECT_EQ(HopRequestId(std::string(200, 'x')), "-");
  HopSigner signer({kKey});
  std::string value = signer.Sign("us-east-1", "eu-west-1", kNow, "bad id", kLine);
  EXPECT_NE(value.find(";id=-;"), std::string::npos);
  EXPECT_EQ(Check(signer, value), HopVerdict::kValid);
}

}  // namespace
}  // namespace sluice
