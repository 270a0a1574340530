// Writing HTTP/1.1 heads and chunk framing. Pure functions over std::string; any thread.
#ifndef SLUICE_PROXY_HTTP_HTTP1_SERIALIZER_H_
#define SLUICE_PROXY_HTTP_HTTP1_SERIALIZER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/http_headers.h"

namespace sluice {

// "HTTP/1.1 502 Bad Gateway\r\n". An empty reason is replaced by the standard phrase.
void AppendStatusLine(std::string* out, int status, std::string_view reason);
// "GET /path?q HTTP/1.1\r\n"
void AppendRequestLine(std::string* out, std::string_view method, std::string_view path,
                       std::string_view query);
// Every field as "name: value\r\n".
void AppendFields(std::string* out, const HeaderMap& headers);
void AppendField(std::string* out, std::string_view name, std::string_view value);
void AppendDecimal(std::string* out, uint64_t value);

// Writes "<hex size>\r\n" into buf (at least 20 bytes); returns its length.
size_t FormatChunkHeader(char* buf, uint64_t size);
inline constexpr std::string_view kCrlf = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_HTTP1_SERIALIZER_H_
