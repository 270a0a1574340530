// A strict, incremental scanner for the raw bytes of an HTTP/1.1 header block (a request or
// status line plus fields, or a trailer section), run before llhttp sees the same bytes.
//
// llhttp 8.1.0, even in strict mode, accepts some framing that RFC 9112 forbids and that
// proxies disagree on: obs-fold (a field line starting with SP or HTAB), a bare LF ending a
// line, and extra spaces in the request line. Each is a classic request-smuggling ingredient.
// The scanner rejects them from the bytes themselves, finds where the block ends, and enforces
// the size limits, so the parser and the scanner must agree on every head that passes.
//
// It looks at every byte once, sixteen at a time (SSE2, or eight at a time portably): only CR,
// LF and NUL (and SP and HTAB in a request line) stop it, so a line costs a few instructions
// for its bytes and a few more at its end.
//
// Not thread-safe; one per connection direction.
#ifndef SLUICE_TESTS_PROXY_HTTP_REFERENCE_HEAD_SCANNER_H_
#define SLUICE_TESTS_PROXY_HTTP_REFERENCE_HEAD_SCANNER_H_

#include <cstddef>
#include <cstdint>

namespace sluice::reference {

class HeadScanner {
 public:
  enum class Kind : uint8_t {
    kRequest,   // request line, fields, empty line; leading empty lines are skipped
    kResponse,  // status line, fields, empty line
    kTrailers,  // fields, empty line
  };
  enum class Error : uint8_t {
    kNone,
    kBareCr,         // CR not followed by LF
    kBareLf,         // LF not preceded by CR
    kNul,            // a NUL byte
    kObsFold,        // a field line starting with SP or HTAB
    kStartLine,      // request line not "method SP target SP version", or a blank/indented start
    kTooLarge,       // more than max_bytes
    kTooManyFields,  // more than max_fields lines
  };

  HeadScanner(uint32_t max_bytes, uint32_t max_fields)
      : max_bytes_(max_bytes), max_fields_(max_fields) {}

  void Reset(Kind kind);
  void SetLimits(uint32_t max_bytes, uint32_t max_fields) {
    max_bytes_ = max_bytes;
    max_fields_ = max_fields;
  }

  // Scans up to `len` bytes. Returns the number consumed: all of them while the block has not
  // ended, or exactly up to and including the final LF of the empty line when it ends. After
  // an error, returns the offset of the offending byte and error() says why.
  size_t Scan(const char* data, size_t len);

  bool done() const { return done_; }
  Error error() const { return error_; }
  // True when the error means "too big" (431) rather than "malformed" (400).
  bool error_is_size() const {
    return error_ == Error::kTooLarge || error_ == Error::kTooManyFields;
  }
  uint32_t bytes() const { return bytes_; }
  // True once any byte of the block (other than skipped leading empty lines) was seen.
  bool started() const { return started_; }

  static const char* ErrorText(Error e);

 private:
  bool Fail(Error e) {
    error_ = e;
    return false;
  }
  size_t FailAt(Error e, size_t offset) {
    error_ = e;
    return offset;
  }
  // The LF of a CRLF was consumed: ends the line (or the block). False on an error.
  bool EndLine();
  // A byte that stopped the run of ordinary bytes inside a line (not CR). False on an error.
  bool StopByte(char c);

  uint32_t max_bytes_;
  uint32_t max_fields_;
  uint32_t bytes_ = 0;
  uint32_t lines_ = 0;        // complete lines of the block seen so far
  uint32_t line_length_ = 0;  // bytes of the current line before its CR
  uint8_t spaces_ = 0;        // SP seen in the request line
  Kind kind_ = Kind::kRequest;
  bool after_cr_ = false;
  bool previous_space_ = false;
  bool started_ = false;
  bool done_ = false;
  Error error_ = Error::kNone;
};

}  // namespace sluice::reference

#endif  // SLUICE_TESTS_PROXY_HTTP_REFERENCE_HEAD_SCANNER_H_
