#include "proxy/fleet/grpc_channel.h"

#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/proxy/loop_test_util.h"
#include "tests/proxy/socket_test_util.h"

namespace sluice {
namespace {

// A gRPC server on loopback (nghttp2, a thread per connection) whose streams do what their
// messages say:
//   "echo:X"          answers with the message X
//   "status:C:M"      ends the stream with grpc-status C and grpc-message M
//   "reset"           resets the stream (RST_STREAM INTERNAL_ERROR)
//   "compressed"      answers with a message flagged compressed
//   "close"           closes the connection
//   "goaway"          sends GOAWAY (and keeps the connection)
//   "404"             answers with HTTP status 404, not gRPC
// Or, for a whole connection: answers HTTP/1.1 to the preface (kHttp1), or never answers
// (kSilent).
class FakeGrpcServer {
 public:
  enum class Mode { kGrpc, kHttp1, kSilent };
  struct Stream {
    std::map<std::string, std::string> headers;  // the request's, pseudo-headers included
    uint32_t closed_with = ~0u;                  // the error code it closed with
    std::string in;                              // request DATA not yet framed
    std::string out;                             // response DATA not yet sent
    bool headers_sent = false;
    bool end = false;  // trailers once `out` is sent
    bool not_found = false;
    std::string status;
    std::string message;
  };

  explicit FakeGrpcServer(Mode mode = Mode::kGrpc) : mode_(mode) {
    listen_fd_ = BindLoopback(&address_, 16);
    threads_.emplace_back([this] { AcceptLoop(); });
  }
  ~FakeGrpcServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    for (std::thread& t : threads_) t.join();
    ::close(listen_fd_);
  }

  const SocketAddress& address() const { return address_; }
  // The streams seen so far, by id (one connection at a time in these tests).
  std::map<int32_t, Stream> streams() {
    std::lock_guard<std::mutex> lock(mutex_);
    return streams_;
  }
  int connections() const { return connections_; }

 private:
  struct Connection {
    FakeGrpcServer* server;
    nghttp2_session* session = nullptr;
    int fd = -1;
    bool close = false;
  };

