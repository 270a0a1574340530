// Checks and normalizes a parsed request before routing and filters see it: exactly one valid
// Host (HTTP/1.1), an absolute-form target whose authority matches Host, and a normalized path.
// Protocol-neutral: the HTTP/2 codec feeds it :authority and :path the same way.
//
// Pure function; any thread.
#ifndef SLUICE_PROXY_FORWARD_REQUEST_NORMALIZER_H_
#define SLUICE_PROXY_FORWARD_REQUEST_NORMALIZER_H_

#include <string_view>

#include "common/http_message.h"
#include "proxy/http/path_normalizer.h"

namespace sluice {

struct RequestVerdict {
  int status = 0;           // 0: accepted; otherwise the status to answer with
  const char* reason = "";  // why, for the log line and the error body
  bool ok() const { return status == 0; }
};

// Fills head->authority, host, path and query from the target and Host field.
RequestVerdict NormalizeRequest(RequestHead* head, const PathNormalizerOptions& options);

}  // namespace sluice

#endif  // SLUICE_PROXY_FORWARD_REQUEST_NORMALIZER_H_
