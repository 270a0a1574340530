#include "common/http_message.h"

#include <vector>

namespace sluice {
namespace {

// Strings that grew past this are released instead of pooled.
constexpr size_t kMaxPooledString = 16 * 1024;
// Heads kept per thread; more than the concurrent requests of a busy worker is waste.
constexpr size_t kMaxPooledHeads = 1024;

void ClearString(std::string& s) {
  s.clear();
  if (s.capacity() > kMaxPooledString) std::string().swap(s);
}

template <typename T>
class HeadPool {
 public:
  ~HeadPool() {
    for (T* head : free_) delete head;
  }
  T* Take() {
    if (free_.empty()) return new T();
    T* head = free_.back();
    free_.pop_back();
    return head;
  }
  void Give(T* head) {
    if (free_.size() >= kMaxPooledHeads) {
      delete head;
      return;
    }
    head->Clear();
    free_.push_back(head);
  }

 private:
  std::vector<T*> free_;
};

HeadPool<RequestHead>& RequestPool() {
  thread_local HeadPool<RequestHead> pool;
  return pool;
}
HeadPool<ResponseHead>& ResponsePool() {
  thread_local HeadPool<ResponseHead> pool;
  return pool;
}

}  // namespace

HttpMethod ClassifyMethod(std::string_view m) {
  // Methods are case-sensitive (RFC 9110 section 9.1).
  if (m == "GET") return HttpMethod::kGet;
  if (m == "HEAD") return HttpMethod::kHead;
  if (m == "POST") return HttpMethod::kPost;
  if (m == "PUT") return HttpMethod::kPut;
  if (m == "DELETE") return HttpMethod::kDelete;
  if (m == "OPTIONS") return HttpMethod::kOptions;
  if (m == "TRACE") return HttpMethod::kTrace;
  if (m == "PATCH") return HttpMethod::kPatch;
  if (m == "CONNECT") return HttpMethod::kConnect;
  return HttpMethod::kOther;
}

bool RequestHead::idempotent() const {
  switch (method) {
    case HttpMethod::kGet:
    case HttpMethod::kHead:
    case HttpMethod::kOptions:
    case HttpMethod::kTrace:
    case HttpMethod::kPut:
    case HttpMethod::kDelete:
      return true;
    default:
      return headers.Get("idempotency-key").has_value() ||
             headers.Get("x-idempotency-key").has_value();
  }
}

void RequestHead::Clear() {
  version = HttpVersion::kHttp11;
  method = HttpMethod::kGet;
  ClearString(method_text);
  ClearString(target);
  headers.Clear();
  framing = BodyFraming::kNone;
  content_length = 0;
  keep_alive = true;
  expect_continue = false;
  upgrade = false;
  ClearString(authority);
  ClearString(host);
  ClearString(path);
  ClearString(query);
}

void ResponseHead::Clear() {
  version = HttpVersion::kHttp11;
  status = 200;
  ClearString(reason);
  headers.Clear();
  framing = BodyFraming::kNone;
  content_length = 0;
  keep_alive = true;
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 103:
      return "Early Hints";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

void RequestHeadDeleter::operator()(RequestHead* head) const { RequestPool().Give(head); }
void ResponseHeadDeleter::operator()(ResponseHead* head) const { ResponsePool().Give(head); }

RequestHeadPtr MakeRequestHead() { return RequestHeadPtr(RequestPool().Take()); }
ResponseHeadPtr MakeResponseHead() { return ResponseHeadPtr(ResponsePool().Take()); }

}  // namespace sluice