  void AcceptLoop() {
    std::vector<std::thread> serving;
    while (!stop_) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) break;
      ++connections_;
      serving.emplace_back([this, fd] { Serve(fd); });
    }
    for (std::thread& t : serving) t.join();
  }

  void Serve(int fd) {
    Connection c{this};
    c.fd = fd;
    if (mode_ == Mode::kGrpc) {
      nghttp2_session_callbacks* cb;
      nghttp2_session_callbacks_new(&cb);
      nghttp2_session_callbacks_set_on_header_callback(cb, &OnHeader);
      nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &OnData);
      nghttp2_session_callbacks_set_on_stream_close_callback(cb, &OnClose);
      nghttp2_session_server_new(&c.session, cb, &c);
      nghttp2_session_callbacks_del(cb);
      nghttp2_submit_settings(c.session, NGHTTP2_FLAG_NONE, nullptr, 0);
    }
    char buf[16384];
    while (!stop_ && !c.close) {
      if (c.session) Flush(&c);
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      if (mode_ == Mode::kHttp1) {
        const char kAnswer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        ::send(fd, kAnswer, sizeof(kAnswer) - 1, MSG_NOSIGNAL);
        break;
      }
      if (mode_ == Mode::kSilent) continue;
      std::lock_guard<std::mutex> lock(mutex_);
      if (nghttp2_session_mem_recv(c.session, reinterpret_cast<uint8_t*>(buf),
                                   static_cast<size_t>(n)) < 0) {
        break;
      }
    }
    if (c.session) nghttp2_session_del(c.session);
    ::close(fd);
  }

  void Flush(Connection* c) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [id, s] : streams_) {
      if (!s.headers_sent && s.not_found) {
        s.headers_sent = true;
        nghttp2_nv h[] = {Nv(":status", "404"), Nv("content-type", "text/plain")};
        nghttp2_submit_response(c->session, id, h, 2, nullptr);
      } else if (!s.headers_sent && s.closed_with == ~0u && (!s.out.empty() || s.end)) {
        s.headers_sent = true;
        nghttp2_nv h[] = {Nv(":status", "200"), Nv("content-type", "application/grpc")};
        nghttp2_data_provider provider;
        provider.source.ptr = &s;
        provider.read_callback = &ReadOut;
        nghttp2_submit_response(c->session, id, h, 2, &provider);
      } else if (s.headers_sent && (!s.out.empty() || s.end)) {
        nghttp2_session_resume_data(c->session, id);
      }
    }
    for (;;) {
      const uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(c->session, &data);
      if (n <= 0) break;
      ::send(c->fd, data, static_cast<size_t>(n), MSG_NOSIGNAL);
    }
  }

  // `value` must outlive the submission: a literal or a stream's member.
  static nghttp2_nv Nv(std::string_view name, std::string_view value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), NGHTTP2_NV_FLAG_NONE};
  }

  static ssize_t ReadOut(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                         uint32_t* flags, nghttp2_data_source* source, void*) {
    auto* s = static_cast<Stream*>(source->ptr);
    if (!s->out.empty()) {
      size_t n = std::min(length, s->out.size());
      std::memcpy(buf, s->out.data(), n);
      s->out.erase(0, n);
      return static_cast<ssize_t>(n);
    }
    if (!s->end) return NGHTTP2_ERR_DEFERRED;
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    nghttp2_nv t[] = {Nv("grpc-status", s->status), Nv("grpc-message", s->message)};
    nghttp2_submit_trailer(session, id, t, 2);
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* c = static_cast<Connection*>(user);
    c->server->streams_[frame->hd.stream_id]
        .headers[std::string(reinterpret_cast<const char*>(name), namelen)] =
        std::string(reinterpret_cast<const char*>(value), valuelen);
    return 0;
  }

  static int OnData(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    auto* c = static_cast<Connection*>(user);
    Stream& s = c->server->streams_[id];
    s.in.append(reinterpret_cast<const char*>(data), len);
    while (s.in.size() >= 5) {
      size_t size = 0;
      for (int i = 1; i < 5; ++i) size = size << 8 | static_cast<uint8_t>(s.in[i]);
      if (s.in.size() < 5 + size) break;
      std::string m = s.in.substr(5, size);
      s.in.erase(0, 5 + size);
      if (m.rfind("echo:", 0) == 0) {
        s.out += GrpcFrame(m.substr(5));
      } else if (m.rfind("status:", 0) == 0) {
        size_t colon = m.find(':', 7);
        s.status = m.substr(7, colon - 7);
        s.message = m.substr(colon + 1);
        s.end = true;
      } else if (m == "reset") {
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
      } else if (m == "compressed") {
        s.out += std::string("\x01\0\0\0\x01x", 6);
      } else if (m == "close") {
        c->close = true;
      } else if (m == "goaway") {
        nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR, nullptr, 0);
      } else if (m == "404") {
        s.not_found = true;
      }
    }
    return 0;
  }

  static int OnClose(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
    auto* c = static_cast<Connection*>(user);
    c->server->streams_[id].closed_with = error_code;
    return 0;
  }

  Mode mode_;
  int listen_fd_ = -1;
  SocketAddress address_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::map<int32_t, Stream> streams_;
};

// Owner and stream handler, writing down what it hears in order.
class Recorder : public GrpcChannel::Owner, public GrpcChannel::StreamHandler {
 public:
  void OnGrpcChannelDown(GrpcChannel*, const absl::Status& status, bool was_refused) override {
    events.push_back("down");
    down = status;
    refused = was_refused;
    ++downs;
  }
  void OnGrpcMessage(GrpcStream* stream, std::string_view message) override {
    messages[stream].emplace_back(message);
  }
  void OnGrpcEnd(GrpcStream* stream, const absl::Status& status) override {
    events.push_back("end");
    ends[stream] = status;
  }

