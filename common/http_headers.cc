#include "common/http_headers.h"

#include <cstring>

#include "common/strings.h"

namespace sluice {

namespace {

// The first kBytes (at most eight) bytes at `p` as a word, zero-padded.
template <size_t kBytes>
uint64_t LoadWord(const char* p) {
  uint64_t word = 0;
  std::memcpy(&word, p, kBytes);
  return word;
}

// Compares a word of a name with a word of a lower-case known name: a byte that is a letter in
// the known name matches either case (bit 0x20 forced on), any other byte ('-', digits, the
// zero padding) only itself. Letters are the bytes with bit 0x40 set.
inline bool WordMatchesLower(uint64_t name, uint64_t lower) {
  const uint64_t fold = (lower & 0x4040404040404040ULL) >> 1;
  return (name | fold) == lower;
}

// True when the first kLength bytes of `p` are `lower` (a string literal of lower-case
// letters, digits and '-') in any case. The caller has checked that `p` holds that many.
template <size_t kSize>
bool StartsWithLower(const char* p, const char (&lower)[kSize]) {
  constexpr size_t kLength = kSize - 1;
  if constexpr (kLength <= 8) {
    return WordMatchesLower(LoadWord<kLength>(p), LoadWord<kLength>(lower));
  } else {
    // Whole words, then the last eight bytes (overlapping the previous word when the length
    // is not a multiple of eight).
    for (size_t i = 0; i + 8 < kLength; i += 8) {
      if (!WordMatchesLower(LoadWord<8>(p + i), LoadWord<8>(lower + i))) return false;
    }
    return WordMatchesLower(LoadWord<8>(p + kLength - 8), LoadWord<8>(lower + kLength - 8));
  }
}

}  // namespace

// One switch on the length, one on the first byte (a byte sharing both picks between two
// names by a byte where they differ), then one case-insensitive comparison, a word at a time.
HeaderKind ClassifyHeaderName(std::string_view name) {
  if (name.empty()) return HeaderKind::kOther;
  const char* p = name.data();
  // Lower case for letters; other bytes land on no letter's case label, or fail the comparison.
  const char first = static_cast<char>(p[0] | 0x20);
  switch (name.size()) {
    case 2:
      if (first == 't' && StartsWithLower(p, "te")) return HeaderKind::kTe;
      break;
    case 3:
      if (first == 'v' && StartsWithLower(p, "via")) return HeaderKind::kVia;
      break;
    case 4:
      if (first == 'h' && StartsWithLower(p, "host")) return HeaderKind::kHost;
      break;
    case 6:
      if (first == 'e' && StartsWithLower(p, "expect")) return HeaderKind::kExpect;
      break;
    case 7:
      if (first == 'u' && StartsWithLower(p, "upgrade")) return HeaderKind::kUpgrade;
      if (first == 't' && StartsWithLower(p, "trailer")) return HeaderKind::kTrailer;
      break;
    case 9:
      if (first == 'f' && StartsWithLower(p, "forwarded")) return HeaderKind::kForwarded;
      if (first == 'x' && StartsWithLower(p, "x-real-ip")) return HeaderKind::kXRealIp;
      break;
    case 10:
      if (first == 'c' && StartsWithLower(p, "connection")) return HeaderKind::kConnection;
      if (first == 'k' && StartsWithLower(p, "keep-alive")) return HeaderKind::kKeepAlive;
      break;
    case 13:
      if (first == 'a' && StartsWithLower(p, "authorization")) {
        return HeaderKind::kAuthorization;
      }
      break;
    case 14:
      if (first == 'c' && StartsWithLower(p, "content-length")) {
        return HeaderKind::kContentLength;
      }
      break;
    case 15:
      if (first == 'x' && StartsWithLower(p, "x-forwarded-for")) {
        return HeaderKind::kXForwardedFor;
      }
      break;
    case 16:
      if (first == 'p') {
        if (StartsWithLower(p, "proxy-connection")) return HeaderKind::kProxyConnection;
      } else if (first == 'x') {
        // x-forwarded-host and x-forwarded-port differ from byte 12 on.
        const char at12 = static_cast<char>(p[12] | 0x20);
        if (at12 == 'h' && StartsWithLower(p, "x-forwarded-host")) {
          return HeaderKind::kXForwardedHost;
        }
        if (at12 == 'p' && StartsWithLower(p, "x-forwarded-port")) {
          return HeaderKind::kXForwardedPort;
        }
      }
      break;
    case 17:
      if (first == 't' && StartsWithLower(p, "transfer-encoding")) {
        return HeaderKind::kTransferEncoding;
      }
      if (first == 'x' && StartsWithLower(p, "x-forwarded-proto")) {
        return HeaderKind::kXForwardedProto;
      }
      break;
    default:
      break;
  }
  if (first == 's' && name.size() >= 7 && StartsWithLower(p, "sluice-")) {
    return HeaderKind::kSluiceInternal;
  }
  if (first == 'p' && name.size() >= 6 && StartsWithLower(p, "proxy-")) {
    return HeaderKind::kProxyOther;
  }
  return HeaderKind::kOther;
}

bool IsHttpToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!IsAsciiAlnum(c) && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool IsHopByHop(HeaderKind kind) {
  switch (kind) {
    case HeaderKind::kConnection:
    case HeaderKind::kKeepAlive:
    case HeaderKind::kProxyConnection:
    case HeaderKind::kProxyOther:
    case HeaderKind::kTe:
    case HeaderKind::kTrailer:
    case HeaderKind::kTransferEncoding:
    case HeaderKind::kUpgrade:
    case HeaderKind::kConnectionListed:
      return true;
    default:
      return false;
  }
}

void HeaderMap::Add(std::string_view name, std::string_view value) {
  Field f;
  f.name_offset = static_cast<uint32_t>(storage_.size());
  f.name_size = static_cast<uint32_t>(name.size());
  storage_.append(name);
  f.value_offset = static_cast<uint32_t>(storage_.size());
  f.value_size = static_cast<uint32_t>(value.size());
  storage_.append(value);
  f.kind = ClassifyHeaderName(name);
  fields_.push_back(f);
}

void HeaderMap::AddFromLine(std::string_view name, std::string_view value, HeaderKind kind) {
  const size_t gap = static_cast<size_t>(value.data() - name.data());
  Field f;
  f.name_offset = static_cast<uint32_t>(storage_.size());
  f.name_size = static_cast<uint32_t>(name.size());
  f.value_offset = f.name_offset + static_cast<uint32_t>(gap);
  f.value_size = static_cast<uint32_t>(value.size());
  f.kind = kind;
  storage_.append(name.data(), gap + value.size());
  fields_.push_back(f);
}

void HeaderMap::Set(std::string_view name, std::string_view value) {
  Remove(name);
  Add(name, value);
}

int HeaderMap::Remove(std::string_view name) {
  int removed = 0;
  for (size_t i = 0; i < fields_.size();) {
    if (EqualsIgnoreCase(this->name(i), name)) {
      fields_.erase(fields_.begin() + static_cast<ptrdiff_t>(i));
      ++removed;
    } else {
      ++i;
    }
  }
  return removed;
}

int HeaderMap::RemoveKind(HeaderKind kind) {
  int removed = 0;
  for (size_t i = 0; i < fields_.size();) {
    if (fields_[i].kind == kind) {
      fields_.erase(fields_.begin() + static_cast<ptrdiff_t>(i));
      ++removed;
    } else {
      ++i;
    }
  }
  return removed;
}

void HeaderMap::BeginField() {
  Field f;
  f.name_offset = static_cast<uint32_t>(storage_.size());
  f.name_size = 0;
  f.value_offset = f.name_offset;
  f.value_size = 0;
  f.kind = HeaderKind::kOther;
  fields_.push_back(f);
}

void HeaderMap::AppendName(std::string_view piece) {
  Field& f = fields_.back();
  storage_.append(piece);
  f.name_size += static_cast<uint32_t>(piece.size());
  f.value_offset = f.name_offset + f.name_size;
}

void HeaderMap::AppendValue(std::string_view piece) {
  Field& f = fields_.back();
  storage_.append(piece);
  f.value_size += static_cast<uint32_t>(piece.size());
}

void HeaderMap::FinishField() { FinishField(ClassifyHeaderName(name(fields_.size() - 1))); }

void HeaderMap::FinishField(HeaderKind kind) {
  Field& f = fields_.back();
  // The parser skips leading whitespace but keeps trailing spaces and tabs (OWS).
  while (f.value_size > 0) {
    char c = storage_[f.value_offset + f.value_size - 1];
    if (c != ' ' && c != '\t') break;
    --f.value_size;
  }
  f.kind = kind;
}

std::optional<std::string_view> HeaderMap::Get(std::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (EqualsIgnoreCase(this->name(i), name)) return value(i);
  }
  return std::nullopt;
}

std::optional<std::string_view> HeaderMap::GetKind(HeaderKind kind) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].kind == kind) return value(i);
  }
  return std::nullopt;
}

int HeaderMap::CountKind(HeaderKind kind) const {
  int n = 0;
  for (const Field& f : fields_) n += f.kind == kind ? 1 : 0;
  return n;
}

int HeaderMap::Count(std::string_view name) const {
  int n = 0;
  for (size_t i = 0; i < fields_.size(); ++i) n += EqualsIgnoreCase(this->name(i), name) ? 1 : 0;
  return n;
}

size_t HeaderMap::SerializedSize() const {
  size_t n = 0;
  for (const Field& f : fields_) n += f.name_size + f.value_size + 4;
  return n;
}

void HeaderMap::Clear() {
  fields_.clear();
  storage_.clear();
  // A head pooled for reuse should not pin a rare huge allocation.
  constexpr size_t kKeepStorage = 16 * 1024;
  if (storage_.capacity() > kKeepStorage) std::string().swap(storage_);
  if (fields_.capacity() > 128) std::vector<Field>().swap(fields_);
}

}  // namespace sluice
