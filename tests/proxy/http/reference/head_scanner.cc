#include "tests/proxy/http/reference/head_scanner.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace sluice::reference {
namespace {

// The bytes that stop a run inside a line: CR, LF and NUL in field and status lines; SP and
// HTAB too in a request line.
struct StopTable {
  bool stop[256] = {};
  constexpr explicit StopTable(bool request_line) {
    stop[static_cast<unsigned char>('\r')] = true;
    stop[static_cast<unsigned char>('\n')] = true;
    stop[0] = true;
    if (request_line) {
      stop[static_cast<unsigned char>(' ')] = true;
      stop[static_cast<unsigned char>('\t')] = true;
    }
  }
};
constexpr StopTable kFieldStops(false);
constexpr StopTable kRequestLineStops(true);

size_t FindStopSlowly(const char* p, size_t i, size_t n, const StopTable& table) {
  while (i < n && !table.stop[static_cast<unsigned char>(p[i])]) ++i;
  return i;
}

#ifdef __SSE2__

// Offset in [p, p + n) of the first stop byte, or n.
template <bool kRequestLine>
size_t FindStop(const char* p, size_t n) {
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i nul = _mm_setzero_si128();
  const __m128i sp = _mm_set1_epi8(' ');
  const __m128i tab = _mm_set1_epi8('\t');
  auto stops = [&](__m128i v) {
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
                             _mm_cmpeq_epi8(v, nul));
    if (kRequestLine) {
      m = _mm_or_si128(m, _mm_or_si128(_mm_cmpeq_epi8(v, sp), _mm_cmpeq_epi8(v, tab)));
    }
    return static_cast<unsigned>(_mm_movemask_epi8(m));
  };
  if (n < 16) return FindStopSlowly(p, 0, n, kRequestLine ? kRequestLineStops : kFieldStops);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    unsigned bits = stops(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)));
    if (bits != 0) return i + static_cast<size_t>(__builtin_ctz(bits));
  }
  if (i == n) return n;
  // The last 16 bytes again, ignoring the ones already looked at.
  unsigned bits = stops(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + n - 16)));
  bits >>= 16 - (n - i);
  return bits != 0 ? i + static_cast<size_t>(__builtin_ctz(bits)) : n;
}

#else  // !__SSE2__

// Nonzero when some byte of `word` is zero (its lowest such byte exactly; bits above it may
// be false positives, which only send the caller to the byte loop sooner).
inline uint64_t HasZeroByte(uint64_t word) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  return (word - kOnes) & ~word & kHighs;
}

template <bool kRequestLine>
size_t FindStop(const char* p, size_t n) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    uint64_t hit =
        HasZeroByte(word) | HasZeroByte(word ^ (kOnes * '\r')) | HasZeroByte(word ^ (kOnes * '\n'));
    if (kRequestLine) {
      hit |= HasZeroByte(word ^ (kOnes * ' ')) | HasZeroByte(word ^ (kOnes * '\t'));
    }
    if (hit != 0) break;
  }
  return FindStopSlowly(p, i, n, kRequestLine ? kRequestLineStops : kFieldStops);
}

#endif  // __SSE2__

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

inline bool HeadScanner::EndLine() {
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

bool HeadScanner::StopByte(char c) {
  if (c == '\n') return Fail(Error::kBareLf);
  if (c == '\0') return Fail(Error::kNul);
  // SP or HTAB, which stop a run only in a request line.
  if (c == '\t' || previous_space_ || spaces_ >= 2) return Fail(Error::kStartLine);
  ++spaces_;
  ++line_length_;
  previous_space_ = true;
  return true;
}

size_t HeadScanner::Scan(const char* data, size_t len) {
  if (done_ || error_ != Error::kNone) return 0;
  // Bytes past the limit are never looked at: the first of them is the error.
  const size_t limit = std::min<size_t>(len, bytes_ < max_bytes_ ? max_bytes_ - bytes_ : 0);
  size_t i = 0;
  while (i < limit) {
    char c = data[i];
    if (after_cr_) {
      if (c != '\n') return FailAt(Error::kBareCr, i);
      after_cr_ = false;
      if (!EndLine()) return i;
      ++i;
      if (done_) {
        bytes_ += static_cast<uint32_t>(i);
        return i;
      }
      continue;
    }
    if (line_length_ == 0) {
      // The first byte of a line.
      if (c == '\r') {
        after_cr_ = true;
        ++i;
        continue;
      }
      if (c == '\n') return FailAt(Error::kBareLf, i);
      if (c == '\0') return FailAt(Error::kNul, i);
      if (c == ' ' || c == '\t') {
        bool start_line = kind_ != Kind::kTrailers && lines_ == 0;
        return FailAt(start_line ? Error::kStartLine : Error::kObsFold, i);
      }
      started_ = true;
    }
    // Inside a line: skip to the next byte that ends it or breaks the rules.
    const bool request_line = kind_ == Kind::kRequest && lines_ == 0;
    size_t stop =
        request_line ? FindStop<true>(data + i, limit - i) : FindStop<false>(data + i, limit - i);
    if (stop > 0) {
      line_length_ += static_cast<uint32_t>(stop);
      previous_space_ = false;
      i += stop;
      if (i == limit) break;
    }
    c = data[i];
    if (c == '\r') {
      if (i + 1 < limit && data[i + 1] == '\n') {
        // The whole CRLF is here (the usual case): end the line without another round.
        if (!EndLine()) return i + 1;
        i += 2;
        if (done_) {
          bytes_ += static_cast<uint32_t>(i);
          return i;
        }
        continue;
      }
      after_cr_ = true;
    } else if (!StopByte(c)) {
      return i;
    }
    ++i;
  }
  bytes_ += static_cast<uint32_t>(limit);
  if (limit < len) return FailAt(Error::kTooLarge, limit);
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

}  // namespace sluice::reference