  std::vector<std::string> events;
  std::map<GrpcStream*, std::vector<std::string>> messages;
  std::map<GrpcStream*, absl::Status> ends;
  absl::Status down;
  bool refused = false;
  int downs = 0;
};

class GrpcChannelTest : public testing::Test {
 protected:
  GrpcChannel* Open(const SocketAddress& address,
                    absl::Duration connect_timeout = absl::Seconds(5)) {
    GrpcChannelOptions options;
    options.name = "http://fake";
    options.authority = address.ToString();
    options.connect_timeout = connect_timeout;
    options.counters = &counters_;
    GrpcChannel* channel = GrpcChannel::Create(loop_.context(), options, &recorder_);
    channel->Connect(address);
    return channel;
  }

  // The loop goes first: a channel still closing in it may not outlive what it points to.
  Recorder recorder_;
  ControlHttpCounters counters_;
  TestLoop loop_;
};

TEST_F(GrpcChannelTest, MessagesBothWaysWithMetadataAndTheTrailersStatus) {
  FakeGrpcServer server;
  GrpcChannel* channel = Open(server.address());
  GrpcStream* s = channel->OpenStream("/etcdserverpb.Lease/LeaseKeepAlive",
                                      {{"token", "t0k"}, {"hasleader", "true"}}, &recorder_);
  ASSERT_NE(s, nullptr);
  channel->Send(s, "echo:one");
  channel->Send(s, "echo:" + std::string(100000, 'x'));  // several DATA frames
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.messages[s].size() == 2; }));
  EXPECT_TRUE(channel->ready());
  EXPECT_EQ(recorder_.messages[s][0], "one");
  EXPECT_EQ(recorder_.messages[s][1], std::string(100000, 'x'));
  // Later messages on the same stream, after it waited for more.
  channel->Send(s, "echo:two");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.messages[s].size() == 3; }));
  EXPECT_EQ(recorder_.messages[s][2], "two");
  channel->Send(s, "status:0:");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.ends.count(s) == 1; }));
  EXPECT_TRUE(recorder_.ends[s].ok()) << recorder_.ends[s];

  auto streams = server.streams();
  ASSERT_EQ(streams.size(), 1u);
  const auto& h = streams.begin()->second.headers;
  EXPECT_EQ(h.at(":method"), "POST");
  EXPECT_EQ(h.at(":path"), "/etcdserverpb.Lease/LeaseKeepAlive");
  EXPECT_EQ(h.at(":authority"), server.address().ToString());
  EXPECT_EQ(h.at("content-type"), "application/grpc");
  EXPECT_EQ(h.at("te"), "trailers");
  EXPECT_EQ(h.at("token"), "t0k");
  EXPECT_EQ(h.at("hasleader"), "true");
  EXPECT_EQ(counters_.connections, 1u);
  EXPECT_EQ(counters_.requests, 1u);
  EXPECT_GT(counters_.rx_bytes, 100000u);
  EXPECT_GT(counters_.tx_bytes, 0u);
  EXPECT_EQ(recorder_.downs, 0);
  channel->Abandon();
}

