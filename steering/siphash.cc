#include "steering/siphash.h"

#include <openssl/sha.h>

#include <endian.h>

#include <cstring>
#include <string>

namespace sluice {
namespace {

inline uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline uint64_t Load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);  // one load; the byte order is fixed below
  return le64toh(v);             // little-endian on any host
}

struct State {
  uint64_t v0, v1, v2, v3;

  void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }
  void Compress(uint64_t m) {
    v3 ^= m;
    Round();
    Round();
    v0 ^= m;
  }
};

}  // namespace

SipKey SipKey::FromBytes(const std::array<uint8_t, 16>& bytes) {
  return SipKey{Load64(bytes.data()), Load64(bytes.data() + 8)};
}

SipKey SipKey::Derive(std::string_view domain, std::string_view salt) {
  std::string input(domain);
  input.push_back('\0');
  input.append(salt);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return SipKey{Load64(digest), Load64(digest + 8)};
}

namespace {

State Init(const SipKey& key) {
  // The initialization constants spell "somepseudorandomlygeneratedbytes".
  return State{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL,
               key.k0 ^ 0x6c7967656e657261ULL, key.k1 ^ 0x7465646279746573ULL};
}

// The last block: the remaining bytes, and the length's low byte on top.
uint64_t LastBlock(const unsigned char* p, size_t n) {
  const size_t whole = n & ~size_t{7};
  uint64_t last = static_cast<uint64_t>(n & 0xff) << 56;
  for (size_t i = 0; i < (n & 7); ++i) last |= static_cast<uint64_t>(p[whole + i]) << (8 * i);
  return last;
}

uint64_t Finish(State s) {
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.Round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace

uint64_t SipHash24(const SipKey& key, std::string_view data) {
  State s = Init(key);
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t whole = n & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) s.Compress(Load64(p + i));
  s.Compress(LastBlock(p, n));
  return Finish(s);
}

void SipHash24Pair(const SipKey& a, const SipKey& b, std::string_view data, uint64_t* out_a,
                   uint64_t* out_b) {
  // Two independent chains in one loop: the CPU runs their rounds side by side.
  State sa = Init(a);
  State sb = Init(b);
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t whole = n & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) {
    const uint64_t m = Load64(p + i);
    sa.Compress(m);
    sb.Compress(m);
  }
  const uint64_t last = LastBlock(p, n);
  sa.Compress(last);
  sb.Compress(last);
  *out_a = Finish(sa);
  *out_b = Finish(sb);
}

}  // namespace sluice
