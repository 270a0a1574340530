// Small pieces both HTTP/2 sides (proxy/http/http2_server_codec.cc,
// proxy/upstream/http2_upstream.cc) use with nghttp2: name/value pairs, byte views, and the body
// bytes of one stream that wait for the peer's flow-control window. Loop thread only.
#ifndef SLUICE_PROXY_HTTP_HTTP2_FIELDS_H_
#define SLUICE_PROXY_HTTP_HTTP2_FIELDS_H_

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include "proxy/event/loop_context.h"

namespace sluice {

// An nghttp2 field that points at `name` and `value` (nghttp2 copies them when submitting).
inline nghttp2_nv Http2Field(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

inline std::string_view Http2Bytes(const uint8_t* data, size_t len) {
  return std::string_view(reinterpret_cast<const char*>(data), len);
}

// Body bytes of one stream not yet framed: appended by the side that produces them, taken by
// nghttp2's data source callback as the window allows. The buffer comes from the loop's pool
// and goes back when it empties, so an idle stream holds none.
class PendingBody {
 public:
  explicit PendingBody(LoopContext* context) : context_(context) {}

  void Append(std::string_view data) {
    if (data.empty()) return;
    if (bytes_.empty()) bytes_ = context_->TakeBuffer();
    bytes_.append(data);
  }
  size_t size() const { return bytes_.size() - offset_; }
  bool ended() const { return ended_; }
  void End() { ended_ = true; }

  // The body of nghttp2_data_source_read_callback: copies what fits, sets EOF at the end, or
  // defers until Resume() finds more to send.
  ssize_t Read(uint8_t* buf, size_t length, uint32_t* flags) {
    size_t n = std::min(size(), length);
    if (n > 0) {
      std::memcpy(buf, bytes_.data() + offset_, n);
      offset_ += n;
      if (offset_ == bytes_.size()) {
        context_->GiveBuffer(std::move(bytes_));
        bytes_.clear();
        offset_ = 0;
      }
    }
    if (size() == 0 && ended_) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return static_cast<ssize_t>(n);
  }
  // More bytes (or the end) arrived: wakes the stream if nghttp2 was told to wait.
  void Resume(nghttp2_session* session, int32_t stream_id) {
    if (!deferred_ || stream_id < 0) return;
    deferred_ = false;
    nghttp2_session_resume_data(session, stream_id);
  }

 private:
  LoopContext* context_;
  std::string bytes_;
  size_t offset_ = 0;
  bool ended_ = false;
  bool deferred_ = false;
};

}  // namespace sluice

#endif  // SLUICE_PROXY_HTTP_HTTP2_FIELDS_H_