TEST_F(GrpcChannelTest, AnErrorStatusOrAResetEndsOnlyItsStream) {
  FakeGrpcServer server;
  GrpcChannel* channel = Open(server.address());
  GrpcStream* a = channel->OpenStream("/a", {}, &recorder_);
  GrpcStream* b = channel->OpenStream("/b", {}, &recorder_);
  GrpcStream* c = channel->OpenStream("/c", {}, &recorder_);
  channel->Send(a, "status:14:etcdserver%3A no leader");
  channel->Send(b, "reset");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.ends.size() == 2; }));
  EXPECT_TRUE(absl::IsUnavailable(recorder_.ends[a])) << recorder_.ends[a];
  EXPECT_EQ(recorder_.ends[a].message(), "etcd: etcdserver: no leader");
  EXPECT_TRUE(absl::IsUnavailable(recorder_.ends[b])) << recorder_.ends[b];
  EXPECT_NE(recorder_.ends[b].message().find("reset"), std::string::npos) << recorder_.ends[b];
  // The third goes on.
  channel->Send(c, "echo:still");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.messages[c].size() == 1; }));
  EXPECT_EQ(recorder_.downs, 0);
  channel->Abandon();
}

TEST_F(GrpcChannelTest, AMessageThatDoesNotDecodeEndsTheStreamAndResetsIt) {
  FakeGrpcServer server;
  GrpcChannel* channel = Open(server.address());
  GrpcStream* s = channel->OpenStream("/a", {}, &recorder_);
  channel->Send(s, "compressed");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.ends.count(s) == 1; }));
  EXPECT_NE(recorder_.ends[s].message().find("compressed"), std::string::npos) << recorder_.ends[s];
  EXPECT_TRUE(recorder_.messages[s].empty());
  ASSERT_TRUE(loop_.RunUntil([&] {
    auto streams = server.streams();
    return streams.size() == 1 && streams.begin()->second.closed_with == NGHTTP2_CANCEL;
  }));
  channel->Abandon();
}

TEST_F(GrpcChannelTest, ALostConnectionTellsTheOwnerFirstThenEndsEveryStream) {
  FakeGrpcServer server;
  GrpcChannel* channel = Open(server.address());
  GrpcStream* a = channel->OpenStream("/a", {}, &recorder_);
  GrpcStream* b = channel->OpenStream("/b", {}, &recorder_);
  channel->Send(a, "echo:x");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.messages[a].size() == 1; }));
  channel->Send(b, "close");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.ends.size() == 2; }));
  EXPECT_EQ(recorder_.events, (std::vector<std::string>{"down", "end", "end"}));
  EXPECT_FALSE(recorder_.refused);
  EXPECT_TRUE(absl::IsUnavailable(recorder_.down)) << recorder_.down;
  EXPECT_EQ(recorder_.down.message().rfind("http://fake: ", 0), 0u) << recorder_.down;
  EXPECT_EQ(recorder_.ends[a], recorder_.down);
  EXPECT_EQ(recorder_.ends[b], recorder_.down);
  // Frees itself once its socket is closed: the loop ends without a leak (ASan checks).
  loop_.RunUntil([] { return false; }, 50);
}

TEST_F(GrpcChannelTest, AServerThatAnswersHttp1IsRefused) {
  FakeGrpcServer server(FakeGrpcServer::Mode::kHttp1);
  GrpcChannel* channel = Open(server.address());
  GrpcStream* s = channel->OpenStream("/a", {}, &recorder_);
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.ends.count(s) == 1; }));
  EXPECT_EQ(recorder_.downs, 1);
  EXPECT_TRUE(recorder_.refused);
  EXPECT_NE(recorder_.down.message().find("HTTP/1.1"), std::string::npos) << recorder_.down;
}

TEST_F(GrpcChannelTest, AServerThatNeverAnswersTimesOut) {
  FakeGrpcServer server(FakeGrpcServer::Mode::kSilent);
  GrpcChannel* channel = Open(server.address(), absl::Milliseconds(200));
  GrpcStream* s = channel->OpenStream("/a", {}, &recorder_);
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.ends.count(s) == 1; }));
  EXPECT_FALSE(recorder_.refused);
  EXPECT_NE(recorder_.down.message().find("no HTTP/2 connection within 200ms"), std::string::npos)
      << recorder_.down;
}

