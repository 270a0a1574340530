#include "proxy/http/url.h"

#include "absl/strings/str_format.h"
#include "common/strings.h"

namespace sluice {

absl::StatusOr<HttpOrigin> ParseHttpOrigin(std::string_view url) {
  bool tls = StartsWithIgnoreCase(url, "https://");
  if (!tls && !StartsWithIgnoreCase(url, "http://")) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: must be http://HOST:PORT or https://HOST:PORT (for example "
                        "http://127.0.0.1:2379)",
                        url));
  }
  std::string_view rest = url.substr(tls ? 8 : 7);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  HttpOrigin origin;
  origin.url = std::string(url);
  origin.tls = tls;
  if (absl::StatusOr<SocketAddress> address = SocketAddress::Parse(rest); address.ok()) {
    origin.address = *address;
    origin.port = address->port();
    origin.host = std::string(rest.substr(0, rest.rfind(':')));
    if (origin.host.size() > 2 && origin.host.front() == '[') {
      origin.host = origin.host.substr(1, origin.host.size() - 2);
    }
    return origin;
  }
  size_t colon = rest.rfind(':');
  uint32_t port = 0;
  std::string_view host = colon == std::string_view::npos ? rest : rest.substr(0, colon);
  bool valid = colon != std::string_view::npos && !host.empty() && host.size() <= 253 &&
               ParseInteger(rest.substr(colon + 1), &port) && port > 0 && port <= 65535;
  for (char c : host) valid = valid && (IsAsciiAlnum(c) || c == '-' || c == '.' || c == '_');
  if (!valid) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: must be http(s)://HOST:PORT with an IP address or a host name", url));
  }
  origin.host = std::string(host);
  origin.port = static_cast<uint16_t>(port);
  origin.named = true;
  return origin;
}

absl::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url) {
  const size_t scheme_end = url.find("://");
  const size_t slash =
      scheme_end == std::string_view::npos ? std::string_view::npos : url.find('/', scheme_end + 3);
  HttpUrl out;
  absl::StatusOr<HttpOrigin> origin = ParseHttpOrigin(url.substr(0, slash));
  if (!origin.ok()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: must be http(s)://HOST:PORT/PATH with an IP address or a host name", url));
  }
  out.origin = *std::move(origin);
  out.origin.url = std::string(url);
  out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  for (char c : out.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f ||
        c == '#') {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: the path must be printable ASCII without spaces or a #fragment", url));
    }
  }
  return out;
}

}  // namespace sluice
