#include "steering/siphash.h"

#include <openssl/sha.h>

#include <endian.h>

#include <atomic>
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

// The last block: the remaining bytes, and the length's low byte on top. With a whole block
// before them, the remaining bytes are the top of the last eight: one load, no loop.
uint64_t LastBlock(const unsigned char* p, size_t n) {
  const size_t tail = n & 7;
  const uint64_t last = static_cast<uint64_t>(n & 0xff) << 56;
  if (tail == 0) return last;
  if (n >= 8) return last | Load64(p + n - 8) >> (64 - 8 * tail);
  uint64_t bytes = 0;
  for (size_t i = 0; i < tail; ++i) bytes |= static_cast<uint64_t>(p[i]) << (8 * i);
  return last | bytes;
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

bool SipLanes::Add(const SipKey& key) {
  if (count >= kLanes) return false;
  const State s = Init(key);
  const auto lane = static_cast<size_t>(count++);
  v0[lane] = s.v0;
  v1[lane] = s.v1;
  v2[lane] = s.v2;
  v3[lane] = s.v3;
  return true;
}

void SipHash24x4Portable(const SipLanes& lanes, std::string_view data,
                         uint64_t out[SipLanes::kLanes]) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t whole = n & ~size_t{7};
  const uint64_t last = LastBlock(p, n);
  for (size_t lane = 0; lane < static_cast<size_t>(lanes.count); ++lane) {
    State s{lanes.v0[lane], lanes.v1[lane], lanes.v2[lane], lanes.v3[lane]};
    for (size_t i = 0; i < whole; i += 8) s.Compress(Load64(p + i));
    s.Compress(last);
    out[lane] = Finish(s);
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SLUICE_SIPHASH_VECTOR 1

namespace {

// The four lanes' v0 (or v1, v2, v3) in one 256-bit register (GCC's vector extension, which
// clang has too). Only functions compiled for AVX2 or above touch it, always inlined into the
// two entry points below, so no value of it crosses a call (the ABI would differ).
typedef uint64_t SipVector __attribute__((vector_size(32)));

#define SLUICE_SIPHASH_AVX2 __attribute__((always_inline, target("avx2"))) inline

// Compiled for AVX-512VL the rotations become one instruction each (vprolq).
template <int kBits>
SLUICE_SIPHASH_AVX2 SipVector RotlVector(SipVector x) {
  return (x << kBits) | (x >> (64 - kBits));
}

struct VectorState {
  SipVector v0, v1, v2, v3;

  SLUICE_SIPHASH_AVX2 void Round() {
    v0 += v1;
    v1 = RotlVector<13>(v1);
    v1 ^= v0;
    v0 = RotlVector<32>(v0);
    v2 += v3;
    v3 = RotlVector<16>(v3);
    v3 ^= v2;
    v0 += v3;
    v3 = RotlVector<21>(v3);
    v3 ^= v0;
    v2 += v1;
    v1 = RotlVector<17>(v1);
    v1 ^= v2;
    v2 = RotlVector<32>(v2);
  }
  SLUICE_SIPHASH_AVX2 void Compress(uint64_t word) {
    const SipVector m = {word, word, word, word};
    v3 ^= m;
    Round();
    Round();
    v0 ^= m;
  }
};

SLUICE_SIPHASH_AVX2 void VectorHash(const SipLanes& lanes, std::string_view data,
                                    uint64_t out[SipLanes::kLanes]) {
  VectorState s;
  std::memcpy(&s.v0, lanes.v0, sizeof s.v0);
  std::memcpy(&s.v1, lanes.v1, sizeof s.v1);
  std::memcpy(&s.v2, lanes.v2, sizeof s.v2);
  std::memcpy(&s.v3, lanes.v3, sizeof s.v3);
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t n = data.size();
  const size_t whole = n & ~size_t{7};
  for (size_t i = 0; i < whole; i += 8) s.Compress(Load64(p + i));
  s.Compress(LastBlock(p, n));
  const SipVector ff = {0xff, 0xff, 0xff, 0xff};
  s.v2 ^= ff;
  for (int i = 0; i < 4; ++i) s.Round();
  const SipVector result = s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
  // Fixed-size copies (a copy of `count` words would be a call to memcpy).
  switch (lanes.count) {
    case 4:
      std::memcpy(out, &result, 4 * sizeof(uint64_t));
      break;
    case 3:
      std::memcpy(out, &result, 3 * sizeof(uint64_t));
      break;
    case 2:
      std::memcpy(out, &result, 2 * sizeof(uint64_t));
      break;
    case 1:
      std::memcpy(out, &result, sizeof(uint64_t));
      break;
    default:
      break;
  }
}

__attribute__((target("avx2"))) void SipHash24x4Avx2(const SipLanes& lanes, std::string_view data,
                                                     uint64_t out[SipLanes::kLanes]) {
  VectorHash(lanes, data, out);
}

__attribute__((target("avx2,avx512f,avx512vl"))) void SipHash24x4Avx512(
    const SipLanes& lanes, std::string_view data, uint64_t out[SipLanes::kLanes]) {
  VectorHash(lanes, data, out);
}

using SipHash24x4Function = void (*)(const SipLanes&, std::string_view, uint64_t*);

void ResolveSipHash24x4(const SipLanes& lanes, std::string_view data,
                        uint64_t out[SipLanes::kLanes]);

// The first call picks the variant for this CPU (whichever thread gets there first: they all
// pick the same one).
constinit std::atomic<SipHash24x4Function> g_sip_hash_24x4{ResolveSipHash24x4};

void ResolveSipHash24x4(const SipLanes& lanes, std::string_view data,
                        uint64_t out[SipLanes::kLanes]) {
  __builtin_cpu_init();  // in case this runs before the constructor that does it
  SipHash24x4Function chosen = SipHash24x4Portable;
  if (__builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512f")) {
    chosen = SipHash24x4Avx512;
  } else if (__builtin_cpu_supports("avx2")) {
    chosen = SipHash24x4Avx2;
  }
  g_sip_hash_24x4.store(chosen, std::memory_order_relaxed);
  chosen(lanes, data, out);
}

}  // namespace

#undef SLUICE_SIPHASH_AVX2
#endif

void SipHash24x4(const SipLanes& lanes, std::string_view data, uint64_t out[SipLanes::kLanes]) {
#ifdef SLUICE_SIPHASH_VECTOR
  g_sip_hash_24x4.load(std::memory_order_relaxed)(lanes, data, out);
#else
  SipHash24x4Portable(lanes, data, out);
#endif
}

}  // namespace sluice
