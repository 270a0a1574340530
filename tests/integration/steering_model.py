"""An independent model of sluice's documented steering decision (README "Steering", DESIGN.md):
SipHash-2-4 keyed by SHA-256-derived keys, buckets in basis points, weighted rendezvous
saviors. Integration tests predict from it which origin must see which member, so the C++
decision is checked against the documentation rather than against itself.
"""

import hashlib
import math
import struct

MASK = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def siphash24(key, data):
    k0, k1 = struct.unpack("<QQ", key)
    v0 = k0 ^ 0x736F6D6570736575
    v1 = k1 ^ 0x646F72616E646F6D
    v2 = k0 ^ 0x6C7967656E657261
    v3 = k1 ^ 0x7465646279746573

    def rounds(n):
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & MASK
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & MASK
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & MASK
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & MASK
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        (m,) = struct.unpack("<Q", data[i:i + 8])
        v3 ^= m
        rounds(2)
        v0 ^= m
    last = (len(data) & 0xFF) << 56
    for i, byte in enumerate(data[whole:]):
        last |= byte << (8 * i)
    v3 ^= last
    rounds(2)
    v0 ^= last
    v2 ^= 0xFF
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def derive_key(domain, salt):
    return hashlib.sha256(domain.encode() + b"\0" + salt.encode()).digest()[:16]


def bucket(region_salt, member):
    return siphash24(derive_key("sluice-bucket", region_salt), member.encode()) % 10000


def savior_score(savior_salt, member, weight):
    h = siphash24(derive_key("sluice-savior", savior_salt), member.encode())
    u = ((h >> 11) + 0.5) * 2.0 ** -53
    return weight / -math.log(u)


def pick_savior(saviors, member, skip=()):
    """saviors: {region: weight}; the salt of a region is its name."""
    best, best_score = None, 0.0
    for region, weight in saviors.items():
        if region in skip or weight == 0:
            continue
        score = savior_score(region, member, weight)
        if best is None or score > best_score:
            best, best_score = region, score
    return best


def decide(member, local, evacuations, home=None, misrouted="proxy_home", skip=(), regions=(),
           unhealthy=()):
    """evacuations: {region: (basis_points, {savior: weight})}; regions: every region's name;
    skip: regions out of reach; unhealthy: regions marked unhealthy. Returns the serving
    region.

    A savior is usable when it is not the region being left, not out of reach, not unhealthy
    and not wholly evacuated (one evacuating part of its members still takes others). With no
    usable savior, the same rendezvous with weight 1 over every usable region; with none of
    those either, the member stays."""
    target = home if (misrouted == "proxy_home" and home and home != local) else local
    fraction, saviors = evacuations.get(target, (0, {}))
    if fraction and bucket(target, member) < fraction:
        gone = {r for r, (f, _) in evacuations.items() if f >= 10000}
        excluded = set(skip) | gone | set(unhealthy) | {target}
        savior = pick_savior(saviors, member, excluded)
        if not savior:
            savior = pick_savior({r: 1 for r in regions}, member, excluded)
        if savior:
            return savior
    return target
