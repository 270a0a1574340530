#include "proxy/http/http1_lines.h"

#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace sluice::http1 {
namespace {

// RFC 9110 tchar: ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~
struct TokenTable {
  bool token[256] = {};
  constexpr TokenTable() {
    for (int c = '0'; c <= '9'; ++c) token[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) token[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) token[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) token[static_cast<unsigned char>(c)] = true;
  }
};
constexpr TokenTable kTokens;

inline bool IsToken(char c) { return kTokens.token[static_cast<unsigned char>(c)]; }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Offset of the first non-token byte in [0, n), or n.
inline size_t TokenLength(const char* p, size_t n) {
  size_t i = 0;
  while (i < n && IsToken(p[i])) ++i;
  return i;
}

// The error for a byte that ended a run where it does not belong.
LineError StrayByte(char c, LineError otherwise) {
  switch (c) {
    case '\r':
      return LineError::kBareCr;
    case '\n':
      return LineError::kBareLf;
    case '\0':
      return LineError::kNul;
    default:
      return otherwise;
  }
}

// The same for the byte at p[i] of a line whose CR is at p[end]: reaching the CR early is the
// line's own shape error, not a bare CR.
LineError Stray(const char* p, size_t i, size_t end, LineError otherwise) {
  return i == end ? otherwise : StrayByte(p[i], otherwise);
}

// "HTTP/d.d" at p (8 bytes available). Returns kNone and the minor version for 1.0 and 1.1.
LineError ParseVersion(const char* p, uint8_t* minor) {
  if (std::memcmp(p, "HTTP/", 5) != 0 || !IsDigit(p[5]) || p[6] != '.' || !IsDigit(p[7])) {
    return LineError::kVersion;
  }
  const char major = p[5];
  const char m = p[7];
  if (major == '1' && (m == '0' || m == '1')) {
    *minor = static_cast<uint8_t>(m - '0');
    return LineError::kNone;
  }
  // llhttp 8.1 knows these two and nothing else; a server answers them 505.
  if ((major == '0' && m == '9') || (major == '2' && m == '0')) {
    return LineError::kVersionUnsupported;
  }
  return LineError::kVersion;
}

// A quoted-string at line[i] (the opening DQUOTE); returns the offset after the closing one, or
// 0 when it is malformed.
size_t QuotedStringEnd(std::string_view line, size_t i) {
  for (++i; i < line.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(line[i]);
    if (c == '"') return i + 1;
    if (c == '\\') {
      if (++i >= line.size()) return 0;
      const unsigned char q = static_cast<unsigned char>(line[i]);
      if ((q < 0x20 && q != '\t') || q == 0x7F) return 0;
      continue;
    }
    if ((c < 0x20 && c != '\t') || c == 0x7F) return 0;
  }
  return 0;
}

// RFC 3986: the bytes of an authority (unreserved, sub-delims, ':', '@', '[', ']', '%').
struct AuthorityTable {
  bool ok[256] = {};
  constexpr AuthorityTable() {
    for (int c = '0'; c <= '9'; ++c) ok[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) ok[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) ok[c] = true;
    for (char c : std::string_view("-._~!$&'()*+,;=:@[]%"))
      ok[static_cast<unsigned char>(c)] = true;
  }
};
constexpr AuthorityTable kAuthority;

// The request target's form (RFC 9112 section 3.2), its bytes already known to be VCHAR:
// origin-form and asterisk-form start with '/' or '*'; absolute-form is a scheme of letters,
// "://", and an authority up to the path or query. Whether the form suits the method and the
// authority suits Host is the request normaliser's to say.
bool IsTargetForm(std::string_view target) {
  if (target[0] == '/' || target[0] == '*') return true;
  size_t i = 0;
  while (i < target.size() && ((target[i] | 0x20) >= 'a' && (target[i] | 0x20) <= 'z')) ++i;
  if (i == 0 || target.substr(i, 3) != "://") return false;
  for (i += 3; i < target.size() && target[i] != '/' && target[i] != '?'; ++i) {
    if (!kAuthority.ok[static_cast<unsigned char>(target[i])]) return false;
  }
  return true;
}

}  // namespace

#ifdef __SSE2__

