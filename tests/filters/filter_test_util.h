// Helpers for filter tests: a request as the forwarder would hand it to a chain.
#ifndef SLUICE_TESTS_FILTERS_FILTER_TEST_UTIL_H_
#define SLUICE_TESTS_FILTERS_FILTER_TEST_UTIL_H_

#include <initializer_list>
#include <utility>

#include "filters/filter.h"

namespace sluice {

class TestRequest {
 public:
  explicit TestRequest(std::initializer_list<std::pair<const char*, const char*>> headers = {},
                       const char* client = "192.0.2.1:4000") {
    head_ = MakeRequestHead();
    head_->method_text = "GET";
    head_->path = "/";
    for (auto& [n, v] : headers) head_->headers.Add(n, v);
    request_.head = head_.get();
    request_.context.client = *SocketAddress::Parse(client);
  }
  FilterRequest& get() { return request_; }
  RequestHead& head() { return *head_; }

 private:
  RequestHeadPtr head_;
  FilterRequest request_;
};

}  // namespace sluice

#endif  // SLUICE_TESTS_FILTERS_FILTER_TEST_UTIL_H_
