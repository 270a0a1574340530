// SHA-256 digests of secrets (API keys, admin tokens): configurations store the digest, never
// the secret, and requests are compared digest to digest in constant time.
#ifndef SLUICE_COMMON_SHA256_H_
#define SLUICE_COMMON_SHA256_H_

#include <array>
#include <string_view>

namespace sluice {

using Sha256Digest = std::array<unsigned char, 32>;

Sha256Digest Sha256(std::string_view data);

// Constant time: how much of two digests agree never shows in the time taken.
bool DigestsEqual(const Sha256Digest& a, const Sha256Digest& b);

}  // namespace sluice

#endif  // SLUICE_COMMON_SHA256_H_