namespace {

// Scans [0, n) sixteen bytes at a time for the first byte `stops` marks. The last partial block
// is read as the sixteen bytes that end the range, which may begin before p but never before
// `lo` (bytes of the same line known to be there); nothing outside [lo, p + n) is ever read.
// A range shorter than that goes byte by byte through `scalar`.
template <typename Stops, typename Scalar>
inline size_t FindFirst(const char* p, size_t n, const char* lo, Stops stops, Scalar scalar) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    unsigned bits = stops(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
    if (bits != 0) return i + static_cast<size_t>(__builtin_ctz(bits));
  }
  if (i == n) return n;
  if (static_cast<size_t>(p - lo) + n >= 16) {
    unsigned bits = stops(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + n - 16)));
    bits >>= 16 - (n - i);
    return bits != 0 ? i + static_cast<size_t>(__builtin_ctz(bits)) : n;
  }
  while (i < n && !scalar(static_cast<unsigned char>(p[i]))) ++i;
  return i;
}

inline bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7F; }
inline bool IsNonVisible(unsigned char c) { return c < 0x21 || c > 0x7E; }

}  // namespace

size_t FindControl(const char* p, size_t n, const char* readable_from) {
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i minus_one = _mm_set1_epi8(-1);
  const __m128i del = _mm_set1_epi8(0x7F);
  return FindFirst(
      p, n, readable_from != nullptr ? readable_from : p,
      [&](__m128i v) {
        // Signed: 0x80-0xFF (obs-text) are negative, so "0 <= v < 0x20" leaves them out.
        __m128i control = _mm_and_si128(_mm_cmplt_epi8(v, space), _mm_cmpgt_epi8(v, minus_one));
        return static_cast<unsigned>(
            _mm_movemask_epi8(_mm_or_si128(control, _mm_cmpeq_epi8(v, del))));
      },
      IsControl);
}

size_t FindNonVisible(const char* p, size_t n, const char* readable_from) {
  const __m128i bang = _mm_set1_epi8(0x21);
  const __m128i del = _mm_set1_epi8(0x7F);
  return FindFirst(
      p, n, readable_from != nullptr ? readable_from : p,
      [&](__m128i v) {
        // Signed: below '!' catches 0x00-0x20 and 0x80-0xFF at once.
        return static_cast<unsigned>(
            _mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, bang), _mm_cmpeq_epi8(v, del))));
      },
      IsNonVisible);
}

namespace {

// The length of the field name at p when the first sixteen bytes of the line hold it and a
// colon after it, and it is made of letters, digits and '-' only (nearly every name): one
// block instead of a byte loop. 0 when the byte loop must decide.
inline size_t SimpleNameLength(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
  // Signed compares: obs-text (0x80-0xFF) is negative and in no range.
  const __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)),
                                       _mm_cmplt_epi8(lower, _mm_set1_epi8('z' + 1)));
  const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
  const __m128i dash = _mm_cmpeq_epi8(v, _mm_set1_epi8('-'));
  const unsigned simple =
      static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), dash)));
  const unsigned colon =
      static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(':'))));
  if (colon == 0) return 0;
  const unsigned end = static_cast<unsigned>(__builtin_ctz(colon));
  const unsigned below = (1u << end) - 1;
  return (simple & below) == below ? end : 0;
}

}  // namespace

#else  // !__SSE2__

namespace {
inline size_t SimpleNameLength(const char*) { return 0; }
}  // namespace

size_t FindControl(const char* p, size_t n, const char*) {
  size_t i = 0;
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(p[i]);
    if (c < 0x20 || c == 0x7F) break;
    ++i;
  }
  return i;
}

size_t FindNonVisible(const char* p, size_t n, const char*) {
  size_t i = 0;
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(p[i]);
    if (c < 0x21 || c > 0x7E) break;
    ++i;
  }
  return i;
}

#endif  // __SSE2__

bool IsKnownMethod(std::string_view m) {
  // llhttp 8.1's HTTP methods, by length so that a method costs one or two compares.
  switch (m.size()) {
    case 3:
      return m == "GET" || m == "PUT" || m == "ACL";
    case 4:
      return m == "POST" || m == "HEAD" || m == "COPY" || m == "LOCK" || m == "MOVE" ||
             m == "BIND" || m == "LINK";
    case 5:
      return m == "PATCH" || m == "TRACE" || m == "MKCOL" || m == "MERGE" || m == "PURGE";
    case 6:
      return m == "DELETE" || m == "SEARCH" || m == "UNLOCK" || m == "REBIND" || m == "UNBIND" ||
             m == "REPORT" || m == "NOTIFY" || m == "UNLINK" || m == "SOURCE";
    case 7:
      return m == "OPTIONS" || m == "CONNECT";
    case 8:
      return m == "PROPFIND" || m == "CHECKOUT" || m == "M-SEARCH";
    case 9:
      return m == "PROPPATCH" || m == "SUBSCRIBE";
    case 10:
      return m == "MKACTIVITY" || m == "MKCALENDAR";
    case 11:
      return m == "UNSUBSCRIBE";
    default:
      return false;
  }
}

