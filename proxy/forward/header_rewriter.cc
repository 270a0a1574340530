#include "proxy/forward/header_rewriter.h"

#include "common/strings.h"
#include "proxy/http/http1_serializer.h"

namespace sluice {

void FormatRequestId(uint64_t hi, uint64_t lo, char out[kRequestIdLength]) {
  // Version 4, variant 1 (RFC 9562 section 5.4).
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  static constexpr char kHex[] = "0123456789abcdef";
  int pos = 0;
  for (int i = 0; i < 32; ++i) {
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23) out[pos++] = '-';
    uint64_t word = i < 16 ? hi : lo;
    int shift = 60 - 4 * (i % 16);
    out[pos++] = kHex[(word >> shift) & 15];
  }
}

std::string FormatRequestId(uint64_t hi, uint64_t lo) {
  char id[kRequestIdLength];
  FormatRequestId(hi, lo, id);
  return std::string(id, sizeof(id));
}

void PrepareUpstreamRequest(RequestHead& head, const ProxyOptions& options,
                            const DownstreamInfo& downstream, uint64_t random_hi,
                            uint64_t random_lo, bool trusted_peer) {
  const bool trusted = trusted_peer || options.trusted_proxies.Contains(downstream.client);
  const bool append_xff = trusted || options.forwarded_for == ForwardedForMode::kAppend;

  // Collect what survives of the old X-Forwarded-For before removing the fields.
  std::string forwarded_for;
  bool has_proto = false;
  bool has_request_id = false;
  for (size_t i = 0; i < head.headers.size(); ++i) {
    HeaderKind kind = head.headers.kind(i);
    if (kind == HeaderKind::kXForwardedFor && append_xff) {
      if (!forwarded_for.empty()) forwarded_for.append(", ");
      forwarded_for.append(head.headers.value(i));
    } else if (kind == HeaderKind::kXForwardedProto && trusted) {
      has_proto = true;
    } else if (!has_request_id && kind == HeaderKind::kOther &&
               EqualsIgnoreCase(head.headers.name(i), options.request_id_header)) {
      has_request_id = !head.headers.value(i).empty();
    }
  }
  const bool keep_upgrade = head.upgrade;
  head.headers.RemoveIf([&](size_t i) {
    HeaderKind kind = head.headers.kind(i);
    switch (kind) {
      case HeaderKind::kUpgrade:
        return !keep_upgrade;
      case HeaderKind::kXForwardedFor:
      case HeaderKind::kSluiceInternal:
      case HeaderKind::kExpect:         // 100-continue is answered by sluice itself
      case HeaderKind::kContentLength:  // re-emitted from the framing
        return true;
      case HeaderKind::kXForwardedProto:
      case HeaderKind::kXForwardedHost:
      case HeaderKind::kXForwardedPort:
      case HeaderKind::kForwarded:
      case HeaderKind::kXRealIp:
        // What a client says about where it came from reaches origins only through a proxy
        // that sluice trusts (proxy.trusted_proxies) or a verified tunnel.
        return !trusted;
      default:
        return IsHopByHop(kind);
    }
  });

  if (!forwarded_for.empty()) forwarded_for.append(", ");
  forwarded_for.append(downstream.ClientIp());
  head.headers.Add("X-Forwarded-For", forwarded_for);
  if (!has_proto) head.headers.Add("X-Forwarded-Proto", downstream.scheme);
  if (!options.via.empty()) {
    std::string via = head.version == HttpVersion::kHttp10  ? "1.0 "
                      : head.version == HttpVersion::kHttp2 ? "2 "
                                                            : "1.1 ";
    via.append(options.via);
    head.headers.Add("Via", via);
  }
  if (!has_request_id && !options.request_id_header.empty()) {
    char id[kRequestIdLength];  // formatted in place: no string to allocate per request
    FormatRequestId(random_hi, random_lo, id);
    head.headers.Add(options.request_id_header, std::string_view(id, sizeof(id)));
  }
}

void SerializeUpstreamRequest(const RequestHead& head, std::string_view default_host,
                              std::string* out) {
  std::string_view path = head.path.empty() ? std::string_view("/") : head.path;
  AppendRequestLine(out, head.method_text, path, head.query);
  if (head.headers.CountKind(HeaderKind::kHost) == 0) {
    AppendField(out, "Host", head.authority.empty() ? default_host : head.authority);
  }
  AppendFields(out, head.headers);
  switch (head.framing) {
    case BodyFraming::kContentLength:
      out->append("Content-Length: ");
      AppendDecimal(out, head.content_length);
      out->append("\r\n");
      break;
    case BodyFraming::kChunked:
      out->append("Transfer-Encoding: chunked\r\n");
      break;
    default:
      break;
  }
  if (head.upgrade) out->append("Connection: upgrade\r\n");
  out->append("\r\n");
}

void PrepareDownstreamResponse(ResponseHead& head, const ProxyOptions& options) {
  const bool keep_upgrade = head.status == 101;
  const bool keep_length = head.framing == BodyFraming::kNone;
  head.headers.RemoveIf([&](size_t i) {
    HeaderKind kind = head.headers.kind(i);
    switch (kind) {
      case HeaderKind::kUpgrade:
        return !keep_upgrade;
      case HeaderKind::kSluiceInternal:
        return true;
      case HeaderKind::kContentLength:
        return !keep_length;
      default:
        return IsHopByHop(kind);
    }
  });
  if (!options.via.empty()) {
    std::string via = head.version == HttpVersion::kHttp10  ? "1.0 "
                      : head.version == HttpVersion::kHttp2 ? "2 "
                                                            : "1.1 ";
    via.append(options.via);
    head.headers.Add("Via", via);
  }
}

}  // namespace sluice
