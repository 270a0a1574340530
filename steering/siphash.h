// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012): a keyed
// 64-bit hash that is the same on every machine, process and version. Steering hashes member
// ids with it, so a member gets the same answer on every node that has the same table; never
// absl::Hash or std::hash, which are seeded per process.
#ifndef SLUICE_STEERING_SIPHASH_H_
#define SLUICE_STEERING_SIPHASH_H_

#include <array>
#include <cstdint>
#include <string_view>

namespace sluice {

// The 128-bit key as two little-endian 64-bit words (bytes 0..7 and 8..15).
struct SipKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;

  static SipKey FromBytes(const std::array<uint8_t, 16>& bytes);
  // The first 16 bytes of SHA-256(domain || 0x00 || salt): how steering turns a configured
  // salt into keys, with a different domain for each use so the hashes are independent.
  static SipKey Derive(std::string_view domain, std::string_view salt);
};

uint64_t SipHash24(const SipKey& key, std::string_view data);

// SipHash-2-4's state after the initialization with up to four keys, one lane per key: the key
// schedule, computed once (a steering table keeps one for each group of keys a decision hashes
// a member with).
struct SipLanes {
  static constexpr int kLanes = 4;
  alignas(32) uint64_t v0[kLanes] = {};
  alignas(32) uint64_t v1[kLanes] = {};
  alignas(32) uint64_t v2[kLanes] = {};
  alignas(32) uint64_t v3[kLanes] = {};
  int count = 0;  // lanes in use (the first `count`)

  // Appends a lane for `key`; false when all four are in use.
  bool Add(const SipKey& key);
};

// out[i] = SipHash24(key of lane i, data) for the lanes in use (the others are left as they
// are). The lanes run side by side in one pass over `data`, in vector registers when the CPU
// has AVX-512VL or AVX2 (checked at the first call): four hashes take about 1.4 times one.
void SipHash24x4(const SipLanes& lanes, std::string_view data, uint64_t out[SipLanes::kLanes]);
// The same, lane after lane, without vector registers: what SipHash24x4 does on other CPUs
// (tests compare the two).
void SipHash24x4Portable(const SipLanes& lanes, std::string_view data,
                         uint64_t out[SipLanes::kLanes]);
// SipHash24(a, data) and SipHash24(b, data) at once, in about the time of one: the two
// independent chains of rounds run side by side.
void SipHash24Pair(const SipKey& a, const SipKey& b, std::string_view data, uint64_t* out_a,
                   uint64_t* out_b);

}  // namespace sluice

#endif  // SLUICE_STEERING_SIPHASH_H_
