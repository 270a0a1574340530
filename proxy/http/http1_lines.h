// The lines of an HTTP/1.1 message head, each parsed and validated in one pass over its bytes:
// the request line, the status line, a field line, and a chunk-size line (RFC 9112).
//
// Pure functions over one complete line: `line` holds the bytes before the line's LF, so a
// well-formed line ends in CR. They are strict where proxies disagree (the classic smuggling
// ingredients): a bare LF or CR, NUL or another control character, obs-fold, anything but
// single spaces in the request line, a name that is not a token, a version other than
// HTTP/d.d. The runs of ordinary bytes (a target, a value) are scanned sixteen at a time with
// SSE2 where the CPU has it, a byte at a time otherwise.
//
// Http1Parser (http1_parser.h) finds the lines, calls these, and owns the message's framing.
#ifndef SLUICE_PROXY_HTTP_HTTP1_LINES_H_
#define SLUICE_PROXY_HTTP_HTTP1_LINES_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::http1 {

enum class LineError : uint8_t {
  kNone,
  kBareCr,              // CR not followed by LF
  kBareLf,              // LF not preceded by CR
  kNul,                 // a NUL byte
  kObsFold,             // a field line starting with SP or HTAB
  kStartLine,           // request or status line not shaped as RFC 9112 says
  kUnknownMethod,       // a method no HTTP/1.1 server knows (501)
  kTargetCharacter,     // a byte outside VCHAR in the request target, or not a target's form
  kVersion,             // not HTTP/1.0, HTTP/1.1, HTTP/0.9 or HTTP/2.0
  kVersionUnsupported,  // HTTP/0.9 or HTTP/2.0 over HTTP/1.1 framing (505)
  kFieldName,           // a field name that is not a token, or a space before the colon
  kEmptyFieldName,      // a field line starting with ':'
  kFieldValue,          // a control character or DEL in a field value
  kStatus,              // a status code that is not three digits
  kReason,              // a control character or DEL in the reason phrase
  kChunkSize,           // not hex digits, or more than 64 bits
  kChunkExtension,      // a chunk extension not ";name[=token or quoted-string]"
};

const char* LineErrorText(LineError e);

struct RequestLine {
  std::string_view method;
  std::string_view target;
  uint8_t minor = 1;  // HTTP/1.minor
};

struct StatusLine {
  uint8_t minor = 1;
  int status = 0;
  std::string_view reason;
};

struct FieldLine {
  std::string_view name;
  std::string_view value;  // without leading and trailing SP and HTAB
};

// `line` is the bytes before the LF. A line that does not end in CR is a bare LF.
LineError ParseRequestLine(std::string_view line, RequestLine* out);
LineError ParseStatusLine(std::string_view line, StatusLine* out);
LineError ParseFieldLine(std::string_view line, FieldLine* out);
// A field line where it lies in the input, its end not known yet: `avail` bytes from p are at
// hand. kNone with *cr at the line's CR (its LF follows) when the line is whole; kNone with
// *cr == 0 when the line goes on past avail. The same verdicts as ParseFieldLine on the whole
// line (which is this with the LF implied after avail bytes), so the first bad byte names the
// error however the line is cut into reads.
LineError ScanFieldLine(const char* p, size_t avail, bool lf_implied, FieldLine* out, size_t* cr);
LineError ParseChunkSizeLine(std::string_view line, uint64_t* size);

// True for a method llhttp 8.1 knows for HTTP (GET, PROPFIND, M-SEARCH, ...; not CONNECT-less
// RTSP ones). Case-sensitive, as methods are.
bool IsKnownMethod(std::string_view method);

// Offset of the first byte in p[0, n) that is a control character (0x00-0x1F) or DEL, or n.
// `readable_from` (<= p), when given, says the bytes from there up to p may be read too: a short
// range is then checked as one block that ends where it ends.
size_t FindControl(const char* p, size_t n, const char* readable_from = nullptr);
// Offset of the first byte in p[0, n) outside VCHAR (0x21-0x7E), or n.
size_t FindNonVisible(const char* p, size_t n, const char* readable_from = nullptr);

}  // namespace sluice::http1

#endif  // SLUICE_PROXY_HTTP_HTTP1_LINES_H_
