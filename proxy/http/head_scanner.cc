#include "proxy/http/head_scanner.h"

#include <cstdint>
#include <cstring>

namespace sluice {
namespace {

// Bytes that need a closer look; everything else is counted in bulk. In field lines only CR,
// LF and NUL matter; in the start line spaces and tabs too.
struct ByteTable {
  bool special[256] = {};
  constexpr explicit ByteTable(bool start_line) {
    special[static_cast<unsigned char>('\r')] = true;
    special[static_cast<unsigned char>('\n')] = true;
    special[0] = true;
    if (start_line) {
      special[static_cast<unsigned char>(' ')] = true;
      special[static_cast<unsigned char>('\t')] = true;
    }
  }
};
constexpr ByteTable kFieldSpecial(false);
constexpr ByteTable kStartLineSpecial(true);

// Length of the prefix of [p, p + n) with no special byte. Eight bytes at a time while no
// byte is below `below` (every special byte is), then one at a time.
size_t SkipOrdinary(const char* p, size_t n, uint8_t below, const ByteTable& table) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  const uint64_t subtrahend = kOnes * below;
  size_t i = 0;
  while (i + 8 <= n) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    // Nonzero when some byte is below `below` (false positives only drop to the slow loop).
    if ((word - subtrahend) & ~word & kHighs) break;
    i += 8;
  }
  while (i < n && !table.special[static_cast<unsigned char>(p[i])]) ++i;
  return i;
}

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
    // Fast path: inside a line, skip what cannot end it or break the rules.
    if (line_length_ > 0 && !after_cr_) {
      bool start_line = kind_ != Kind::kTrailers && lines_ == 0;
      size_t run = start_line ? SkipOrdinary(data + i, len - i, 0x21, kStartLineSpecial)
                              : SkipOrdinary(data + i, len - i, 0x0e, kFieldSpecial);
      if (run > 0) {
        if (bytes_ + run > max_bytes_) {
          error_ = Error::kTooLarge;
          return i + (max_bytes_ - bytes_);
        }
        bytes_ += static_cast<uint32_t>(run);
        line_length_ += static_cast<uint32_t>(run);
        previous_space_ = false;
        i += run;
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
