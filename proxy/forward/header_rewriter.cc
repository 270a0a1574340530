#include "proxy/forward/header_rewriter.h"

#include <cstring>

#include "common/strings.h"
#include "proxy/http/http1_serializer.h"

namespace sluice {

namespace {

// The two lower-case hex digits of every byte value.
struct HexPairTable {
  char pairs[256][2] = {};
  constexpr HexPairTable() {
    constexpr char kDigits[] = "0123456789abcdef";
    for (int i = 0; i < 256; ++i) {
      pairs[i][0] = kDigits[i >> 4];
      pairs[i][1] = kDigits[i & 15];
    }
  }
};
constexpr HexPairTable kHexPairs;

// Writes the bytes of `word` from the most significant, `count` of them from byte `first`.
char* PutHexBytes(char* out, uint64_t word, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    std::memcpy(out, kHexPairs.pairs[(word >> (56 - 8 * i)) & 0xff], 2);
    out += 2;
  }
  return out;
}

}  // namespace

void FormatRequestId(uint64_t hi, uint64_t lo, char out[kRequestIdLength]) {
  // Version 4, variant 1 (RFC 9562 section 5.4).
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  // 8-4-4-4-12 hex digits: bytes 0-3, 4-5 and 6-7 of hi, 0-1 and 2-7 of lo.
  char* p = PutHexBytes(out, hi, 0, 4);
  *p++ = '-';
  p = PutHexBytes(p, hi, 4, 2);
  *p++ = '-';
  p = PutHexBytes(p, hi, 6, 2);
  *p++ = '-';
  p = PutHexBytes(p, lo, 0, 2);
  *p++ = '-';
  PutHexBytes(p, lo, 2, 6);
}

std::string FormatRequestId(uint64_t hi, uint64_t lo) {
  char id[kRequestIdLength];
  FormatRequestId(hi, lo, id);
  return std::string(id, sizeof(id));
}

namespace {

// "1.1 " for Via, from the version the message arrived with.
std::string_view ViaVersion(HttpVersion version) {
  switch (version) {
    case HttpVersion::kHttp10:
      return "1.0 ";
    case HttpVersion::kHttp2:
      return "2 ";
    default:
      return "1.1 ";
  }
}

// Adds "Via: <version> <options.via>" in place: no string is built for it.
void AddVia(HeaderMap& headers, HttpVersion version, std::string_view via) {
  headers.BeginField();
  headers.AppendName("Via");
  headers.AppendValue(ViaVersion(version));
  headers.AppendValue(via);
  headers.FinishField(HeaderKind::kVia);
}

}  // namespace

void PrepareUpstreamRequest(RequestHead& head, const ProxyOptions& options,
                            const DownstreamInfo& downstream, uint64_t random_hi,
                            uint64_t random_lo, bool trusted_peer) {
  HeaderMap& headers = head.headers;
  const bool trusted = trusted_peer || options.trusted_proxies.Contains(downstream.client);
  const bool append_xff = trusted || options.forwarded_for == ForwardedForMode::kAppend;

  // The new X-Forwarded-For is built in place at the end of the map, from what survives of the
  // old ones, before those go: no string is built for it. The values are read by index each
  // time because appending may move the map's bytes (one append copes with its own bytes).
  const size_t fields = headers.size();
  bool has_proto = false;
  bool has_request_id = false;
  bool has_forwarded_for = false;
  headers.BeginField();
  headers.AppendName("X-Forwarded-For");
  for (size_t i = 0; i < fields; ++i) {
    HeaderKind kind = headers.kind(i);
    if (kind == HeaderKind::kXForwardedFor && append_xff) {
      if (has_forwarded_for) headers.AppendValue(", ");
      headers.AppendValue(headers.value(i));
      has_forwarded_for = !headers.value(fields).empty();
    } else if (kind == HeaderKind::kXForwardedProto && trusted) {
      has_proto = true;
    } else if (!has_request_id && kind == HeaderKind::kOther &&
               EqualsIgnoreCase(headers.name(i), options.request_id_header)) {
      has_request_id = !headers.value(i).empty();
    }
  }
  if (has_forwarded_for) headers.AppendValue(", ");
  headers.AppendValue(downstream.ClientIp());
  headers.FinishField(HeaderKind::kXForwardedFor);

  const bool keep_upgrade = head.upgrade;
  headers.RemoveIf([&](size_t i) {
    if (i == fields) return false;  // the X-Forwarded-For just built
    HeaderKind kind = headers.kind(i);
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

  if (!has_proto) headers.Add("X-Forwarded-Proto", downstream.scheme());
  if (!options.via.empty()) AddVia(headers, head.version, options.via);
  if (!has_request_id && !options.request_id_header.empty()) {
    char id[kRequestIdLength];  // formatted in place: no string to allocate per request
    FormatRequestId(random_hi, random_lo, id);
    headers.Add(options.request_id_header, std::string_view(id, sizeof(id)));
  }
}

void SerializeUpstreamRequest(const RequestHead& head, std::string_view default_host,
                              std::string* out) {
  std::string_view path = head.path.empty() ? std::string_view("/") : head.path;
  // Room for everything at once; a buffer reused from one request to the next has it already.
  constexpr size_t kLinesBesideTheFields = 128;  // request line's version, framing, Host's name
  out->reserve(out->size() + head.method_text.size() + path.size() + head.query.size() +
               head.authority.size() + default_host.size() + head.headers.SerializedSizeBound() +
               kLinesBesideTheFields);
  AppendRequestLine(out, head.method_text, path, head.query);
  if (!head.headers.GetKind(HeaderKind::kHost)) {
    AppendField(out, "Host", head.authority.empty() ? default_host : head.authority);
  }
  AppendFields(out, head.headers);
  switch (head.framing) {
    case BodyFraming::kContentLength:
      AppendLiteral(out, "Content-Length: ");
      AppendDecimal(out, head.content_length);
      AppendLiteral(out, "\r\n");
      break;
    case BodyFraming::kChunked:
      AppendLiteral(out, "Transfer-Encoding: chunked\r\n");
      break;
    default:
      break;
  }
  if (head.upgrade) AppendLiteral(out, "Connection: upgrade\r\n");
  AppendLiteral(out, "\r\n");
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
  if (!options.via.empty()) AddVia(head.headers, head.version, options.via);
}

}  // namespace sluice
