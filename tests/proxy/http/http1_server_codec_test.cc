#include "proxy/http/http1_server_codec.h"

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace sluice {
namespace {

struct FakeTransport : CodecTransport {
  std::string out;
  bool paused = false;
  bool shut = false;
  bool closed_gracefully = false;
  bool aborted = false;
  size_t queued = 0;
  void Write(std::string_view a, std::string_view b, std::string_view c) override {
    EXPECT_FALSE(closed_gracefully || aborted) << "write after close";
    out.append(a).append(b).append(c);
  }
  size_t QueuedBytes() const override { return queued; }
  void PauseReading() override { paused = true; }
  void ResumeReading() override { paused = false; }
  void ShutdownWrite() override { shut = true; }
  void CloseAfterWrites() override { closed_gracefully = true; }
  void Abort() override { aborted = true; }
  std::string Take() {
    std::string s;
    s.swap(out);
    return s;
  }
};

// What the handlers saw, shared by all handlers of one codec.
struct Journal {
  std::vector<std::string> events;
  std::vector<ServerStream*> streams;
};

// A scripted handler: answers at the end of the request with the request's path as the body,
// unless the path says otherwise ("/early" answers at once, "/later" waits for the test).
class TestHandler : public ServerStreamHandler {
 public:
  TestHandler(ServerStream* stream, Journal* journal) : stream_(stream), journal_(journal) {}
  void OnRequestHead(RequestHeadPtr head) override {
    path_ = head->target;
    journal_->events.push_back("head " + path_);
    journal_->streams.push_back(stream_);
    if (path_ == "/early") Answer("early");
    if (path_ == "/ws") {
      ResponseHeadPtr response = MakeResponseHead();
      response->status = 101;
      response->headers.Add("Upgrade", "websocket");
      stream_->SendResponseHead(*response, false);
    }
  }
  void OnRequestBody(std::string_view data) override {
    journal_->events.push_back("body " + std::string(data));
  }
  void OnRequestEnd() override {
    journal_->events.push_back("end " + path_);
    if (path_ != "/later" && path_ != "/early" && path_ != "/ws") Answer(path_);
  }
  void OnDownstreamDrained() override {}
  void OnStreamReset(StreamResetReason reason) override {
    journal_->events.push_back(std::string("reset ") + StreamResetReasonText(reason));
  }
  void Answer(std::string_view body) {
    ResponseHeadPtr response = MakeResponseHead();
    response->status = 200;
    response->framing = BodyFraming::kContentLength;
    response->content_length = body.size();
    stream_->SendResponseHead(*response, false);
    stream_->SendResponseBody(body, true);
  }

 private:
  ServerStream* stream_;
  Journal* journal_;
  std::string path_;
};

class Http1ServerCodecTest : public ::testing::Test, public StreamFactory {
 protected:
  Http1ServerCodecTest() {
    uv_loop_init(&loop_);
    context_ = std::make_unique<LoopContext>(&loop_);
    codec_ = std::make_unique<Http1ServerCodec>(context_.get(), &transport_, this, nullptr,
                                                Http1ServerCodec::Options{}, &info_);
  }
  ~Http1ServerCodecTest() override {
    codec_.reset();
    context_->Close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    context_.reset();
    uv_loop_close(&loop_);
  }
  std::unique_ptr<ServerStreamHandler> NewStream(ServerStream* stream) override {
    return std::make_unique<TestHandler>(stream, &journal_);
  }
  void Feed(std::string_view bytes) {
    codec_->OnData(bytes.data(), bytes.size());
    context_->RunDeferredNow();
  }

  uv_loop_t loop_;
  std::unique_ptr<LoopContext> context_;
  FakeTransport transport_;
  DownstreamInfo info_;
  Journal journal_;
  std::unique_ptr<Http1ServerCodec> codec_;
};

TEST_F(Http1ServerCodecTest, AnswersAndKeepsAlive) {
  Feed("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(transport_.Take(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n/a");
  EXPECT_EQ(codec_->state(), Http1ServerCodec::State::kIdle);
  EXPECT_FALSE(transport_.closed_gracefully);
}

TEST_F(Http1ServerCodecTest, PipelinedRequestsWaitForTheirTurn) {
  Feed("GET /later HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  // The second request is not even parsed while the first is unanswered.
  EXPECT_EQ(journal_.events, (std::vector<std::string>{"head /later", "end /later"}));
  EXPECT_EQ(codec_->state(), Http1ServerCodec::State::kActive);
  ResponseHeadPtr response = MakeResponseHead();
  response->framing = BodyFraming::kContentLength;
  response->content_length = 1;
  journal_.streams[0]->SendResponseHead(*response, false);
  journal_.streams[0]->SendResponseBody("1", true);
  context_->RunDeferredNow();
  EXPECT_EQ(journal_.events.back(), "end /b");
  EXPECT_EQ(transport_.Take(),
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1"
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n/b");
}

TEST_F(Http1ServerCodecTest, ChunkedResponseForUnknownLength) {
  Feed("GET /later HTTP/1.1\r\nHost: h\r\n\r\n");
  ResponseHeadPtr response = MakeResponseHead();
  response->framing = BodyFraming::kUntilClose;
  ServerStream* stream = journal_.streams[0];
  stream->SendResponseHead(*response, false);
  stream->SendResponseBody("hello", false);
  stream->SendResponseBody("!", true);
  EXPECT_EQ(
      transport_.Take(),
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n");
}

TEST_F(Http1ServerCodecTest, Http10ClientGetsCloseDelimitedBody) {
  Feed("GET /later HTTP/1.0\r\n\r\n");
  ResponseHeadPtr response = MakeResponseHead();
  response->framing = BodyFraming::kChunked;
  ServerStream* stream = journal_.streams[0];
  stream->SendResponseHead(*response, false);
  stream->SendResponseBody("data", true);
  EXPECT_EQ(transport_.Take(), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\ndata");
  EXPECT_TRUE(transport_.closed_gracefully);
}

TEST_F(Http1ServerCodecTest, EarlyAnswerToAnUploadClosesTheConnection) {
  Feed("POST /early HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc");
  std::string out = transport_.Take();
  EXPECT_NE(out.find("Connection: close"), std::string::npos) << out;
  EXPECT_TRUE(transport_.closed_gracefully);
}

TEST_F(Http1ServerCodecTest, ExpectContinueIsSentOnRequest) {
  Feed("POST /later HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(transport_.Take(), "");
  journal_.streams[0]->SendContinue();
  journal_.streams[0]->SendContinue();  // once only
  EXPECT_EQ(transport_.Take(), "HTTP/1.1 100 Continue\r\n\r\n");
  Feed("ok");
  EXPECT_EQ(journal_.events.back(), "end /later");
}

TEST_F(Http1ServerCodecTest, ProtocolErrorGets400AndClose) {
  Feed("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n");
  std::string out = transport_.Take();
  EXPECT_EQ(out.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("obsolete line folding"), std::string::npos);
  EXPECT_TRUE(transport_.closed_gracefully);
  EXPECT_TRUE(journal_.events.empty());
}

TEST_F(Http1ServerCodecTest, BadChunkMidBodyResetsTheStream) {
  Feed("POST /later HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\nzz\r\n");
  EXPECT_EQ(journal_.events.back(), "reset client protocol error");
  EXPECT_NE(transport_.Take().find("400 Bad Request"), std::string::npos);
}

TEST_F(Http1ServerCodecTest, ClientGoneMidRequestResetsTheStream) {
  Feed("POST /later HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
  codec_->OnEof();
  EXPECT_EQ(journal_.events.back(), "reset client closed the connection");
  EXPECT_TRUE(transport_.aborted);
}

TEST_F(Http1ServerCodecTest, HalfCloseAfterRequestStillGetsTheAnswer) {
  Feed("GET /later HTTP/1.1\r\nHost: h\r\n\r\n");
  codec_->OnEof();
  EXPECT_FALSE(transport_.aborted);
  ResponseHeadPtr response = MakeResponseHead();
  response->framing = BodyFraming::kContentLength;
  response->content_length = 0;
  journal_.streams[0]->SendResponseHead(*response, true);
  context_->RunDeferredNow();
  EXPECT_EQ(transport_.Take().rfind("HTTP/1.1 200 OK", 0), 0u);
  EXPECT_TRUE(transport_.closed_gracefully);
}

TEST_F(Http1ServerCodecTest, UpgradeBecomesATunnel) {
  Feed("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nearly");
  EXPECT_EQ(
      transport_.Take(),
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
  context_->RunDeferredNow();
  EXPECT_EQ(journal_.events.back(), "body early");  // bytes sent before the 101 are kept
  Feed("more");
  EXPECT_EQ(journal_.events.back(), "body more");
  journal_.streams[0]->SendResponseBody("down", false);
  EXPECT_EQ(transport_.Take(), "down");
  codec_->OnEof();
  EXPECT_EQ(journal_.events.back(), "end /ws");
  journal_.streams[0]->SendResponseBody({}, true);
  EXPECT_TRUE(transport_.shut);
  EXPECT_TRUE(transport_.closed_gracefully);
}

TEST_F(Http1ServerCodecTest, HeadTimeoutAnswers408) {
  Feed("GET / HTTP/1.1\r\nHo");
  EXPECT_EQ(codec_->state(), Http1ServerCodec::State::kReadingHead);
  codec_->OnHeadTimeout();
  EXPECT_EQ(transport_.Take().rfind("HTTP/1.1 408 Request Timeout", 0), 0u);
  EXPECT_TRUE(transport_.closed_gracefully);
}

TEST_F(Http1ServerCodecTest, DrainClosesAfterTheCurrentExchange) {
  Feed("GET /later HTTP/1.1\r\nHost: h\r\n\r\n");
  codec_->Drain();
  EXPECT_FALSE(transport_.closed_gracefully);
  ResponseHeadPtr response = MakeResponseHead();
  response->framing = BodyFraming::kContentLength;
  journal_.streams[0]->SendResponseHead(*response, true);
  EXPECT_NE(transport_.Take().find("Connection: close"), std::string::npos);
  EXPECT_TRUE(transport_.closed_gracefully);
}

TEST_F(Http1ServerCodecTest, BodyLongerThanAnnouncedIsNeverSent) {
  Feed("GET /later HTTP/1.1\r\nHost: h\r\n\r\n");
  ResponseHeadPtr response = MakeResponseHead();
  response->framing = BodyFraming::kContentLength;
  response->content_length = 2;
  journal_.streams[0]->SendResponseHead(*response, false);
  journal_.streams[0]->SendResponseBody("toolong", false);
  EXPECT_EQ(transport_.Take().find("toolong"), std::string::npos);
  EXPECT_TRUE(transport_.aborted);
}

// An idle connection parks its codec (destroys it) and makes a new one for the next request:
// parkable only when nothing is held or pending, and the new codec counts on from the old.
TEST_F(Http1ServerCodecTest, ParkableOnlyWhenIdleWithNothingPending) {
  EXPECT_TRUE(codec_->parkable());  // fresh
  codec_->OnData("GET /later HTTP/1.1\r\n", 21);
  EXPECT_FALSE(codec_->parkable());  // a head half read
  Feed("Host: h\r\n\r\n");
  EXPECT_FALSE(codec_->parkable());            // a request waiting for its answer
  Feed("GET /b HTTP/1.1\r\nHost: h\r\n\r\n");  // pipelined behind it
  ASSERT_EQ(journal_.streams.size(), 1u);
  ResponseHeadPtr response = MakeResponseHead();
  response->status = 204;
  journal_.streams[0]->SendResponseHead(*response, true);
  // The answer is out; the pipelined request is parsed from the deferred task.
  context_->RunDeferredNow();
  EXPECT_EQ(journal_.streams.size(), 2u);
  context_->RunDeferredNow();
  EXPECT_TRUE(codec_->parkable());
  EXPECT_EQ(codec_->requests(), 2u);
  Feed("GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
  EXPECT_FALSE(codec_->parkable());  // closing
}

TEST_F(Http1ServerCodecTest, ANewCodecCountsTheParkedOnesRequests) {
  Http1ServerCodec::Options options;
  options.max_requests = 3;
  options.requests_served = 2;
  codec_ = std::make_unique<Http1ServerCodec>(context_.get(), &transport_, this, nullptr, options,
                                              &info_);
  Feed("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_NE(transport_.Take().find("Connection: close"), std::string::npos);
  EXPECT_EQ(codec_->requests(), 3u);
  EXPECT_FALSE(codec_->parkable());
}

}  // namespace
}  // namespace sluice
