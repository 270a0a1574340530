#include "common/http_headers.h"
#include "common/strings.h"

namespace sluice {

HeaderKind ClassifyHeaderName(std::string_view name) {
  auto is = [&](std::string_view known) { return EqualsIgnoreCase(name, known); };
  // Switch on length first: most names are rejected by one integer compare.
  switch (name.size()) {
    case 2:
      if (is("te")) return HeaderKind::kTe;
      break;
    case 3:
      if (is("via")) return HeaderKind::kVia;
      break;
    case 4:
      if (is("host")) return HeaderKind::kHost;
      break;
    case 6:
      if (is("expect")) return HeaderKind::kExpect;
      break;
    case 7:
      if (is("upgrade")) return HeaderKind::kUpgrade;
      if (is("trailer")) return HeaderKind::kTrailer;
      break;
    case 9:
      if (is("forwarded")) return HeaderKind::kForwarded;
      if (is("x-real-ip")) return HeaderKind::kXRealIp;
      break;
    case 10:
      if (is("connection")) return HeaderKind::kConnection;
      if (is("keep-alive")) return HeaderKind::kKeepAlive;
      break;
    case 13:
      if (is("authorization")) return HeaderKind::kAuthorization;
      break;
    case 14:
      if (is("content-length")) return HeaderKind::kContentLength;
      break;
    case 15:
      if (is("x-forwarded-for")) return HeaderKind::kXForwardedFor;
      break;
    case 16:
      if (is("proxy-connection")) return HeaderKind::kProxyConnection;
      if (is("x-forwarded-host")) return HeaderKind::kXForwardedHost;
      if (is("x-forwarded-port")) return HeaderKind::kXForwardedPort;
      break;
    case 17:
      if (is("transfer-encoding")) return HeaderKind::kTransferEncoding;
      if (is("x-forwarded-proto")) return HeaderKind::kXForwardedProto;
      break;
    default:
      break;
  }
  if (name.size() >= 7 && StartsWithIgnoreCase(name, "sluice-")) {
    return HeaderKind::kSluiceInternal;
  }
  if (name.size() >= 6 && StartsWithIgnoreCase(name, "proxy-")) {
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

void HeaderMap::FinishField() {
  Field& f = fields_.back();
  // The parser skips leading whitespace but keeps trailing spaces and tabs (OWS).
  while (f.value_size > 0) {
    char c = storage_[f.value_offset + f.value_size - 1];
    if (c != ' ' && c != '\t') break;
    --f.value_size;
  }
  f.kind = ClassifyHeaderName(name(fields_.size() - 1));
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
