#include "proxy/http/http1_serializer.h"

#include <cstring>

#include "common/http_message.h"
#include "common/strings.h"

namespace sluice {

void AppendDecimal(std::string* out, uint64_t value) {
  // Digits from the end of a buffer backwards, then one append.
  char buf[20];
  char* begin = buf + sizeof(buf);
  do {
    *--begin = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  out->append(begin, static_cast<size_t>(buf + sizeof(buf) - begin));
}

void AppendStatusLine(std::string* out, int status, std::string_view reason) {
  // Sized once and written into, as AppendFields does: this is on every response.
  if (status < 100 || status > 999) status = 500;  // three digits, always
  if (reason.empty()) reason = ReasonPhrase(status);
  const size_t at = out->size();
  out->resize(at + 13 + reason.size() + 2);
  char* p = out->data() + at;
  std::memcpy(p, "HTTP/1.1 ", 9);
  p[9] = static_cast<char>('0' + status / 100);
  p[10] = static_cast<char>('0' + status / 10 % 10);
  p[11] = static_cast<char>('0' + status % 10);
  p[12] = ' ';
  std::memcpy(p + 13, reason.data(), reason.size());
  std::memcpy(p + 13 + reason.size(), "\r\n", 2);
}

void AppendRequestLine(std::string* out, std::string_view method, std::string_view path,
                       std::string_view query) {
  constexpr std::string_view kVersion = " HTTP/1.1\r\n";
  const size_t at = out->size();
  out->resize(at + method.size() + 1 + path.size() + query.size() + kVersion.size());
  char* p = out->data() + at;
  std::memcpy(p, method.data(), method.size());
  p += method.size();
  *p++ = ' ';
  std::memcpy(p, path.data(), path.size());
  p += path.size();
  std::memcpy(p, query.data(), query.size());
  p += query.size();
  std::memcpy(p, kVersion.data(), kVersion.size());
}

void AppendField(std::string* out, std::string_view name, std::string_view value) {
  out->append(name);
  AppendLiteral(out, ": ");
  out->append(value);
  AppendLiteral(out, "\r\n");
}

void AppendFields(std::string* out, const HeaderMap& headers) {
  // Sized once, then copied into: no capacity check per piece. A buffer reused from one head
  // to the next has the room already.
  const size_t at = out->size();
  out->resize(at + headers.SerializedSize());
  char* p = out->data() + at;
  for (size_t i = 0; i < headers.size(); ++i) {
    std::string_view name = headers.name(i);
    std::string_view value = headers.value(i);
    std::memcpy(p, name.data(), name.size());
    p += name.size();
    std::memcpy(p, ": ", 2);
    p += 2;
    std::memcpy(p, value.data(), value.size());
    p += value.size();
    std::memcpy(p, "\r\n", 2);
    p += 2;
  }
}

size_t FormatChunkHeader(char* buf, uint64_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  char digits[16];
  size_t n = 0;
  do {
    digits[n++] = kHex[size & 15];
    size >>= 4;
  } while (size != 0);
  size_t len = 0;
  while (n > 0) buf[len++] = digits[--n];
  buf[len++] = '\r';
  buf[len++] = '\n';
  return len;
}

}  // namespace sluice
