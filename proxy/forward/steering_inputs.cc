#include "proxy/forward/steering_inputs.h"

#include <arpa/inet.h>

#include "common/strings.h"

namespace sluice {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view HeaderValue(const HeaderMap& headers, std::string_view name) {
  std::optional<std::string_view> value = headers.Get(name);
  return value ? Trim(*value) : std::string_view();
}

}  // namespace

std::string_view FindCookie(const HeaderMap& headers, std::string_view name) {
  for (size_t i = 0; i < headers.size(); ++i) {
    if (!EqualsIgnoreCase(headers.name(i), "cookie")) continue;
    std::string_view rest = headers.value(i);
    while (!rest.empty()) {
      size_t semicolon = rest.find(';');
      std::string_view pair = Trim(rest.substr(0, semicolon));
      rest = semicolon == std::string_view::npos ? std::string_view() : rest.substr(semicolon + 1);
      size_t equals = pair.find('=');
      if (equals == std::string_view::npos || Trim(pair.substr(0, equals)) != name) continue;
      std::string_view value = Trim(pair.substr(equals + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      if (!value.empty()) return value;
    }
  }
  return {};
}

bool TunneledClient(const HeaderMap& headers, SocketAddress* out) {
  std::string_view last;
  for (size_t i = 0; i < headers.size(); ++i) {
    if (headers.kind(i) != HeaderKind::kXForwardedFor) continue;
    ForEachListElement(headers.value(i), [&](std::string_view element) { last = element; });
  }
  if (last.empty() || last.size() >= 64) return false;
  char text[64];
  last.copy(text, last.size());
  text[last.size()] = '\0';
  uint8_t bytes[16];
  if (inet_pton(AF_INET, text, bytes) == 1) {
    *out = SocketAddress::FromIpv4(bytes, 0);
    return true;
  }
  if (inet_pton(AF_INET6, text, bytes) == 1) {
    *out = SocketAddress::FromIpv6(bytes, 0);
    return true;
  }
  return false;
}

SocketAddress CohortClientAddress(const HeaderMap& headers, const SocketAddress& client,
                                  bool from_trusted_proxy) {
  SocketAddress forwarded;
  if (from_trusted_proxy && TunneledClient(headers, &forwarded)) return forwarded;
  return client;
}

int MapHomeRegion(const HomeRegionMap& map, std::string_view member) {
  for (const auto& [prefix, region] : map.prefixes) {
    if (member.starts_with(prefix)) return region;
  }
  if (map.ranges.empty()) return -1;
  uint32_t bucket = static_cast<uint32_t>(SipHash24(map.key, member) % kBasisPoints);
  for (const HomeRegionMap::Range& range : map.ranges) {
    if (bucket >= range.from && bucket < range.to) return range.region;
  }
  return -1;
}

void ReadSteeringInputs(const SteeringConfig& config, const SteeringTable& table,
                        std::span<const CohortCidrMapPtr> cidr_maps, const RequestHead& request,
                        const Identity& identity, const RequestClient& client,
                        MemberIdBuffer* buffer, MemberRequest* out) {
  const bool trust_headers = client.trust_headers;
  std::string_view member;
  for (const MemberIdSource& source : config.member_id) {
    switch (source.kind) {
      case MemberIdSource::Kind::kClaim:
        if (identity.verified()) member = identity.member_id;
        break;
      case MemberIdSource::Kind::kCookie:
        if (trust_headers) member = FindCookie(request.headers, source.name);
        break;
      case MemberIdSource::Kind::kHeader:
        if (trust_headers) member = HeaderValue(request.headers, source.name);
        break;
    }
    if (!member.empty()) break;
  }
  if (member.empty()) {
    size_t n = client.address.FormatIp(buffer->text, sizeof(buffer->text));
    member = std::string_view(buffer->text, n);
  }
  out->member = member;

  out->home = -1;
  for (const HomeRegionSource& source : config.home_region) {
    switch (source.kind) {
      case HomeRegionSource::Kind::kClaim:
        if (identity.verified() && !identity.home_region.empty()) {
          out->home = table.FindRegion(identity.home_region);
        }
        break;
      case HomeRegionSource::Kind::kHeader: {
        std::string_view value = trust_headers ? HeaderValue(request.headers, source.name) : "";
        if (!value.empty()) out->home = table.FindRegion(value);
        break;
      }
      case HomeRegionSource::Kind::kMap:
        out->home = MapHomeRegion(config.home_map, member);
        break;
    }
    if (out->home >= 0) break;
  }

  out->cohort = -1;
  for (size_t i = 0; i < config.cohort_rules.size(); ++i) {
    const CohortRule& rule = config.cohort_rules[i];
    if (rule.kind == CohortRule::Kind::kCidrFile) {
      const CohortCidrMap* map =
          i < cidr_maps.size() && cidr_maps[i] ? cidr_maps[i].get() : rule.cidr.get();
      if (map) out->cohort = map->Find(client.cohort_address);
      if (out->cohort >= 0) break;
      continue;
    }
    std::string_view value;
    switch (rule.kind) {
      case CohortRule::Kind::kHeader:
        if (trust_headers) value = HeaderValue(request.headers, rule.name);
        break;
      case CohortRule::Kind::kClaimTier:
        if (identity.verified()) value = identity.tier;
        break;
      case CohortRule::Kind::kClaimHomeRegion:
        if (identity.verified()) value = identity.home_region;
        break;
      case CohortRule::Kind::kCidrFile:
        break;
    }
    if (value.empty()) continue;
    for (const auto& [match, cohort] : rule.values) {
      if (EqualsIgnoreCase(value, match)) {
        out->cohort = cohort;
        break;
      }
    }
    if (out->cohort >= 0) break;
  }
}

}  // namespace sluice
