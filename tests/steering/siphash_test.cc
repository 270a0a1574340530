#include "steering/siphash.h"

#include <string>

#include "gtest/gtest.h"

namespace sluice {
namespace {

SipKey ReferenceKey() {
  std::array<uint8_t, 16> bytes;
  for (int i = 0; i < 16; ++i) bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
  return SipKey::FromBytes(bytes);
}

std::string Sequence(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(i));
  return s;
}

// The reference implementation's vectors (key 00..0f, message 00..n-1), every length class:
// empty, partial last block, exactly one and two blocks, and several blocks.
TEST(SipHashTest, ReferenceVectors) {
  const SipKey key = ReferenceKey();
  struct Vector {
    int length;
    uint64_t expected;
  };
  const Vector vectors[] = {
      {0, 0x726fdb47dd0e0e31ULL},  {1, 0x74f839c593dc67fdULL},  {2, 0x0d6c8009d9a94f5aULL},
      {3, 0x85676696d7fb7e2dULL},  {7, 0xab0200f58b01d137ULL},  {8, 0x93f5f5799a932462ULL},
      {15, 0xa129ca6149be45e5ULL}, {16, 0x3f2acc7f57c29bdbULL}, {17, 0x699ae9f52cbe4794ULL},
      {63, 0x958a324ceb064572ULL},
  };
  for (const Vector& v : vectors) {
    EXPECT_EQ(SipHash24(key, Sequence(v.length)), v.expected) << "length " << v.length;
  }
  EXPECT_EQ(SipHash24(key, "a"), 0x2ba3e8e9a71148caULL);
}

TEST(SipHashTest, DerivedKeysAreTheDocumentedOnes) {
  // SHA-256("sluice-bucket\0us-east-1")[0..16), as tests/integration/steering_model.py (an
  // independent implementation of the README's definition) computes it.
  SipKey key = SipKey::Derive("sluice-bucket", "us-east-1");
  EXPECT_EQ(SipHash24(key, "alice"), 17665281978896712339ULL);
  EXPECT_EQ(SipHash24(key, "member-12345"), 16791388343534763084ULL);
  EXPECT_NE(SipHash24(SipKey::Derive("sluice-savior", "us-east-1"), "alice"),
            SipHash24(key, "alice"));  // each use has its own key
}

TEST(SipHashTest, PairIsTwoSingleHashes) {
  // The reference vectors again, with a second, different key beside the reference one.
  const SipKey key = ReferenceKey();
  const SipKey other = SipKey::Derive("sluice-savior", "eu-west-1");
  for (int length : {0, 1, 7, 8, 9, 15, 16, 36, 63, 64, 200}) {
    uint64_t a = 0;
    uint64_t b = 0;
    SipHash24Pair(key, other, Sequence(length), &a, &b);
    EXPECT_EQ(a, SipHash24(key, Sequence(length))) << "length " << length;
    EXPECT_EQ(b, SipHash24(other, Sequence(length))) << "length " << length;
  }
  uint64_t a = 0;
  uint64_t b = 0;
  SipHash24Pair(key, key, Sequence(63), &a, &b);
  EXPECT_EQ(a, 0x958a324ceb064572ULL);
  EXPECT_EQ(b, 0x958a324ceb064572ULL);
}

TEST(SipHashTest, FourLanesAreFourSingleHashes) {
  const SipKey keys[] = {ReferenceKey(), SipKey::Derive("sluice-bucket", "us-east-1"),
                         SipKey::Derive("sluice-savior", "eu-west-1"),
                         SipKey::Derive("sluice-savior", "us-west-2")};
  for (int count = 1; count <= SipLanes::kLanes; ++count) {
    SipLanes lanes;
    for (int i = 0; i < count; ++i) ASSERT_TRUE(lanes.Add(keys[i]));
    EXPECT_EQ(lanes.Add(keys[0]), count < SipLanes::kLanes);  // false when full
    lanes.count = count;
    for (int length = 0; length <= 100; ++length) {
      const std::string data = Sequence(length);
      uint64_t vector[SipLanes::kLanes] = {1, 1, 1, 1};
      uint64_t portable[SipLanes::kLanes] = {1, 1, 1, 1};
      SipHash24x4(lanes, data, vector);
      SipHash24x4Portable(lanes, data, portable);
      for (int i = 0; i < SipLanes::kLanes; ++i) {
        const uint64_t expected = i < count ? SipHash24(keys[i], data) : 1;  // others untouched
        EXPECT_EQ(vector[i], expected) << count << " lanes, length " << length << ", lane " << i;
        EXPECT_EQ(portable[i], expected) << count << " lanes, length " << length << ", lane " << i;
      }
    }
  }
  // The reference vector, in every lane.
  SipLanes same;
  for (int i = 0; i < SipLanes::kLanes; ++i) same.Add(ReferenceKey());
  uint64_t out[SipLanes::kLanes] = {};
  SipHash24x4(same, Sequence(63), out);
  for (uint64_t hash : out) EXPECT_EQ(hash, 0x958a324ceb064572ULL);
}

}  // namespace
}  // namespace sluice
