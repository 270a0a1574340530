#include "proxy/fleet/grpc_channel.h"

#include <nghttp2/nghttp2.h>

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/proxy/fleet/fake_grpc_server.h"
#include "tests/proxy/loop_test_util.h"

namespace sluice {
namespace {

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
