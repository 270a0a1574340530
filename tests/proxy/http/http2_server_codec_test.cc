#include "proxy/http/http2_server_codec.h"

#include <nghttp2/nghttp2.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

struct FakeTransport : CodecTransport {
  std::string out;
  bool closed = false;
  void Write(std::string_view a, std::string_view b, std::string_view c) override {
    EXPECT_FALSE(closed) << "write after close";
    out.append(a).append(b).append(c);
  }
  size_t QueuedBytes() const override { return 0; }
  void PauseReading() override {}
  void ResumeReading() override {}
  void ShutdownWrite() override {}
  void CloseAfterWrites() override { closed = true; }
  void Abort() override { closed = true; }
};

// What the handlers saw.
struct Seen {
  std::vector<RequestHeadPtr> heads;
  std::string body;
  int ends = 0;
  int resets = 0;
  ServerStream* last = nullptr;
};

// Answers "ok" at the end of the request (with a trailer on /grpc); "/pause" pauses its body.
class TestHandler : public ServerStreamHandler {
 public:
  TestHandler(ServerStream* stream, Seen* seen) : stream_(stream), seen_(seen) {}
  void OnRequestHead(RequestHeadPtr head) override {
    path_ = head->target;
    seen_->last = stream_;
    seen_->heads.push_back(std::move(head));
  }
  void OnRequestBody(std::string_view data) override {
    seen_->body.append(data);
    if (path_ == "/pause") stream_->PauseRequestBody();
  }
  void OnRequestEnd() override {
    ++seen_->ends;
    if (path_ == "/hold" || path_ == "/pause") return;
    ResponseHeadPtr head = MakeResponseHead();
    head->status = 200;
    head->headers.Add("X-Answer", "Yes");
    head->framing = BodyFraming::kContentLength;
    head->content_length = 2;
    stream_->SendResponseHead(*head, false);
    if (path_ == "/grpc") {
      stream_->SendResponseBody("ok", false);
      HeaderMap trailers;
      trailers.Add("grpc-status", "0");
      stream_->SendResponseTrailers(trailers);
    } else {
      stream_->SendResponseBody("ok", true);
    }
  }
  void OnDownstreamDrained() override {}
  void OnStreamReset(StreamResetReason) override { ++seen_->resets; }

 private:
  ServerStream* stream_;
  Seen* seen_;
  std::string path_;
};

struct Factory : StreamFactory {
  Seen* seen;
  std::unique_ptr<ServerStreamHandler> NewStream(ServerStream* stream) override {
    return std::make_unique<TestHandler>(stream, seen);
  }
};

// A real nghttp2 client on the other side of the codec.
class Client {
 public:
  struct Response {
    std::map<std::string, std::string> headers;
    std::map<std::string, std::string> trailers;
    std::string body;
    bool ended = false;
    uint32_t reset = 0;
  };