LineError ParseRequestLine(std::string_view line, RequestLine* out) {
  // method SP request-target SP HTTP-version CR
  const char* p = line.data();
  const size_t n = line.size();
  if (n == 0 || p[n - 1] != '\r') return LineError::kBareLf;
  const size_t end = n - 1;  // the CR
  const size_t method_end = TokenLength(p, end);
  if (method_end == 0 || p[method_end] != ' ') {
    return Stray(p, method_end, end, LineError::kStartLine);
  }
  const size_t target_start = method_end + 1;
  const size_t target_end = target_start + FindNonVisible(p + target_start, end - target_start, p);
  // Exactly one SP, then the version and the CR: anything else is a malformed line, which
  // outranks what is wrong inside the method or target.
  LineError target_error = LineError::kNone;
  if (target_end == target_start || target_end == end) {
    return Stray(p, target_end, end, LineError::kStartLine);
  }
  size_t version_start = target_end + 1;
  if (p[target_end] != ' ') {
    const char c = p[target_end];
    if (c == '\r' || c == '\n' || c == '\0' || c == '\t') {
      return StrayByte(c, LineError::kStartLine);
    }
    // A byte that no target holds (a control character, DEL, obs-text): the line may still be
    // shaped right; find the SP before the version to say which error comes first.
    target_error = LineError::kTargetCharacter;
    const void* sp = std::memchr(p + target_end, ' ', end - target_end);
    if (sp == nullptr) return LineError::kStartLine;
    version_start = static_cast<size_t>(static_cast<const char*>(sp) - p) + 1;
  }
  if (end - version_start != 8) {
    // Too short, too long, or a second space: say which byte broke it.
    for (size_t i = version_start; i < end; ++i) {
      if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
        return StrayByte(p[i], LineError::kStartLine);
    }
    return LineError::kStartLine;
  }
  for (size_t i = version_start; i < end; ++i) {
    if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\0') {
      return StrayByte(p[i], LineError::kStartLine);
    }
  }
  out->method = std::string_view(p, method_end);
  if (!IsKnownMethod(out->method)) return LineError::kUnknownMethod;
  if (target_error != LineError::kNone) return target_error;
  out->target = std::string_view(p + target_start, version_start - 1 - target_start);
  // CONNECT's authority-form is refused by the parser with its own status, not as a bad target.
  if (out->method != "CONNECT" && !IsTargetForm(out->target)) return LineError::kTargetCharacter;
  return ParseVersion(p + version_start, &out->minor);
}

LineError ParseStatusLine(std::string_view line, StatusLine* out) {
  // HTTP-version SP 3DIGIT [SP reason-phrase] CR (the SP before an empty reason may be missing,
  // as many servers send "HTTP/1.1 200\r\n").
  const char* p = line.data();
  const size_t n = line.size();
  if (n == 0 || p[n - 1] != '\r') return LineError::kBareLf;
  const size_t end = n - 1;
  if (end < 12 || p[8] != ' ') {
    for (size_t i = 0; i < end; ++i) {
      if (p[i] == '\r' || p[i] == '\0') return StrayByte(p[i], LineError::kStartLine);
    }
    return LineError::kStartLine;
  }
  LineError version = ParseVersion(p, &out->minor);
  if (version != LineError::kNone) return version;
  if (!IsDigit(p[9]) || !IsDigit(p[10]) || !IsDigit(p[11])) return LineError::kStatus;
  out->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
  if (end == 12) {
    out->reason = {};
    return LineError::kNone;
  }
  if (p[12] != ' ') return Stray(p, 12, end, LineError::kStatus);
  const size_t reason_start = 13;
  size_t i = reason_start;
  while (true) {
    i += FindControl(p + i, end + 1 - i, p);
    if (i == end) break;  // the CR
    if (p[i] != '\t') return StrayByte(p[i], LineError::kReason);
    ++i;
  }
  out->reason = std::string_view(p + reason_start, end - reason_start);
  return LineError::kNone;
}

