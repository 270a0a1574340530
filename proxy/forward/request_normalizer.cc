#include "proxy/forward/request_normalizer.h"
#include "common/strings.h"

namespace sluice {
namespace {

RequestVerdict Refuse(const char* reason) { return {400, reason}; }

bool IsRegNameChar(unsigned char c) {
  // unreserved / pct-encoded / sub-delims (RFC 3986 section 3.2.2).
  if (IsAsciiAlnum(c)) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '%':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
      return true;
    default:
      return false;
  }
}

// Splits "host[:port]" into host; false when the syntax is wrong.
bool SplitAuthority(std::string_view authority, std::string_view* host) {
  if (authority.empty()) return false;
  std::string_view port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    for (char c : authority.substr(1, close - 1)) {
      if (!IsAsciiHexDigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') {
        return false;
      }
    }
    *host = authority.substr(0, close + 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else {
    size_t colon = authority.find(':');
    *host = authority.substr(0, colon);
    if (host->empty()) return false;
    for (char c : *host) {
      if (!IsRegNameChar(static_cast<unsigned char>(c))) return false;
    }
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return false;
    }
  }
  if (port.size() > 5) return false;
  for (char c : port) {
    if (!IsAsciiDigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

RequestVerdict NormalizeRequest(RequestHead* head, const PathNormalizerOptions& options) {
  // One pass over the fields for both checks.
  const HeaderMap& fields = head->headers;
  int hosts = 0;
  int authorizations = 0;
  size_t host_field = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    const HeaderKind kind = fields.kind(i);
    if (kind == HeaderKind::kHost) {
      if (hosts++ == 0) host_field = i;
    } else if (kind == HeaderKind::kAuthorization) {
      ++authorizations;
    }
  }
  if (hosts > 1) return Refuse("duplicate Host");
  // Filters verify one credential; an origin that reads another must never get a second.
  if (authorizations > 1) return Refuse("duplicate Authorization");
  if (hosts == 1) {
    head->authority = fields.value(host_field);
  } else if (head->version == HttpVersion::kHttp11) {
    return Refuse("missing Host");
  }

  std::string_view target = head->target;
  std::string_view path_and_query;
  if (!target.empty() && target.front() == '/') {
    path_and_query = target;
  } else if (target == "*") {
    if (head->method != HttpMethod::kOptions) return Refuse("asterisk-form target without OPTIONS");
    path_and_query = target;
  } else {
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    size_t scheme_end = target.find("://");
    if (scheme_end == std::string_view::npos) return Refuse("malformed request target");
    std::string_view scheme = target.substr(0, scheme_end);
    if (!EqualsIgnoreCase(scheme, "http") && !EqualsIgnoreCase(scheme, "https")) {
      return Refuse("request target scheme is not http or https");
    }
    std::string_view rest = target.substr(scheme_end + 3);
    size_t authority_end = rest.find_first_of("/?");
    std::string_view authority = rest.substr(0, authority_end);
    if (authority.find('@') != std::string_view::npos) return Refuse("userinfo in request target");
    if (hosts == 1) {
      if (!EqualsIgnoreCase(authority, head->authority)) {
        return Refuse("request target authority differs from Host");
      }
    } else {
      head->authority = std::string(authority);
    }
    path_and_query = authority_end == std::string_view::npos ? "/" : rest.substr(authority_end);
    if (path_and_query.front() == '?') {
      // "http://a?x" has an empty path: it means "/?x".
      head->path = "/";
      head->query = std::string(path_and_query);
      path_and_query = {};
    }
  }

  if (!head->authority.empty() || hosts == 1) {
    std::string_view host;
    if (!SplitAuthority(head->authority, &host)) return Refuse("invalid Host");
    head->host = AsciiLower(host);
  }

  if (!path_and_query.empty()) {
    if (path_and_query == "*") {
      head->path = "*";
      return {};
    }
    size_t question = path_and_query.find('?');
    std::string_view path = path_and_query.substr(0, question);
    if (question != std::string_view::npos) {
      head->query = std::string(path_and_query.substr(question));
    }
    if (const char* error = NormalizePath(path, options, &head->path)) return Refuse(error);
  }
  return {};
}

}  // namespace sluice
