// Settings of the downstream HTTP/2 codec (proxy/http/http2_server_codec.h), owned by the codec
// as Http1Limits is by the HTTP/1.1 parser; the configuration holds one.
#ifndef SLUICE_PROXY_HTTP_HTTP2_SETTINGS_H_
#define SLUICE_PROXY_HTTP_HTTP2_SETTINGS_H_

#include <cstdint>

namespace sluice {

// The HTTP/2 codec's settings and abuse limits (configuration key http2), the same for every
// listener that speaks HTTP/2.
struct Http2Settings {
  uint32_t max_concurrent_streams = 100;
  uint32_t initial_stream_window = 256 * 1024;       // bytes a client may send ahead per stream
  uint32_t initial_connection_window = 1024 * 1024;  // ... and per connection
  // Streams the client resets before their response began, within 10 s, before the
  // connection is closed (CVE-2023-44487 "rapid reset"); nghttp2's own rate limit applies too.
  uint32_t max_early_resets = 200;
  // PING, SETTINGS and PRIORITY frames per connection within 10 s before it is closed.
  uint32_t max_control_frames = 1000;
  uint32_t max_continuations = 8;  // CONTINUATION frames per header block (nghttp2 option)
};

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_HTTP2_SETTINGS_H_
