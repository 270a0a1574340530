#include "proxy/http/http1_serializer.h"

#include "common/http_message.h"

namespace sluice {

void AppendDecimal(std::string* out, uint64_t value) {
  char buf[20];
  size_t n = 0;
  do {
    buf[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n > 0) out->push_back(buf[--n]);
}

void AppendStatusLine(std::string* out, int status, std::string_view reason) {
  out->append("HTTP/1.1 ");
  AppendDecimal(out, static_cast<uint64_t>(status));
  out->push_back(' ');
  out->append(reason.empty() ? ReasonPhrase(status) : reason);
  out->append("\r\n");
}

void AppendRequestLine(std::string* out, std::string_view method, std::string_view path,
                       std::string_view query) {
  out->append(method);
  out->push_back(' ');
  out->append(path);
  out->append(query);
  out->append(" HTTP/1.1\r\n");
}

void AppendField(std::string* out, std::string_view name, std::string_view value) {
  out->append(name);
  out->append(": ");
  out->append(value);
  out->append("\r\n");
}

void AppendFields(std::string* out, const HeaderMap& headers) {
  out->reserve(out->size() + headers.SerializedSize() + 128);
  for (size_t i = 0; i < headers.size(); ++i) AppendField(out, headers.name(i), headers.value(i));
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
