#include "proxy/head_scanner.h"

namespace sluice {
namespace {

// Bytes that need a closer look inside a line; everything else is counted in bulk.
struct SpecialTable {
  bool special[256] = {};
  constexpr SpecialTable() {
    special[static_cast<unsigned char>('\r')] = true;
    special[static_cast<unsigned char>('\n')] = true;
    special[0] = true;
  }
};
constexpr SpecialTable kSpecial;

}  // namespace

void HeadScanner::Reset(Kind kind) {
  kind_ = kind;
  bytes_ = 0;
  lines_ = 0;
  line_length_ = 0;
  spaces_ = 0;
  after_cr_ = false;
  previous_space_ = false;
  started_ = false;
  done_ = false;
  error_ = Error::kNone;
}

bool HeadScanner::Byte(char c) {
  if (++bytes_ > max_bytes_) return Fail(Error::kTooLarge);
  if (after_cr_) {
    if (c != '\n') return Fail(Error::kBareCr);
    after_cr_ = false;
    if (line_length_ == 0) {
      // An empty line. Before a request line it is skipped (RFC 9112 section 2.2); anywhere
      // else it ends the block.
      if (kind_ == Kind::kRequest && !started_) return true;
      if (kind_ == Kind::kResponse && lines_ == 0) return Fail(Error::kStartLine);
      done_ = true;
      return true;
    }
    ++lines_;
    uint32_t allowed = max_fields_ + (kind_ == Kind::kTrailers ? 0 : 1);
    if (lines_ > allowed) return Fail(Error::kTooManyFields);
    if (kind_ == Kind::kRequest && lines_ == 1 && spaces_ != 2) return Fail(Error::kStartLine);
    line_length_ = 0;
    previous_space_ = false;
    return true;
  }
  if (c == '\r') {
    after_cr_ = true;
    return true;
  }
  if (c == '\n') return Fail(Error::kBareLf);
  if (c == '\0') return Fail(Error::kNul);

  bool start_line = kind_ != Kind::kTrailers && lines_ == 0;
  if (line_length_ == 0 && (c == ' ' || c == '\t')) {
    return Fail(start_line ? Error::kStartLine : Error::kObsFold);
  }
  started_ = true;
  ++line_length_;
  if (start_line && kind_ == Kind::kRequest) {
    if (c == '\t') return Fail(Error::kStartLine);
    if (c == ' ') {
      if (previous_space_ || spaces_ >= 2) return Fail(Error::kStartLine);
      ++spaces_;
      previous_space_ = true;
    } else {
      previous_space_ = false;
    }
  }
  return true;
}

size_t HeadScanner::Scan(const char* data, size_t len) {
  if (done_ || error_ != Error::kNone) return 0;
  size_t i = 0;
  while (i < len) {
    // Fast path: the middle of a field line, where only CR, LF and NUL matter.
    if (line_length_ > 0 && !after_cr_ && (kind_ == Kind::kTrailers || lines_ > 0)) {
      size_t start = i;
      while (i < len && !kSpecial.special[static_cast<unsigned char>(data[i])]) ++i;
      uint32_t run = static_cast<uint32_t>(i - start);
      if (run > 0) {
        if (bytes_ + run > max_bytes_) {
          error_ = Error::kTooLarge;
          return start + (max_bytes_ - bytes_);
        }
        bytes_ += run;
        line_length_ += run;
        continue;
      }
    }
    if (!Byte(data[i])) return i;
    ++i;
    if (done_) return i;
  }
  return len;
}

const char* HeadScanner::ErrorText(Error e) {
  switch (e) {
    case Error::kNone:
      return "ok";
    case Error::kBareCr:
      return "CR not followed by LF";
    case Error::kBareLf:
      return "LF without CR";
    case Error::kNul:
      return "NUL byte in head";
    case Error::kObsFold:
      return "obsolete line folding";
    case Error::kStartLine:
      return "malformed start line";
    case Error::kTooLarge:
      return "head too large";
    case Error::kTooManyFields:
      return "too many header fields";
  }
  return "?";
}

}  // namespace sluice