LineError ScanFieldLine(const char* p, size_t avail, bool lf_implied, FieldLine* out, size_t* cr) {
  // field-name ":" OWS field-value OWS CRLF, checked left to right: the first byte that breaks
  // the line names the error, however the line was cut into reads.
  *cr = 0;
  if (avail == 0) return lf_implied ? LineError::kBareLf : LineError::kNone;
  if (p[0] == ' ' || p[0] == '\t') return LineError::kObsFold;
  size_t name_end = avail >= 16 ? SimpleNameLength(p) : 0;
  if (name_end == 0) name_end = TokenLength(p, avail);
  if (name_end == avail) return lf_implied ? LineError::kBareLf : LineError::kNone;
  if (p[name_end] != ':') {
    if (p[name_end] != '\r') return StrayByte(p[name_end], LineError::kFieldName);
    // A CR: the line's end (a line without a colon), a bare CR, or not known yet.
    if (name_end + 1 == avail) return lf_implied ? LineError::kFieldName : LineError::kNone;
    return p[name_end + 1] == '\n' ? LineError::kFieldName : LineError::kBareCr;
  }
  if (name_end == 0) return LineError::kEmptyFieldName;
  size_t start = name_end + 1;
  while (start < avail && (p[start] == ' ' || p[start] == '\t')) ++start;
  size_t i = start;
  while (true) {
    i += FindControl(p + i, avail - i, p);
    if (i == avail) return lf_implied ? LineError::kBareLf : LineError::kNone;
    if (p[i] == '\t') {
      ++i;
      continue;
    }
    if (p[i] != '\r') return StrayByte(p[i], LineError::kFieldValue);
    if (i + 1 == avail) {
      if (!lf_implied) return LineError::kNone;  // the LF is still to come
      break;
    }
    if (p[i + 1] != '\n') return LineError::kBareCr;
    break;
  }
  size_t value_end = i;
  while (value_end > start && (p[value_end - 1] == ' ' || p[value_end - 1] == '\t')) --value_end;
  out->name = std::string_view(p, name_end);
  out->value = std::string_view(p + start, value_end - start);
  *cr = i;
  return LineError::kNone;
}

LineError ParseFieldLine(std::string_view line, FieldLine* out) {
  size_t cr = 0;
  return ScanFieldLine(line.data(), line.size(), true, out, &cr);
}

LineError ParseChunkSizeLine(std::string_view line, uint64_t* size) {
  // chunk-size *( ";" ext-name [ "=" ext-val ] ) CR, without the whitespace RFC 9112 calls BWS
  // (a space after the size is how some smuggling attempts start).
  const char* p = line.data();
  const size_t n = line.size();
  if (n == 0 || p[n - 1] != '\r') return LineError::kBareLf;
  const size_t end = n - 1;
  uint64_t value = 0;
  size_t i = 0;
  for (; i < end; ++i) {
    const char c = p[i];
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
      digit = static_cast<unsigned>((c | 0x20) - 'a' + 10);
    } else {
      break;
    }
    if (value >> 60 != 0) return LineError::kChunkSize;
    value = value << 4 | digit;
  }
  if (i == 0) return Stray(p, 0, end, LineError::kChunkSize);
  while (i < end) {
    if (p[i] != ';') return Stray(p, i, end, LineError::kChunkSize);
    ++i;
    const size_t name = TokenLength(p + i, end - i);
    if (name == 0) return Stray(p, i, end, LineError::kChunkExtension);
    i += name;
    if (i < end && p[i] == '=') {
      ++i;
      if (i < end && p[i] == '"') {
        const size_t after = QuotedStringEnd(std::string_view(p, end), i);
        if (after == 0) return LineError::kChunkExtension;
        i = after;
      } else {
        const size_t token = TokenLength(p + i, end - i);
        if (token == 0) return Stray(p, i, end, LineError::kChunkExtension);
        i += token;
      }
    }
  }
  *size = value;
  return LineError::kNone;
}

const char* LineErrorText(LineError e) {
  switch (e) {
    case LineError::kNone:
      return "ok";
    case LineError::kBareCr:
      return "CR not followed by LF";
    case LineError::kBareLf:
      return "LF without CR";
    case LineError::kNul:
      return "NUL byte in head";
    case LineError::kObsFold:
      return "obsolete line folding";
    case LineError::kStartLine:
      return "malformed start line";
    case LineError::kUnknownMethod:
      return "unknown method";
    case LineError::kTargetCharacter:
      return "invalid request target";
    case LineError::kVersion:
      return "malformed HTTP version";
    case LineError::kVersionUnsupported:
      return "only HTTP/1.0 and HTTP/1.1 are supported";
    case LineError::kFieldName:
      return "invalid header field name";
    case LineError::kEmptyFieldName:
      return "empty header field name";
    case LineError::kFieldValue:
      return "invalid character in header value";
    case LineError::kStatus:
      return "malformed status code";
    case LineError::kReason:
      return "invalid character in reason phrase";
    case LineError::kChunkSize:
      return "invalid chunk size";
    case LineError::kChunkExtension:
      return "invalid chunk extension";
  }
  return "?";
}

}  // namespace sluice::http1
