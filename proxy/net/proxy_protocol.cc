#include "proxy/net/proxy_protocol.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

namespace sluice {
namespace {

using Status = ProxyParseResult::Status;

constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r',
                                   '\n', 'Q',  'U',  'I',  'T',  '\n'};
constexpr size_t kV1MaxBytes = 107;

ProxyParseResult Fail(const char* error) {
  ProxyParseResult r;
  r.status = Status::kError;
  r.error = error;
  return r;
}

bool ParsePort(std::string_view text, uint16_t* port) {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text.front() == '0')) return false;
  uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

bool ParseIp(std::string_view text, int family, SocketAddress* out, uint16_t port) {
  if (text.empty() || text.size() > 45) return false;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  uint8_t bytes[16];
  if (inet_pton(family, buf, bytes) != 1) return false;
  *out = family == AF_INET ? SocketAddress::FromIpv4(bytes, port)
                           : SocketAddress::FromIpv6(bytes, port);
  return true;
}

ProxyParseResult ParseV1(std::string_view data) {
  size_t end = data.find("\r\n");
  if (end == std::string_view::npos) {
    if (data.size() >= kV1MaxBytes) return Fail("PROXY v1 header too long");
    if (data.find('\n') != std::string_view::npos) return Fail("PROXY v1 header without CRLF");
    return {};
  }
  if (end + 2 > kV1MaxBytes) return Fail("PROXY v1 header too long");
  std::string_view line = data.substr(0, end);
  // "PROXY" SP proto [SP src SP dst SP sport SP dport]
  std::string_view fields[6];
  size_t count = 0;
  size_t start = 0;
  while (start <= line.size()) {
    size_t space = line.find(' ', start);
    if (space == std::string_view::npos) space = line.size();
    if (count == 6) return Fail("PROXY v1 header has too many fields");
    fields[count++] = line.substr(start, space - start);
    start = space + 1;
  }
  ProxyParseResult r;
  r.status = Status::kDone;
  r.consumed = end + 2;
  if (count >= 2 && fields[1] == "UNKNOWN") return r;  // the rest of the line is ignored
  if (count != 6) return Fail("PROXY v1 header needs protocol, two addresses and two ports");
  int family;
  if (fields[1] == "TCP4") {
    family = AF_INET;
  } else if (fields[1] == "TCP6") {
    family = AF_INET6;
  } else {
    return Fail("PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN");
  }
  uint16_t source_port, destination_port;
  if (!ParsePort(fields[4], &source_port) || !ParsePort(fields[5], &destination_port)) {
    return Fail("PROXY v1 header has an invalid port");
  }
  if (!ParseIp(fields[2], family, &r.header.source, source_port) ||
      !ParseIp(fields[3], family, &r.header.destination, destination_port)) {
    return Fail("PROXY v1 header has an invalid address");
  }
  r.header.has_addresses = true;
  return r;
}

uint16_t ReadBigEndian16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}

ProxyParseResult ParseV2(std::string_view data) {
  if (data.size() < 16) return {};
  uint8_t version_command = static_cast<uint8_t>(data[12]);
  uint8_t family_protocol = static_cast<uint8_t>(data[13]);
  size_t length = ReadBigEndian16(data.data() + 14);
  if ((version_command >> 4) != 2) return Fail("PROXY v2 header with unknown version");
  uint8_t command = version_command & 0x0f;
  if (command > 1) return Fail("PROXY v2 header with unknown command");
  if (16 + length > kMaxProxyHeaderBytes) return Fail("PROXY v2 header too long");
  if (data.size() < 16 + length) return {};

  ProxyParseResult r;
  r.status = Status::kDone;
  r.consumed = 16 + length;
  if (command == 0) return r;  // LOCAL: the balancer's own connection
  const char* body = data.data() + 16;
  switch (family_protocol) {
    case 0x11:    // TCP over IPv4
    case 0x12: {  // UDP over IPv4 (addresses still meaningful)
      if (length < 12) return Fail("PROXY v2 IPv4 addresses truncated");
      uint8_t src[4], dst[4];
      std::memcpy(src, body, 4);
      std::memcpy(dst, body + 4, 4);
      r.header.source = SocketAddress::FromIpv4(src, ReadBigEndian16(body + 8));
      r.header.destination = SocketAddress::FromIpv4(dst, ReadBigEndian16(body + 10));
      r.header.has_addresses = true;
      return r;
    }
    case 0x21:
    case 0x22: {
      if (length < 36) return Fail("PROXY v2 IPv6 addresses truncated");
      uint8_t src[16], dst[16];
      std::memcpy(src, body, 16);
      std::memcpy(dst, body + 16, 16);
      r.header.source = SocketAddress::FromIpv6(src, ReadBigEndian16(body + 32));
      r.header.destination = SocketAddress::FromIpv6(dst, ReadBigEndian16(body + 34));
      r.header.has_addresses = true;
      return r;
    }
    default:
      // UNSPEC or UNIX sockets: no usable address, keep the socket's.
      return r;
  }
}

}  // namespace

ProxyParseResult ParseProxyHeader(std::string_view data) {
  size_t common = std::min(data.size(), sizeof(kV2Signature));
  if (std::memcmp(data.data(), kV2Signature, common) == 0) {
    return common < sizeof(kV2Signature) ? ProxyParseResult{} : ParseV2(data);
  }
  constexpr std::string_view kV1Prefix = "PROXY ";
  size_t prefix = std::min(data.size(), kV1Prefix.size());
  if (data.substr(0, prefix) != kV1Prefix.substr(0, prefix)) {
    return Fail("connection did not start with a PROXY protocol header");
  }
  if (prefix < kV1Prefix.size()) return {};
  return ParseV1(data);
}

}  // namespace sluice