  Client() {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
               const uint8_t* value, size_t valuelen, uint8_t, void* user) {
          auto* self = static_cast<Client*>(user);
          Response& r = self->responses[frame->hd.stream_id];
          auto& into = frame->headers.cat == NGHTTP2_HCAT_HEADERS ? r.trailers : r.headers;
          into[std::string(reinterpret_cast<const char*>(name), namelen)] =
              std::string(reinterpret_cast<const char*>(value), valuelen);
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user) {
          static_cast<Client*>(user)->responses[id].body.append(reinterpret_cast<const char*>(data),
                                                                len);
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* frame, void* user) {
          auto* self = static_cast<Client*>(user);
          if (frame->hd.type == NGHTTP2_GOAWAY) self->goaway_error = frame->goaway.error_code;
          if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM &&
              (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)) {
            self->responses[frame->hd.stream_id].ended = true;
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, [](nghttp2_session*, int32_t id, uint32_t error, void* user) {
          static_cast<Client*>(user)->responses[id].reset = error;
          return 0;
        });
    nghttp2_session_client_new(&session, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~Client() { nghttp2_session_del(session); }

  int32_t Get(const std::string& path, std::vector<std::pair<std::string, std::string>> extra = {},
              nghttp2_data_provider* body = nullptr) {
    std::vector<std::pair<std::string, std::string>> fields = {{":method", body ? "POST" : "GET"},
                                                               {":scheme", "https"},
                                                               {":authority", "example.com"},
                                                               {":path", path}};
    fields.insert(fields.end(), extra.begin(), extra.end());
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : fields) {
      nva.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()),
                     n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nghttp2_submit_request(session, nullptr, nva.data(), nva.size(), body, nullptr);
  }
  std::string Output() {
    std::string out;
    const uint8_t* data;
    for (ssize_t n; (n = nghttp2_session_mem_send(session, &data)) > 0;) {
      out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    return out;
  }
  void Input(const std::string& bytes) {
    nghttp2_session_mem_recv(session, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }

  nghttp2_session* session = nullptr;
  std::map<int32_t, Response> responses;
  int64_t goaway_error = -1;
};

class Http2ServerCodecTest : public ::testing::Test {
 protected:
  void Start(Http2ServerCodec::Options options = {}) {
    factory_.seen = &seen_;
    codec_ = std::make_unique<Http2ServerCodec>(loop_.context(), &transport_, &factory_, nullptr,
                                                options, &info_);
    Exchange();  // the client session sends the connection preface itself
  }
  // Client bytes into the codec (after `prefix`), and the codec's answer back.
  void Exchange(std::string prefix = {}) {
    for (int round = 0; round < 8; ++round) {
      std::string in = prefix + client_.Output();
      prefix.clear();
      if (!in.empty() && !transport_.closed) codec_->OnData(in.data(), in.size());
      loop_.context()->RunDeferredNow();
      std::string out;
      out.swap(transport_.out);
      if (in.empty() && out.empty()) return;
      client_.Input(out);
    }
  }

  TestLoop loop_;
  FakeTransport transport_;
  Factory factory_;
  Seen seen_;
  DownstreamInfo info_;
  Client client_;
  std::unique_ptr<Http2ServerCodec> codec_;
};

TEST_F(Http2ServerCodecTest, RequestBecomesAnHttp11StyleHeadAndTheAnswerComesBack) {
  Start();
  int32_t id = client_.Get("/a?b=1", {{"cookie", "a=1"}, {"cookie", "b=2"}, {"x-test", "v"}});
  Exchange();
  ASSERT_EQ(seen_.heads.size(), 1u);
  const RequestHead& head = *seen_.heads[0];
  EXPECT_EQ(head.version, HttpVersion::kHttp2);
  EXPECT_EQ(head.method, HttpMethod::kGet);
  EXPECT_EQ(head.target, "/a?b=1");
  EXPECT_EQ(head.headers.Get("host"), "example.com");
  EXPECT_EQ(head.headers.Get("cookie"), "a=1; b=2");  // RFC 9113 section 8.2.3
  EXPECT_EQ(head.framing, BodyFraming::kNone);
  const Client::Response& r = client_.responses[id];
  EXPECT_EQ(r.headers.at(":status"), "200");
  EXPECT_EQ(r.headers.at("x-answer"), "Yes");  // lower-cased on the way out
  EXPECT_EQ(r.headers.at("content-length"), "2");
  EXPECT_EQ(r.body, "ok");
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(codec_->state(), CodecState::kIdle);
}

// A header block that has not ended is a head still being read: the connection's head timer
// applies to it (a HEADERS frame without END_HEADERS, then silence, must not hold the
// connection open forever), and the codec closes the connection when it expires.
TEST_F(Http2ServerCodecTest, AnUnfinishedHeaderBlockIsAHeadBeingRead) {
  Start();
  client_.Get("/slow");
  std::string headers = client_.Output();
  ASSERT_GE(headers.size(), 9u);
  ASSERT_EQ(headers[3], NGHTTP2_HEADERS);
  ASSERT_TRUE(headers[4] & NGHTTP2_FLAG_END_HEADERS);
  headers[4] = static_cast<char>(headers[4] & ~NGHTTP2_FLAG_END_HEADERS);  // CONTINUATION due
  codec_->OnData(headers.data(), headers.size());
  loop_.context()->RunDeferredNow();
  EXPECT_TRUE(seen_.heads.empty());
  EXPECT_EQ(codec_->state(), CodecState::kReadingHead);
  codec_->OnHeadTimeout();
  EXPECT_TRUE(transport_.closed);
  EXPECT_EQ(codec_->state(), CodecState::kClosed);
}

TEST_F(Http2ServerCodecTest, AStreamPastItsHeadIsActive) {
  Start();
  client_.Get("/hold");
  Exchange();
  ASSERT_EQ(seen_.heads.size(), 1u);
  EXPECT_EQ(codec_->state(), CodecState::kActive);
}

TEST_F(Http2ServerCodecTest, TrailersEndTheResponse) {
  Start();
  int32_t id = client_.Get("/grpc");
  Exchange();
  const Client::Response& r = client_.responses[id];
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(r.trailers.at("grpc-status"), "0");
  EXPECT_TRUE(r.ended);
}

TEST_F(Http2ServerCodecTest, APausedBodyHoldsTheClientsWindow) {
  Http2ServerCodec::Options options;
  options.http2.initial_stream_window = 65535;
  Start(options);
  static std::string payload(40000, 'x');
  static size_t sent = 0;
  sent = 0;
  nghttp2_data_provider body;
  body.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                          nghttp2_data_source*, void*) -> ssize_t {
    size_t n = std::min(length, payload.size() - sent);
    memcpy(buf, payload.data() + sent, n);
    sent += n;
    if (sent == payload.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  };
  int32_t id = client_.Get("/pause", {{"content-length", "40000"}}, &body);
  Exchange();
  ASSERT_EQ(seen_.heads.size(), 1u);
  EXPECT_EQ(seen_.heads[0]->framing, BodyFraming::kContentLength);
  EXPECT_EQ(seen_.body.size(), 40000u);
  // Not acknowledged while paused: the client's window for the stream stays spent.
  EXPECT_EQ(nghttp2_session_get_stream_remote_window_size(client_.session, id), 65535 - 40000);
  seen_.last->ResumeRequestBody();
  Exchange();
  EXPECT_EQ(nghttp2_session_get_stream_remote_window_size(client_.session, id), 65535);
}

TEST_F(Http2ServerCodecTest, OversizedHeadersFailTheirStreamOnly) {
  Http2ServerCodec::Options options;
  options.limits.max_head_bytes = 1024;
  Start(options);
  int32_t big = client_.Get("/big", {{"x-pad", std::string(2000, 'a')}});
  int32_t fine = client_.Get("/fine");
  Exchange();
  EXPECT_EQ(client_.responses[big].headers.at(":status"), "431");
  EXPECT_EQ(client_.responses[fine].headers.at(":status"), "200");
  EXPECT_FALSE(transport_.closed);
}

TEST_F(Http2ServerCodecTest, RapidResetClosesTheConnection) {
  Http2ServerCodec::Options options;
  options.http2.max_early_resets = 10;
  Start(options);
  // HEADERS then RST_STREAM for each stream, all in one read, as an attacker sends them.
  std::string burst;
  for (int i = 0; i < 30; ++i) {
    int32_t id = client_.Get("/hold");
    burst += client_.Output();
    nghttp2_submit_rst_stream(client_.session, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    burst += client_.Output();
  }
  Exchange(burst);
  EXPECT_TRUE(transport_.closed);
  EXPECT_FALSE(codec_->close_reason().empty());
  EXPECT_EQ(client_.goaway_error, NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_GE(seen_.resets, 10);
}

TEST_F(Http2ServerCodecTest, ControlFrameFloodClosesTheConnection) {
  Http2ServerCodec::Options options;
  options.http2.max_control_frames = 20;
  Start(options);
  for (int i = 0; i < 50; ++i) nghttp2_submit_ping(client_.session, NGHTTP2_FLAG_NONE, nullptr);
  Exchange();
  EXPECT_TRUE(transport_.closed);
  EXPECT_EQ(client_.goaway_error, NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_F(Http2ServerCodecTest, DrainRefusesNewStreamsAndFinishesOpenOnes) {
  Start();
  int32_t held = client_.Get("/hold");
  Exchange();
  codec_->Drain();
  Exchange();
  EXPECT_FALSE(transport_.closed);  // a stream is still open
  EXPECT_EQ(client_.goaway_error, NGHTTP2_NO_ERROR);
  ResponseHeadPtr head = MakeResponseHead();
  head->status = 204;
  seen_.last->SendResponseHead(*head, true);
  Exchange();
  EXPECT_TRUE(client_.responses[held].ended);
  EXPECT_TRUE(transport_.closed);
}

}  // namespace
}  // namespace sluice
