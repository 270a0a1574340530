// Request and response heads as codecs produce them and the forwarder consumes them. The same
// types serve HTTP/1.1 and HTTP/2 alike, so they hold protocol-neutral facts: method,
// target, authority, headers, and how the body is framed.
//
// Heads are recycled through a per-thread pool (MakeRequestHead / MakeResponseHead) so that a
// warm worker allocates nothing per request for them.
#ifndef SLUICE_COMMON_HTTP_MESSAGE_H_
#define SLUICE_COMMON_HTTP_MESSAGE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/http_headers.h"

namespace sluice {

enum class HttpVersion : uint8_t { kHttp10, kHttp11, kHttp2 };

enum class HttpMethod : uint8_t {
  kGet,
  kHead,
  kPost,
  kPut,
  kDelete,
  kOptions,
  kTrace,
  kPatch,
  kConnect,
  kOther,
};

HttpMethod ClassifyMethod(std::string_view method);

// How a message's body is delimited on the wire it arrived on.
enum class BodyFraming : uint8_t {
  kNone,           // no body at all
  kContentLength,  // exactly content_length bytes
  kChunked,        // chunked transfer coding
  kUntilClose,     // responses only: until the connection closes
};

struct RequestHead {
  HttpVersion version = HttpVersion::kHttp11;
  HttpMethod method = HttpMethod::kGet;
  std::string method_text;  // as received, e.g. "GET"
  std::string target;       // request-target as received
  HeaderMap headers;

  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;        // the client allows another request on this connection
  bool expect_continue = false;  // Expect: 100-continue with a body to come
  bool upgrade = false;          // a protocol upgrade (WebSocket, ...) is requested

  // Filled by request normalization (proxy/forward/request_normalizer.h) before routing.
  std::string authority;  // Host as sent (host[:port])
  std::string host;       // lower-case host without port, for route matching
  std::string path;       // normalized path used for matching and forwarding
  std::string query;      // "?..." or empty

  bool has_body() const { return framing != BodyFraming::kNone; }
  // Safe to send again (RFC 9110 section 9.2.2), or marked so by an Idempotency-Key.
  bool idempotent() const;
  void Clear();
};

struct ResponseHead {
  HttpVersion version = HttpVersion::kHttp11;
  int status = 200;
  std::string reason;
  HeaderMap headers;

  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;
  bool keep_alive = true;  // the sender allows another message on this connection

  void Clear();
};

// Returns the standard reason phrase ("Bad Gateway"), or "Unknown".
std::string_view ReasonPhrase(int status);

struct RequestHeadDeleter {
  void operator()(RequestHead* head) const;
};
struct ResponseHeadDeleter {
  void operator()(ResponseHead* head) const;
};
using RequestHeadPtr = std::unique_ptr<RequestHead, RequestHeadDeleter>;
using ResponseHeadPtr = std::unique_ptr<ResponseHead, ResponseHeadDeleter>;

// Returns a cleared head, reusing one released on this thread when possible.
RequestHeadPtr MakeRequestHead();
ResponseHeadPtr MakeResponseHead();

}  // namespace sluice

#endif  // SLUICE_COMMON_HTTP_MESSAGE_H_