TEST_F(GrpcChannelTest, NothingListeningIsToldFromTheLoopNotFromConnect) {
  SocketAddress closed = ClosedLoopbackPort();
  GrpcChannel* channel = Open(closed);
  GrpcStream* s = channel->OpenStream("/a", {}, &recorder_);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(recorder_.downs, 0);
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.downs == 1; }));
  EXPECT_FALSE(recorder_.refused);
  EXPECT_NE(recorder_.down.message().find("cannot connect"), std::string::npos) << recorder_.down;
  EXPECT_TRUE(recorder_.ends.count(s));
}

TEST_F(GrpcChannelTest, AClosedStreamIsCancelledAndHeardOfNoMore) {
  FakeGrpcServer server;
  GrpcChannel* channel = Open(server.address());
  GrpcStream* a = channel->OpenStream("/a", {}, &recorder_);
  GrpcStream* b = channel->OpenStream("/b", {}, &recorder_);
  channel->Send(a, "echo:x");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.messages[a].size() == 1; }));
  channel->CloseStream(a);
  ASSERT_TRUE(loop_.RunUntil([&] {
    auto streams = server.streams();
    return streams.count(1) && streams.at(1).closed_with == NGHTTP2_CANCEL;
  }));
  // The channel and its other stream go on; the closed one hears nothing of the end.
  channel->Send(b, "echo:y");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.messages[b].size() == 1; }));
  EXPECT_EQ(recorder_.ends.count(a), 0u);
  EXPECT_EQ(channel->streams(), 1u);
  // Abandoned: no callback at all, even as the connection goes.
  channel->Abandon();
  loop_.RunUntil([] { return false; }, 50);
  EXPECT_EQ(recorder_.downs, 0);
  EXPECT_EQ(recorder_.ends.count(b), 0u);
}

TEST_F(GrpcChannelTest, AStreamClosedBeforeItWentOutIsDroppedSafely) {
  FakeGrpcServer server;
  GrpcChannel* channel = Open(server.address());
  // Still queued in nghttp2 (nothing is sent before the loop runs): closing it must not free
  // what nghttp2 still points to (ASan would say).
  GrpcStream* a = channel->OpenStream("/a", {}, &recorder_);
  channel->Send(a, "echo:never");
  channel->CloseStream(a);
  GrpcStream* b = channel->OpenStream("/b", {}, &recorder_);
  channel->Send(b, "echo:z");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.messages[b].size() == 1; }));
  ASSERT_TRUE(loop_.RunUntil([&] { return channel->streams() == 1; }));
  EXPECT_EQ(recorder_.ends.size(), 0u);
  for (const auto& [id, s] : server.streams()) EXPECT_EQ(s.headers.at(":path"), "/b") << id;
  channel->Abandon();
}

TEST_F(GrpcChannelTest, GoawayGivesTheConnectionUp) {
  FakeGrpcServer server;
  GrpcChannel* channel = Open(server.address());
  GrpcStream* s = channel->OpenStream("/a", {}, &recorder_);
  channel->Send(s, "goaway");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.downs == 1; }));
  EXPECT_FALSE(recorder_.refused);
  EXPECT_NE(recorder_.down.message().find("GOAWAY"), std::string::npos) << recorder_.down;
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.ends.count(s) == 1; }));
}

TEST_F(GrpcChannelTest, AnHttp2AnswerThatIsNotGrpcIsRefused) {
  FakeGrpcServer server;
  GrpcChannel* channel = Open(server.address());
  GrpcStream* s = channel->OpenStream("/a", {}, &recorder_);
  channel->Send(s, "404");
  ASSERT_TRUE(loop_.RunUntil([&] { return recorder_.ends.count(s) == 1; }));
  EXPECT_EQ(recorder_.events, (std::vector<std::string>{"down", "end"}));
  EXPECT_TRUE(recorder_.refused);
  EXPECT_TRUE(absl::IsUnavailable(recorder_.ends[s])) << recorder_.ends[s];
}

}  // namespace
}  // namespace sluice
